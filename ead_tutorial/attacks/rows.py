"""Helpers for per-row values: one number per row of a B x ... batch."""

from __future__ import annotations

import torch


def per_row(value: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A number as it is; a float B tensor (one value per row) shaped B x 1 x ... to broadcast against ``like``."""
    if isinstance(value, torch.Tensor) and value.dim() == 1:
        return value.view(-1, *[1] * (like.dim() - 1))
    return value


def rows_tensor(value: float | torch.Tensor, n_rows: int, device: torch.device | str) -> torch.Tensor:
    """``value`` as a float B tensor: a number repeated ``n_rows`` times, or the tensor itself."""
    return torch.as_tensor(value, dtype=torch.float32, device=device).expand(n_rows).clone()
