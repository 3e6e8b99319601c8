"""The objective functions f1-f7 of Carlini & Wagner (2017), Section V.A.

Each objective maps the logits Z(x) of a batch to one value per row, and an attack
minimises ``distance + c * f``. C&W require ``f(x) <= 0`` to mean that the attack has
succeeded. In the targeted mode ``labels`` are the targets t; in the untargeted mode
they are the true classes y, and the attack succeeds when y stops winning.

Two of the objectives are misprinted in the paper; :data:`PRINTED` keeps the printed
forms so the book can show what goes wrong, and :data:`OBJECTIVES` holds the forms
this package uses:

- printed f1 = -CE + 1 = log F_t + 1 is <= 0 when F_t is *small*: the sign is wrong.
  We use f1 = -log2 F_t - 1, which is <= 0 exactly when F_t >= 1/2.
- printed f5 = -log(2 F_t - 2) takes the log of a number that is never positive.
  We use f5 = -log(2 F_t), which is <= 0 exactly when F_t >= 1/2.

All shapes: ``logits`` B x K (float), ``labels`` B (int64), result B (float).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

LOG2 = math.log(2.0)


def margin(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max_{i != label} v_i - v_label per row: negative exactly when ``labels`` wins."""
    index = labels[:, None]
    others = values.scatter(1, index, float("-inf"))  # every class but the label
    return others.amax(1) - values.gather(1, index).squeeze(1)


def _signed_margin(values: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    # Targeted: the target must beat every other class. Untargeted: some class must beat y.
    return margin(values, labels) if targeted else -margin(values, labels)


def succeeded(logits: torch.Tensor, labels: torch.Tensor, kappa: float = 0.0, targeted: bool = True) -> torch.Tensor:
    """Whether each row meets the attack's goal with margin kappa (bool, B).

    Targeted: Z_t beats every other logit by more than kappa. Untargeted: some
    other logit beats Z_y by more than kappa. This is the decision every attack uses.
    """
    return _signed_margin(logits, labels, targeted) < -kappa


def _log_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)


def f1(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """Corrected f1 = -log2 F_t - 1 (targeted); log2 F_y + 1 (untargeted)."""
    bits = _log_prob(logits, labels) / LOG2
    return (-bits - 1) if targeted else (bits + 1)


def f2(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f2 = (max_{i != t} F_i - F_t)^+, floored at -kappa instead of 0."""
    return _signed_margin(logits.softmax(1), labels, targeted).clamp(min=-kappa)


def f3(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f3 = softplus(max_{i != t} F_i - F_t + kappa) - log 2."""
    return F.softplus(_signed_margin(logits.softmax(1), labels, targeted) + kappa) - LOG2


def f4(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f4 = (0.5 - F_t)^+ (targeted); (F_y - 0.5)^+ (untargeted)."""
    p = _log_prob(logits, labels).exp()
    return (0.5 - p).clamp(min=0) if targeted else (p - 0.5).clamp(min=0)


def f5(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """Corrected f5 = -log(2 F_t) (targeted); log(2 F_y) (untargeted)."""
    log_2p = _log_prob(logits, labels) + LOG2
    return -log_2p if targeted else log_2p


def f6(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f6 = max(max_{i != t} Z_i - Z_t, -kappa): C&W's choice, and EAD's eqs. (4) and (6)."""
    return _signed_margin(logits, labels, targeted).clamp(min=-kappa)


def f7(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f7 = softplus(max_{i != t} Z_i - Z_t + kappa) - log 2."""
    return F.softplus(_signed_margin(logits, labels, targeted) + kappa) - LOG2


def printed_f1(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f1 exactly as printed: -loss_{F,t} + 1 = log F_t + 1 (wrong sign; see module docstring)."""
    return _log_prob(logits, labels) + 1


def printed_f5(logits, labels, kappa: float = 0.0, targeted: bool = True):
    """f5 exactly as printed: -log(2 F_t - 2); never a finite number (see module docstring).

    2 F_t - 2 < 0 gives NaN; where F_t rounds to exactly 1 in floating point, -log(0) = +inf.
    """
    return -torch.log(2 * _log_prob(logits, labels).exp() - 2)


Objective = Callable[..., torch.Tensor]
OBJECTIVES: dict[str, Objective] = {"f1": f1, "f2": f2, "f3": f3, "f4": f4, "f5": f5, "f6": f6, "f7": f7}
PRINTED: dict[str, Objective] = {"f1": printed_f1, "f5": printed_f5}
# Objectives for which f <= 0 holds exactly when the label wins (C&W's requirement, both ways).
EXACT: tuple[str, ...] = ("f2", "f3", "f6", "f7")


def get_objective(name: str) -> Objective:
    """The objective called ``name`` ("f1" ... "f7"), or a ValueError listing them."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
