"""A fully connected ReLU network as plain float64 arrays, the form a solver needs."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class ReluNetwork:
    """Z(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L, with ``layers = [(W_1, b_1), ..., (W_L, b_L)]``.

    ``W_k`` is float64 (out x in), ``b_k`` float64 (out,). Inputs are flat vectors of
    ``layers[0][0].shape[1]`` values; ReLU follows every layer but the last.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    @classmethod
    def from_torch(cls, model: nn.Module) -> "ReluNetwork":
        """Read a model made only of Flatten, Linear, ReLU (and Dropout, inert in eval mode), in that order.

        Raises a ValueError naming the first module that is not one of those, or a ReLU in
        the wrong place: the exact formulation covers fully connected ReLU networks only.
        """
        if model.training:
            raise ValueError("the model is in training mode; call model.eval() first")
        layers, expect_relu = [], False
        for name, module in model.named_modules():
            if isinstance(module, (nn.Sequential, nn.Flatten, nn.Dropout, nn.Identity)) or module is model:
                continue
            if isinstance(module, nn.Linear):
                if expect_relu:
                    raise ValueError(f"module {name!r}: two Linear layers without a ReLU between them")
                layers.append((module.weight.detach().double().cpu().numpy(),
                               module.bias.detach().double().cpu().numpy() if module.bias is not None
                               else np.zeros(module.out_features)))
                expect_relu = True
            elif isinstance(module, nn.ReLU):
                if not expect_relu:
                    raise ValueError(f"module {name!r}: a ReLU that follows no Linear layer")
                expect_relu = False
            else:
                raise ValueError(f"module {name!r} is a {type(module).__name__}; the exact minimum is written for "
                                 "networks of Linear and ReLU layers only (Flatten and Dropout are allowed)")
        if not layers or not expect_relu:
            raise ValueError("the model must end with a Linear layer that gives the logits")
        for (w, _), (w_next, _) in zip(layers, layers[1:]):
            if w_next.shape[1] != w.shape[0]:
                raise ValueError(f"layer sizes do not chain: {w.shape} then {w_next.shape}")
        return cls(tuple(layers))

    @property
    def inputs(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def classes(self) -> int:
        return self.layers[-1][0].shape[0]

    @property
    def hidden(self) -> list[int]:
        return [w.shape[0] for w, _ in self.layers[:-1]]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Z(x) in float64 for ``x`` of shape (inputs,) or (N, inputs)."""
        a = np.asarray(x, dtype=np.float64)
        for index, (w, b) in enumerate(self.layers):
            a = a @ w.T + b
            if index < len(self.layers) - 1:
                a = np.maximum(a, 0.0)
        return a

    def torch_logits(self, model: nn.Module, x: np.ndarray) -> np.ndarray:
        """Z(x) computed by ``model`` itself in float32 (the check that matters for an attack)."""
        parameter = next(model.parameters())
        with torch.no_grad():
            batch = torch.as_tensor(np.atleast_2d(x), dtype=torch.float32, device=parameter.device)
            return model(batch).double().cpu().numpy()
