"""The inner solver shared by C&W's L0 and L-infinity attacks.

Both attacks run many short rounds. In each round every active row solves a
restricted problem, starting from its previous solution (a warm start), and stops
the moment its solution is acceptable. A row that gets no acceptable solution
within ``steps`` iterations doubles its c and tries again from the same start,
until c passes a cap; then the row is finished for good.

All per-row state is in tensors indexed by row; rows that are accepted or have
given up drop out of the batch and cost nothing further.
"""

from __future__ import annotations

from typing import Callable

import torch

from ead_tutorial.attacks.cw import ABORT_TOLERANCE
from ead_tutorial.attacks.optimizers import RowAdam

# Image of the variable ``w`` for the rows given: (w, rows) -> B' x C x H x W.
ImageOf = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Per-row loss to minimise, and per-row acceptance: (x, logits, rows) -> B'.
LossOf = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def solve_until_accepted(model: torch.nn.Module, variable: torch.Tensor, rows: torch.Tensor, *, image_of: ImageOf,
                         loss_of: LossOf, accept: LossOf, after_step: Callable[[torch.Tensor], None], steps: int,
                         lr: float, evaluations: torch.Tensor, abort_early: bool = True
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on ``variable`` (one row per entry of ``rows``) until each row is accepted.

    With ``abort_early``, a row also stops (unaccepted) when its loss has not fallen
    below 0.9999 of its value at the previous check, every ``steps / 10`` iterations,
    as in the L2 attack; its first comparison value is +inf.

    Parameters
    ----------
    variable : B' x C x H x W, the optimisation variable of the rows ``rows`` (changed in place)
    rows : int64 B', indices of these rows in the whole batch (passed to the callbacks)
    evaluations : int64 B, gradient evaluations per row of the whole batch (updated)

    Returns
    -------
    accepted : bool B', whether each row reached an acceptable iterate
    solutions : B' x C x H x W, the first acceptable image of each accepted row
    """
    n = len(rows)
    optimiser = RowAdam(variable, lr)
    accepted = torch.zeros(n, dtype=torch.bool, device=variable.device)
    solutions = torch.zeros_like(variable)
    active = torch.arange(n, device=variable.device)  # positions within ``rows``
    previous = torch.full((n,), float("inf"), device=variable.device)
    check_every = max(steps // 10, 1)
    for step in range(steps):
        w = variable[active].detach().requires_grad_()
        x = image_of(w, rows[active])
        logits = model(x)
        loss = loss_of(x, logits, rows[active])
        (grad,) = torch.autograd.grad(loss.sum(), w)
        with torch.no_grad():
            evaluations[rows[active]] += 1
            done = accept(x, logits, rows[active])
            accepted[active[done]] = True
            solutions[active[done]] = x[done]
            keep = ~done
            optimiser.step(variable, grad[keep], active[keep])
            after_step(variable)
            if abort_early and (step + 1) % check_every == 0:
                keep &= ~(loss > previous[active] * ABORT_TOLERANCE)
                previous[active] = loss
            active = active[keep]
        if len(active) == 0:
            break
    return accepted, solutions


def solve_with_doubling(model: torch.nn.Module, starts: torch.Tensor, rows: torch.Tensor, c: torch.Tensor, *,
                        to_variable: Callable[[torch.Tensor], torch.Tensor], largest_c: float, factor: float = 2.0,
                        **solver) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve the rows ``rows`` from ``starts``, multiplying a failing row's c by ``factor`` and retrying.

    ``c`` (float B, whole batch) is read by the callbacks and updated in place. A row
    gives up once its c would exceed ``largest_c``.

    Returns
    -------
    solved : bool B', whether each row was accepted at some c
    solutions : B' x C x H x W, its accepted image (the start where it gave up)
    """
    solved = torch.zeros(len(rows), dtype=torch.bool, device=starts.device)
    solutions = starts.clone()
    pending = torch.arange(len(rows), device=starts.device)
    while len(pending):
        accepted, found = solve_until_accepted(model, to_variable(starts[pending]), rows[pending], **solver)
        solved[pending[accepted]] = True
        solutions[pending[accepted]] = found[accepted]
        failed = pending[~accepted]
        can_grow = c[rows[failed]] * factor <= largest_c
        c[rows[failed[can_grow]]] *= factor
        pending = failed[can_grow]
    return solved, solutions
