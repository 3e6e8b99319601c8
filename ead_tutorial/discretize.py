"""From continuous attacks to valid 8-bit images (C&W Section V.D).

An attack works on pixels in [0, 1], but a stored image has 256 levels per pixel.
Rounding to the nearest level can undo a small perturbation's success; C&W restore
it by a greedy search on the lattice of valid images, one pixel level at a time.
"""

from __future__ import annotations

import torch

from ead_tutorial.objectives import f6, succeeded

LEVELS = 255


def round_to_pixels(x: torch.Tensor) -> torch.Tensor:
    """The nearest valid 8-bit image: every pixel a multiple of 1/255 in [0, 1]."""
    return (x.clamp(0, 1) * LEVELS).round() / LEVELS


def is_valid_image(x: torch.Tensor) -> bool:
    """Whether every pixel of ``x`` is one of the 256 levels of an 8-bit image."""
    levels = x * LEVELS
    return bool(((levels - levels.round()).abs() < 1e-4).all() and x.min() >= 0 and x.max() <= 1)


def repair_rounding(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, *,
                    kappa: float = 0.0, targeted: bool = True, max_changes: int = 200
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Round ``x`` to 8-bit pixels, then greedily repair the rows that rounding broke.

    Parameters
    ----------
    x : B x C x H x W in [0, 1], continuous adversarial examples
    labels : int64 B, targets (or true classes when ``targeted=False``)
    rows : bool B, the rows to repair (those that succeeded before rounding)
    max_changes : at most this many one-level pixel changes per row

    Each repair step moves, in every still-failing row, the one pixel whose one-level
    move against the gradient of f6 promises the largest decrease of f6 (a first-order
    estimate), and keeps the move. Rows stop as soon as they succeed again.

    Returns
    -------
    x_valid : B x C x H x W, valid 8-bit images
    evaluations : int64 B, the gradient evaluations each row spent on the repair
    """
    x = round_to_pixels(x.detach())
    evaluations = torch.zeros(len(x), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        broken = rows & ~succeeded(model(x), labels, kappa, targeted)
    active = broken.nonzero().flatten()
    for _ in range(max_changes):
        if len(active) == 0:
            break
        with torch.enable_grad():  # callers may be inside no_grad
            candidate = x[active].requires_grad_()
            logits = model(candidate)
            loss = f6(logits, labels[active], kappa=kappa, targeted=targeted)
            (grad,) = torch.autograd.grad(loss.sum(), candidate)
        evaluations[active] += 1
        with torch.no_grad():
            fixed = succeeded(logits, labels[active], kappa, targeted)
            active, grad, candidate = active[~fixed], grad[~fixed], candidate[~fixed].detach()
            if len(active) == 0:
                break
            move = -grad.sign() / LEVELS  # one level against the gradient
            allowed = ((candidate + move) >= 0) & ((candidate + move) <= 1) & (grad != 0)
            gain = (grad.abs() * allowed).flatten(1)
            best_pixel = gain.argmax(1)
            flat = candidate.flatten(1)
            flat[torch.arange(len(active), device=x.device), best_pixel] += move.flatten(1)[
                torch.arange(len(active), device=x.device), best_pixel]
            x[active] = round_to_pixels(flat.view_as(candidate))
    return x, evaluations
