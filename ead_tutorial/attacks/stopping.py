"""Abort early: when one round of an attack (one value of c) stops for a row.

C&W and EAD both run a fixed number I of iterations per value of c, and both may end
a round early. Every rule here looks at a row only on the check iterations
k = 0, I/10, 2I/10, ... (the reference code's schedule, so a round can end at k = I/10
at the earliest) and compares a quantity with its value at the previous check:

- ``"loss"`` (C&W's reference code, per row): stop a row whose loss did not fall below
  ``ABORT_TOLERANCE`` times its value at the previous check.
- ``"batch-loss"`` (the letter of both reference codes): the same test on the loss summed
  over every running row; when it stalls, the whole batch stops. With many rows it
  rarely stalls, so this is close to no abort early at all.
- ``"distortion"`` (this package's default for EAD): a row that has not yet succeeded at
  this c is judged by its loss, as in ``"loss"``; a row that has succeeded stops only
  once its best distortion (over every c so far) has not fallen below ``ABORT_TOLERANCE``
  times its value at the previous check. The loss of EAD mixes c f with the distortion,
  so it can stall while the distortion is still falling; this rule waits for the
  quantity that decides the answer.

All state is one tensor per row of the batch, and the decision costs no host
synchronisation; the caller removes the stopped rows.
"""

from __future__ import annotations

import torch

# Stop when the watched quantity has not fallen below this fraction of its previous value.
ABORT_TOLERANCE = 0.9999
RULES = ("loss", "batch-loss", "distortion")


def choose_rule(abort_early: bool | str, default: str) -> str | None:
    """The rule that ``abort_early`` names: True gives ``default``, False gives None (never stop)."""
    if abort_early is True:
        return default
    if abort_early is False or abort_early is None:
        return None
    if abort_early not in RULES:
        raise ValueError(f"unknown abort_early rule {abort_early!r}; choose True, False or one of {', '.join(RULES)}")
    return abort_early


class EarlyStop:
    """One round's abort-early test for ``n_rows`` rows (see the module docstring for the rules)."""

    def __init__(self, rule: str | None, steps: int, n_rows: int, device: torch.device | str):
        self.rule = rule
        self.every = max(steps // 10, 1)
        self.previous = torch.full((n_rows,), float("inf"), device=device)  # +inf: the first check never stops
        self.previous_succeeded = torch.zeros(n_rows, dtype=torch.bool, device=device)

    def due(self, k: int) -> bool:
        """Whether iteration ``k`` (0-based) is a check: k = 0, I/10, 2I/10, ..."""
        return self.rule is not None and k % self.every == 0

    @property
    def needs_loss(self) -> bool:
        """Whether the rule needs every running row's loss (and so the model's logits) at a check."""
        return self.rule in ("loss", "batch-loss")

    def stalled(self, loss: torch.Tensor, best_distance: torch.Tensor, succeeded_here: torch.Tensor) -> torch.Tensor:
        """At a check: which running rows stop (bool B'). Updates the record of the previous check.

        ``loss`` (float B'), ``best_distance`` (float B', the best distortion so far, +inf before
        any success) and ``succeeded_here`` (bool B', success at this c) are for the running rows.
        """
        if self.rule == "batch-loss":
            total = loss.sum()
            stalled = (total > ABORT_TOLERANCE * self.previous[:1]).expand_as(loss)
            self.previous = total.expand_as(loss).clone()
            return stalled
        if self.rule == "loss":
            watched, comparable = loss, torch.ones_like(succeeded_here)
        else:  # "distortion": compare like with like; a row that just succeeded starts afresh
            watched = torch.where(succeeded_here, best_distance, loss)
            comparable = succeeded_here == self.previous_succeeded
        stalled = comparable & (watched > ABORT_TOLERANCE * self.previous)
        self.previous = watched.clone()
        self.previous_succeeded = succeeded_here.clone()
        return stalled

    def keep(self, going_on: torch.Tensor) -> None:
        """Drop the state of the rows that stopped (``going_on``: bool B' over the running rows)."""
        self.previous = self.previous[going_on]
        self.previous_succeeded = self.previous_succeeded[going_on]
