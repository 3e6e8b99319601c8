"""The per-row binary search over the constant c, and the record of the best example so far.

Both are shared by every attack that minimises ``distance + c * f`` (C&W and EAD).
All state is one tensor per quantity, one entry per row; nothing loops over rows.
"""

from __future__ import annotations

import dataclasses

import torch

from ead_tutorial.attacks.rows import per_row

# An upper bound at or above this means "no success yet", so c still grows tenfold.
UNBOUNDED = 1e10


@dataclasses.dataclass
class ConstantSearch:
    """C&W's search over c, one independent search per row.

    Invariants, for every row: ``lower <= c <= upper``; every c tried at or below
    ``lower`` failed; some c at ``upper`` (if bounded) succeeded.
    """

    c: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor

    @classmethod
    def start(cls, rows: int, initial_c: float | torch.Tensor, device: torch.device | str = "cpu"
              ) -> "ConstantSearch":
        """``rows`` searches, all starting at ``initial_c`` (a number, or one value per row)."""
        c = torch.as_tensor(initial_c, dtype=torch.float32, device=device).expand(rows).clone()
        return cls(c=c,
                   lower=torch.zeros(rows, device=device),
                   upper=torch.full((rows,), UNBOUNDED, device=device))

    def update(self, success: torch.Tensor) -> None:
        """After trying ``c``: shrink the interval, then bisect, or grow c tenfold while unbounded."""
        self.upper = torch.where(success, torch.minimum(self.upper, self.c), self.upper)
        self.lower = torch.where(success, self.lower, torch.maximum(self.lower, self.c))
        bounded = self.upper < UNBOUNDED
        self.c = torch.where(bounded, (self.lower + self.upper) / 2, self.c * 10)

    def try_upper(self) -> None:
        """Set c to the upper bound in the rows that have one: the last round of the reference codes.

        C&W's and EAD's code (and foolbox, adv-lib, torchattacks) spend their last round,
        when there are 10 or more rounds, at the smallest c known to succeed rather than
        at the midpoint, so that a row whose search has not converged still ends on a
        value that works. Rows with no upper bound try ``UNBOUNDED`` itself, as there.
        """
        self.c = self.upper.clone()


def search_rounds(search: ConstantSearch, search_steps: int, last_at_upper: bool | None):
    """The rounds of the search over c: yields once per round, before each round is run.

    ``last_at_upper``: spend the last round at each row's upper bound (see
    :meth:`ConstantSearch.try_upper`); None does so when ``search_steps >= 10``, as the
    reference codes do.
    """
    if last_at_upper is None:
        last_at_upper = search_steps >= 10
    for step in range(search_steps):
        if last_at_upper and step == search_steps - 1 and step > 0:
            search.try_upper()
        yield step


@dataclasses.dataclass
class BestSoFar:
    """The successful example of least distance found for each row, over every c and step."""

    adversarial: torch.Tensor  # B x ..., starts as the original images
    distance: torch.Tensor  # B, +inf until a row succeeds
    c: torch.Tensor  # B, the c at which the best example was found

    @classmethod
    def start(cls, images: torch.Tensor) -> "BestSoFar":
        rows = len(images)
        return cls(adversarial=images.detach().clone(),
                   distance=torch.full((rows,), float("inf"), device=images.device),
                   c=torch.zeros(rows, device=images.device))

    @property
    def found(self) -> torch.Tensor:
        return torch.isfinite(self.distance)

    @torch.no_grad()
    def update(self, rows: torch.Tensor | None, candidates: torch.Tensor, success: torch.Tensor,
               distance: torch.Tensor, c: torch.Tensor) -> None:
        """Keep ``candidates`` that succeed with less distance than before.

        ``rows`` (int64 B') says which rows of the batch the B' candidates belong to; None
        means every row, in order. Written with ``torch.where`` over the given rows, so it
        never waits for the device.
        """
        if rows is None:
            better = success & (distance < self.distance)
            self.distance = torch.where(better, distance, self.distance)
            self.adversarial = torch.where(per_row(better, candidates), candidates, self.adversarial)
            self.c = torch.where(better, c, self.c)
            return
        current = self.distance[rows]
        better = success & (distance < current)
        self.distance[rows] = torch.where(better, distance, current)
        self.adversarial[rows] = torch.where(per_row(better, candidates), candidates, self.adversarial[rows])
        self.c[rows] = torch.where(better, c, self.c[rows])
