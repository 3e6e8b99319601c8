"""The round engine shared by C&W's L0 and L-infinity attacks.

Both attacks solve a sequence of restricted problems per row. Each round starts from
the row's previous solution (a warm start) and ends at the first acceptable iterate;
the attack then tightens the row's problem (fewer pixels, a smaller tau) and the next
round begins. A try that finds nothing acceptable within ``steps`` iterations (or
stalls, with abort early) multiplies the row's c by ``factor`` and starts again from
the same point; once c would pass ``largest_c`` the row is finished.

Rows move through their rounds independently: at every iteration each running row
takes one step of its own current problem, so a row stuck in a long try does not hold
back the others, and the batch stays full. Finished rows cost nothing.
"""

from __future__ import annotations

from typing import Callable

import torch

from ead_tutorial.attacks.stopping import ABORT_TOLERANCE
from ead_tutorial.attacks.optimizers import RowAdamWithResets

# (w, rows) -> images of the rows ``rows``: B' x C x H x W.
ImageOf = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (x, logits, rows) -> float B' (the loss) or bool B' (acceptable).
RowFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# (rows, solutions) -> bool B': which of the rows go on to another round.
OnAccept = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def run_rounds(model: torch.nn.Module, starts: torch.Tensor, c: torch.Tensor, *,
               to_variable: Callable[[torch.Tensor], torch.Tensor], after_step: Callable[[torch.Tensor], None],
               image_of: ImageOf, loss_of: RowFunction, accept: RowFunction, on_accept: OnAccept, steps: int,
               lr: float, largest_c: float, factor: float, abort_early: bool, evaluations: torch.Tensor,
               progress=None) -> None:
    """Run every row's rounds to the end.

    Parameters
    ----------
    starts : B x C x H x W, where each row's first round starts; updated to each accepted solution
    c : float B, each row's constant; multiplied by ``factor`` after every failed try (in place)
    on_accept : called with the rows that just found an acceptable iterate and those iterates;
        it records them, tightens the rows' problems, and says which rows go on
    evaluations : int64 B, gradient evaluations per row (updated)
    progress : an optional tqdm bar, advanced once per iteration
    """
    n = len(starts)
    device = starts.device
    variable = to_variable(starts)
    optimiser = RowAdamWithResets(variable, lr)
    running = torch.ones(n, dtype=torch.bool, device=device)
    step_in_try = torch.zeros(n, dtype=torch.int64, device=device)
    previous = torch.full((n,), float("inf"), device=device)  # abort early starts at +inf
    check_every = max(steps // 10, 1)

    def restart(rows: torch.Tensor) -> None:
        variable[rows] = to_variable(starts[rows])
        optimiser.reset(rows)
        step_in_try[rows] = 0
        previous[rows] = float("inf")

    while running.any():
        rows = running.nonzero().flatten()
        w = variable[rows].detach().requires_grad_()
        x = image_of(w, rows)
        logits = model(x)
        loss = loss_of(x, logits, rows)
        (grad,) = torch.autograd.grad(loss.sum(), w)
        with torch.no_grad():
            evaluations[rows] += 1
            done = accept(x, logits, rows)
            if done.any():
                accepted = rows[done]
                starts[accepted] = x[done]
                go_on = on_accept(accepted, x[done])
                running[accepted[~go_on]] = False
                restart(accepted[go_on])
            trying, grad = rows[~done], grad[~done]
            optimiser.step(variable, grad, trying)
            after_step(variable)
            step_in_try[trying] += 1
            failed = step_in_try[trying] >= steps
            if abort_early:
                check = step_in_try[trying] % check_every == 0
                stalled = check & (loss[~done] > previous[trying] * ABORT_TOLERANCE)
                previous[trying[check]] = loss[~done][check]
                failed |= stalled
            failed = trying[failed]
            grows = c[failed] * factor <= largest_c
            running[failed[~grows]] = False  # the last success stands
            c[failed[grows]] *= factor
            restart(failed[grows])
        if progress is not None:
            progress.update(1)
            progress.set_postfix(rows=int(running.sum()))
