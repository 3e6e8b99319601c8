"""The three ways of keeping an attack's image inside the box [0, 1]^p (C&W Section V.B).

An attack optimises a variable ``w``; a box encoding says how ``w`` becomes an image:

- ``projected``: w is the image; after every optimiser step it is clipped back into [0, 1];
- ``clipped``: the loss sees clip(w, 0, 1), so the gradient vanishes wherever w is outside
  (it passes at the bounds themselves, as TensorFlow's clip did for C&W);
- ``tanh``: the change of variables x = (tanh w + 1) / 2, which is in the box for every w.

All tensors keep the image's shape, B x C x H x W, with pixels in [0, 1].
"""

from __future__ import annotations

import torch

# atanh(+-1) is infinite: pull 2x - 1 inside (-1, 1) by this relative amount first.
ATANH_SHRINK = 1e-6


class TanhBox:
    """x = (tanh w + 1) / 2: no constraint left on w."""

    name = "tanh"

    @staticmethod
    def to_variable(x: torch.Tensor) -> torch.Tensor:
        return torch.atanh((2 * x - 1) * (1 - ATANH_SHRINK))

    @staticmethod
    def to_image(w: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(w) + 1) / 2

    @staticmethod
    def after_step(w: torch.Tensor) -> None:
        pass


class ClippedBox:
    """The loss sees clip(w, 0, 1); w itself may wander outside the box."""

    name = "clipped"

    @staticmethod
    def to_variable(x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def to_image(w: torch.Tensor) -> torch.Tensor:
        # torch's clamp sends no gradient through a value exactly on a bound, which would
        # freeze every pixel that starts at 0 or 1; TensorFlow's clip_by_value (C&W's code)
        # passes it there. Pass it on [0, 1] inclusive, block it strictly outside.
        inside = (w >= 0) & (w <= 1)
        return torch.where(inside, w, w.clamp(0, 1))

    @staticmethod
    def after_step(w: torch.Tensor) -> None:
        pass


class ProjectedBox:
    """w is the image, projected back into [0, 1] after every step."""

    name = "projected"

    @staticmethod
    def to_variable(x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def to_image(w: torch.Tensor) -> torch.Tensor:
        return w

    @staticmethod
    @torch.no_grad()
    def after_step(w: torch.Tensor) -> None:
        w.clamp_(0, 1)


BOXES = {box.name: box for box in (ProjectedBox, ClippedBox, TanhBox)}


def get_box(name: str):
    """The encoding called ``name`` ("projected", "clipped" or "tanh"), or a ValueError listing them."""
    if name not in BOXES:
        raise ValueError(f"unknown box encoding {name!r}; choose one of {', '.join(BOXES)}")
    return BOXES[name]
