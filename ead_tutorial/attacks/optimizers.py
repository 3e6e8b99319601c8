"""Optimisers whose state is held per row, so that rows can leave an attack at any time.

``torch.optim`` steps a whole tensor and keeps its state to itself; an attack whose rows
finish at different times needs to drop the state of the rows that stopped
(``keep``), or to step and reset single rows (``RowAdamWithResets``). Adam's update is
elementwise, so either way it is exactly Adam on each row alone.
"""

from __future__ import annotations

import torch


class RowAdam:
    """Adam (Kingma & Ba, 2015) on a B x ... variable whose rows may leave (``keep``)."""

    def __init__(self, variable: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = torch.zeros_like(variable)
        self.v = torch.zeros_like(variable)
        self.t = 0  # rows only ever leave, so every active row has taken the same number of steps

    @torch.no_grad()
    def step(self, variable: torch.Tensor, grad: torch.Tensor) -> None:
        """Update every row of ``variable`` in place, given its gradient (both B x ...)."""
        self.t += 1
        first_fix, second_fix = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        self.m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        variable.addcdiv_(self.m, (self.v / second_fix).sqrt_().add_(self.eps), value=-self.lr / first_fix)

    def keep(self, going_on: torch.Tensor) -> None:
        """Drop the moments of the rows that stopped, for a variable compacted the same way (bool B)."""
        self.m, self.v = self.m[going_on], self.v[going_on]


class RowAdamWithResets(RowAdam):
    """Adam with its own step count per row, so that any row can restart at any time."""

    def __init__(self, variable: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        super().__init__(variable, lr, betas, eps)
        self.t = torch.zeros(len(variable), device=variable.device)  # steps taken, per row

    def reset(self, rows: torch.Tensor) -> None:
        self.m[rows] = 0
        self.v[rows] = 0
        self.t[rows] = 0

    @torch.no_grad()
    def step(self, variable: torch.Tensor, grad: torch.Tensor, rows: torch.Tensor) -> None:
        """Adam update of ``variable[rows]`` given their gradient ``grad``."""
        self.t[rows] += 1
        shape = (-1, *[1] * (variable.dim() - 1))
        first_fix = (1 - self.beta1 ** self.t[rows]).view(shape)
        second_fix = (1 - self.beta2 ** self.t[rows]).view(shape)
        m = self.m[rows].mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        v = self.v[rows].mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        self.m[rows], self.v[rows] = m, v
        variable[rows] -= self.lr * (m / first_fix) / ((v / second_fix).sqrt_() + self.eps)


class RowGradientDescent:
    """Plain gradient descent with a fixed step, for comparison with Adam."""

    def __init__(self, variable: torch.Tensor, lr: float):
        self.lr = lr

    @torch.no_grad()
    def step(self, variable: torch.Tensor, grad: torch.Tensor) -> None:
        variable.sub_(grad, alpha=self.lr)

    def keep(self, going_on: torch.Tensor) -> None:
        """Gradient descent keeps no state per row."""


OPTIMIZERS = {"adam": RowAdam, "gd": RowGradientDescent}
