"""A random linear classifier, where the smallest adversarial perturbation can be computed exactly.

For Z(x) = W x + b, the targeted minimum-L1 perturbation over the box is a linear
program: minimise sum |delta_i| subject to Z_t(x0 + delta) >= Z_j(x0 + delta) for every
j != t and 0 <= x0 + delta <= 1. It is the yardstick for how close an L1 attack gets.
"""

from __future__ import annotations

import numpy as np
import torch


class RandomLinear(torch.nn.Module):
    """Z(x) = W x with W drawn from N(0, scale^2 / d); inputs B x d (or anything that flattens to it)."""

    def __init__(self, dim: int = 784, classes: int = 10, scale: float = 10.0, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.layer = torch.nn.Linear(dim, classes)
        with torch.no_grad():
            self.layer.weight.copy_(torch.randn(classes, dim, generator=generator) * scale / dim ** 0.5)
            self.layer.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(1))


def minimum_l1(model: RandomLinear, image: torch.Tensor, target: int, margin: float = 1e-6) -> float:
    """The exact minimum ||delta||_1 that makes ``model`` predict ``target`` on ``image + delta`` in [0, 1]^d.

    Solved with scipy's HiGHS as a linear program in delta = u - v, u, v >= 0; ``margin``
    asks Z_t to win by a hair, as a strict inequality cannot be posed.
    """
    from scipy.optimize import linprog

    weight = model.layer.weight.double().numpy()
    bias = model.layer.bias.double().numpy()
    x = image.flatten().double().numpy()
    rows, bounds_right = [], []
    for other in range(weight.shape[0]):
        if other == target:
            continue
        gap = weight[other] - weight[target]  # (W_j - W_t)(x + delta) + b_j - b_t <= -margin
        rows.append(np.concatenate([gap, -gap]))
        bounds_right.append(-margin - (gap @ x + bias[other] - bias[target]))
    bounds = [(0.0, 1.0 - value) for value in x] + [(0.0, value) for value in x]
    solved = linprog(np.ones(2 * len(x)), A_ub=np.array(rows), b_ub=np.array(bounds_right), bounds=bounds,
                     method="highs")
    if solved.status != 0:
        raise RuntimeError(f"the linear program did not solve: {solved.message}")
    return float(solved.fun)
