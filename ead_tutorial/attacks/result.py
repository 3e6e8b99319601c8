"""The one result type that every attack returns, and the last step that every attack shares."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import torch

from ead_tutorial import metrics
from ead_tutorial.attacks.rows import per_row
from ead_tutorial.discretize import repair_rounding
from ead_tutorial.metrics import distortions
from ead_tutorial.objectives import succeeded


@dataclasses.dataclass
class AttackResult:
    """What an attack found, row by row.

    Attributes
    ----------
    adversarial : B x C x H x W in [0, 1]; the best example found, or the original image where the attack failed
    success : bool, B; whether ``adversarial`` meets the attack's goal on the model (with the kappa margin)
    norms : "L0", "L1", "L2", "Linf" -> float B; distortion of ``adversarial`` from the original
    c : float B; the constant of the best example (the last one tried where the attack failed)
    gradient_evaluations : int64 B; backward passes (each with its forward pass) spent on each row
    labels : int64 B; the targets (targeted) or the true classes (untargeted)
    targeted : whether ``labels`` are targets
    details : what a particular attack adds (e.g. the L0 attack's final pixel masks)
    forward_passes : int64 B; every forward pass of the model spent on each row, those of the
        gradients included (None: one per gradient, no other forward pass)
    """

    adversarial: torch.Tensor
    success: torch.Tensor
    norms: dict[str, torch.Tensor]
    c: torch.Tensor
    gradient_evaluations: torch.Tensor
    labels: torch.Tensor
    targeted: bool = True
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    forward_passes: torch.Tensor | None = None

    def __post_init__(self):
        if self.forward_passes is None:
            self.forward_passes = self.gradient_evaluations

    @property
    def success_rate(self) -> float:
        """Percentage of rows that succeeded."""
        return metrics.success_rate(self.success)

    def mean_norms(self) -> dict[str, float]:
        """Each norm averaged over the successful rows (NaN if none succeeded)."""
        return {name: (value[self.success].double().mean().item() if self.success.any() else float("nan"))
                for name, value in self.norms.items()}

    def summary(self) -> pd.Series:
        """ASR (percent), mean distortions over successes, and mean backward and forward passes per row."""
        return pd.Series({"ASR": self.success_rate, **self.mean_norms(),
                          "gradients per row": self.gradient_evaluations.double().mean().item(),
                          "forward passes per row": self.forward_passes.double().mean().item()})

    def case_table(self, targets_per_image: int = 9, by: str = "L2", seed: int = 0) -> pd.DataFrame:
        """Best, average and worst case, for rows laid out by :func:`ead_tutorial.data.with_all_targets`."""
        return metrics.case_table(self.success, self.norms, targets_per_image=targets_per_image, by=by, seed=seed)


@torch.no_grad()
def finish_attack(model, images, labels, best, *, c, evaluations, kappa, targeted, discretize,
                  forward_passes: torch.Tensor | None = None) -> AttackResult:
    """Optionally discretize, re-check every row on the model, and package the result.

    ``best`` is the attack's :class:`~ead_tutorial.attacks.search.BestSoFar`; ``evaluations``
    (int64 B) its backward passes per row and ``forward_passes`` (int64 B, optional) all its
    forward passes. The final check and any repair add to both.
    """
    adversarial = best.adversarial
    forward_passes = evaluations.clone() if forward_passes is None else forward_passes.clone()
    if discretize:
        adversarial, repairs = repair_rounding(model, adversarial, labels, best.found, kappa=kappa, targeted=targeted)
        evaluations, forward_passes = evaluations + repairs, forward_passes + repairs
    # The returned success is what the model says about the returned images.
    success = best.found & succeeded(model(adversarial), labels, kappa, targeted)
    adversarial = torch.where(per_row(success, images), adversarial, images)
    return AttackResult(adversarial=adversarial, success=success, norms=distortions(adversarial, images), c=c,
                        gradient_evaluations=evaluations, labels=labels, targeted=targeted,
                        forward_passes=forward_passes + 1)
