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
- ``"until-success"`` (this package's default for EAD): the ``"loss"`` test, but only for
  rows that have not yet succeeded at this c; a row that has succeeded runs the round to
  its end. EAD's loss mixes c f with the distortion, and it stalls while the L1 distortion
  is still falling: the last iterations of a round, where the step size has decayed, are
  where the decision rule finds its smallest examples. Rounds at a c too small to succeed
  still end early, and those are where abort early saves most.

All state is one tensor per row of the batch, and the decision costs no host
synchronisation; the caller removes the stopped rows.
"""

from __future__ import annotations

import torch

# Stop when the watched quantity has not fallen below this fraction of its previous value.
ABORT_TOLERANCE = 0.9999
RULES = ("loss", "batch-loss", "until-success")


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

    def due(self, k: int) -> bool:
        """Whether iteration ``k`` (0-based) is a check: k = 0, I/10, 2I/10, ..."""
        return self.rule is not None and k % self.every == 0

    @property
    def needs_loss(self) -> bool:
        """Whether the rule needs every running row's loss (and so the model's logits) at a check.

        "until-success" needs it only for rows that have not succeeded at this c, which are never
        left out of a check.
        """
        return self.rule in ("loss", "batch-loss")

    def stalled(self, loss: torch.Tensor, succeeded_here: torch.Tensor) -> torch.Tensor:
        """At a check: which running rows stop (bool B'). Updates the record of the previous check.

        ``loss`` (float B') and ``succeeded_here`` (bool B', success at this c) are for the running rows.
        """
        if self.rule == "batch-loss":
            total = loss.sum()
            stalled = (total > ABORT_TOLERANCE * self.previous[:1]).expand_as(loss)
            self.previous = total.expand_as(loss).clone()
            return stalled
        stalled = loss > ABORT_TOLERANCE * self.previous
        self.previous = loss.clone()
        return stalled if self.rule == "loss" else stalled & ~succeeded_here  # "until-success"

    def keep(self, going_on: torch.Tensor) -> None:
        """Drop the state of the rows that stopped (``going_on``: bool B' over the running rows)."""
        self.previous = self.previous[going_on]
