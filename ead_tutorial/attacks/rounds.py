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

import dataclasses
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ead_tutorial.attacks.optimizers import RowAdamWithResets
from ead_tutorial.attacks.result import AttackResult, finish_attack
from ead_tutorial.attacks.search import BestSoFar
from ead_tutorial.attacks.stopping import ABORT_TOLERANCE

# (w, rows) -> images of the rows ``rows``: B' x C x H x W.
ImageOf = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (x, logits, rows) -> float B' (the loss) or bool B' (acceptable).
RowFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# (rows, solutions) -> bool B': which of the rows go on to another round.
OnAccept = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class RowRounds:
    """What C&W's L0 and L-infinity attacks keep for each of B rows across its rounds.

    images : B x C x H x W originals in [0, 1]; c : float B, each row's constant; starts :
    B x C x H x W, where its next round starts; rounds : int64 B, its solved rounds;
    evaluations : int64 B, its gradient evaluations; best : its best success so far. The
    attacks' callbacks update these tensors in place.
    """

    images: torch.Tensor
    c: torch.Tensor
    starts: torch.Tensor
    rounds: torch.Tensor
    evaluations: torch.Tensor
    best: BestSoFar

    @classmethod
    def start(cls, images: torch.Tensor, initial_c: float) -> "RowRounds":
        """Every row at its first round: c = ``initial_c``, starting from its own image, nothing found yet."""
        n, device = len(images), images.device
        return cls(images, torch.full((n,), float(initial_c), device=device), images.clone(),
                   torch.zeros(n, dtype=torch.int64, device=device), torch.zeros(n, dtype=torch.int64, device=device),
                   BestSoFar.start(images))

    def run(self, model: torch.nn.Module, targets: torch.Tensor, *, kappa: float, targeted: bool, discretize: bool,
            progress: str | None, **engine: Any) -> AttackResult:
        """Every row's rounds to the end (:func:`run_rounds` with the ``engine`` settings), then the attack's result.

        The result (:func:`~ead_tutorial.attacks.result.finish_attack`) holds each row's best
        success; its ``details`` hold "rounds".
        """
        run_rounds(model, self.starts, self.c, evaluations=self.evaluations, progress=progress, **engine)
        result = finish_attack(model, self.images, targets, self.best, c=self.c, evaluations=self.evaluations,
                               kappa=kappa, targeted=targeted, discretize=discretize)
        result.details["rounds"] = self.rounds
        return result


def run_rounds(model: torch.nn.Module, starts: torch.Tensor, c: torch.Tensor, *, encoding,
               image_of: ImageOf, loss_of: RowFunction, accept: RowFunction, on_accept: OnAccept, steps: int,
               lr: float, largest_c: float, factor: float, abort_early: bool, evaluations: torch.Tensor,
               reset_between_tries: bool = True, progress: str | None = None) -> None:
    """Run every row's rounds to the end.

    Parameters
    ----------
    starts : B x C x H x W, where each row's first round starts; updated to each accepted solution
    encoding : the box encoding (:mod:`ead_tutorial.box`) of the optimiser's variable
    c : float B, each row's constant; multiplied by ``factor`` after every failed try (in place)
    on_accept : called with the rows that just found an acceptable iterate and those iterates;
        it records them, tightens the rows' problems, and says which rows go on
    abort_early : end a try once its loss has not fallen below ``ABORT_TOLERANCE`` times its value at
        the previous check (checks at steps 0, steps / 10, ... of each try)
    evaluations : int64 B, gradient evaluations per row (updated)
    reset_between_tries : start each try at a larger c afresh from the round's start, with Adam's
        state cleared; False keeps the variable and Adam's state, as C&W's code does
    progress : if given, the title of a tqdm bar advanced once per iteration

    The loop waits for the device once per iteration, to learn whether any row finished
    a try; the running rows are recomputed only when one did.
    """
    with tqdm(desc=progress, disable=progress is None) as bar:
        _run(model, starts, c, encoding.to_variable, encoding.after_step, image_of, loss_of, accept, on_accept,
             steps, lr, largest_c, factor, abort_early, evaluations, reset_between_tries, bar)


def _run(model, starts, c, to_variable, after_step, image_of, loss_of, accept, on_accept, steps, lr, largest_c,
         factor, abort_early, evaluations, reset_between_tries, progress) -> None:
    n = len(starts)
    device = starts.device
    variable = to_variable(starts)
    optimiser = RowAdamWithResets(variable, lr)
    running = torch.ones(n, dtype=torch.bool, device=device)
    step_in_try = torch.zeros(n, dtype=torch.int64, device=device)
    previous = torch.full((n,), float("inf"), device=device)  # abort early starts at +inf
    check_every = max(steps // 10, 1)

    def new_try(rows: torch.Tensor, from_start: bool = True) -> None:
        if from_start:
            variable[rows] = to_variable(starts[rows])
            optimiser.reset(rows)
        step_in_try[rows] = 0
        previous[rows] = float("inf")

    rows = torch.arange(n, device=device)
    while len(rows):
        w = variable[rows].detach().requires_grad_()
        x = image_of(w, rows)
        logits = model(x)
        loss = loss_of(x, logits, rows)
        (grad,) = torch.autograd.grad(loss.sum(), w)
        with torch.no_grad():
            evaluations[rows] += 1
            done = accept(x, logits, rows)
            # Every running row steps; a row that was accepted is restarted below, which undoes its step.
            optimiser.step(variable, grad, rows)
            after_step(variable)
            k = step_in_try[rows]
            step_in_try[rows] = k + 1
            failed = ~done & (k + 1 >= steps)
            if abort_early:
                check = k % check_every == 0
                failed |= ~done & check & (loss > previous[rows] * ABORT_TOLERANCE)
                previous[rows] = torch.where(check, loss, previous[rows])
            if (done | failed).any():  # the one wait for the device per iteration
                if done.any():
                    accepted = rows[done]
                    starts[accepted] = x[done]
                    go_on = on_accept(accepted, x[done])
                    running[accepted[~go_on]] = False
                    new_try(accepted[go_on])
                failed = rows[failed]
                grows = c[failed] * factor <= largest_c
                running[failed[~grows]] = False  # the last success stands
                c[failed[grows]] *= factor
                new_try(failed[grows], from_start=reset_between_tries)
                rows = running.nonzero().flatten()
                progress.set_postfix(rows=len(rows))
        progress.update(1)
