"""The per-row binary search over the constant c, and the record of the best example so far.

Both are shared by every attack that minimises ``distance + c * f`` (C&W and EAD).
All state is one tensor per quantity, one entry per row; nothing loops over rows.
"""

from __future__ import annotations

import dataclasses

import torch

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
    def update(self, rows: torch.Tensor, candidates: torch.Tensor, success: torch.Tensor,
               distance: torch.Tensor, c: torch.Tensor) -> None:
        """Keep ``candidates`` (for the batch rows ``rows``) that succeed with less distance than before."""
        better = success & (distance < self.distance[rows])
        chosen = rows[better]
        self.distance[chosen] = distance[better]
        self.adversarial[chosen] = candidates[better]
        self.c[chosen] = c[better]
