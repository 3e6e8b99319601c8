"""The one result type that every attack returns."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import torch

from ead_tutorial import metrics


@dataclasses.dataclass
class AttackResult:
    """What an attack found, row by row.

    Attributes
    ----------
    adversarial : B x C x H x W in [0, 1]; the best example found, or the original image where the attack failed
    success : bool, B; whether ``adversarial`` meets the attack's goal on the model (with the kappa margin)
    norms : "L0", "L1", "L2", "Linf" -> float B; distortion of ``adversarial`` from the original
    c : float B; the constant of the best example (the last one tried where the attack failed)
    gradient_evaluations : int64 B; forward-and-backward passes spent on each row
    labels : int64 B; the targets (targeted) or the true classes (untargeted)
    targeted : whether ``labels`` are targets
    details : what a particular attack adds (e.g. the L0 attack's final pixel masks)
    """

    adversarial: torch.Tensor
    success: torch.Tensor
    norms: dict[str, torch.Tensor]
    c: torch.Tensor
    gradient_evaluations: torch.Tensor
    labels: torch.Tensor
    targeted: bool = True
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        """Percentage of rows that succeeded."""
        return metrics.success_rate(self.success)

    def mean_norms(self) -> dict[str, float]:
        """Each norm averaged over the successful rows (NaN if none succeeded)."""
        return {name: (value[self.success].double().mean().item() if self.success.any() else float("nan"))
                for name, value in self.norms.items()}

    def summary(self) -> pd.Series:
        """ASR (percent), mean distortions over successes, and mean gradient evaluations per row."""
        return pd.Series({"ASR": self.success_rate, **self.mean_norms(),
                          "gradients per row": self.gradient_evaluations.double().mean().item()})

    def case_table(self, targets_per_image: int = 9, by: str = "L2", seed: int = 0) -> pd.DataFrame:
        """Best, average and worst case, for rows laid out by :func:`ead_tutorial.data.with_all_targets`."""
        return metrics.case_table(self.success, self.norms, targets_per_image=targets_per_image, by=by, seed=seed)
