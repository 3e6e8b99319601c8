"""The fast gradient baselines of the EAD paper: FGM and I-FGM in L1, L2 and L-infinity.

FGM (Goodfellow et al., 2015) takes one step of length eps from x0 along the direction
of steepest descent of the training loss J toward the target t (EAD eqs. 1 and 2):

    x = clip_[0,1](x0 - eps * d(grad J(x0, t))),

with d(g) = sign(g) for L-infinity and g / ||g||_q for L_q, q = 1, 2, so that the step
has norm exactly eps before the box clip. I-FGM (Kurakin et al., 2016) repeats the step
``steps`` times with length eps / steps, and after each step pulls x back into the
eps-ball around x0 and into the box.

The EAD paper gives each image the smallest eps of a fine grid that succeeds
(its Table 4): :func:`smallest_eps` finds it without trying the whole grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.attacks.rows import per_row
from ead_tutorial.attacks.validation import check_attack_inputs
from ead_tutorial.metrics import distortions
from ead_tutorial.objectives import succeeded

NORMS = ("l1", "l2", "linf")
# The EAD paper's grids (Table 4): eps = k * resolution for k = 1, ..., 1000.
PAPER_RESOLUTION = {"linf": 1e-3, "l1": 1.0, "l2": 1e-2}
GRID_SIZE = 1000


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    return norm


def _eps_rows(eps: float | torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``eps`` as one float per row (B), checked."""
    eps = torch.as_tensor(eps, dtype=images.dtype, device=images.device)
    if eps.dim() > 1 or (eps.dim() == 1 and eps.shape != (len(images),)):
        raise ValueError(f"eps must be a number or one value per row, shape ({len(images)},); got {tuple(eps.shape)}")
    if not torch.isfinite(eps).all() or (eps < 0).any():
        raise ValueError("eps must be finite and non-negative")
    return eps.expand(len(images)).clone()


def unit_direction(gradient: torch.Tensor, norm: str) -> torch.Tensor:
    """d(g) with ||d||_norm = 1 per row (0 where g = 0): sign(g) for linf, g / ||g||_q for l1 and l2 (EAD eqs. 1-2).

    ``gradient`` is B x ...; so is the result.
    """
    if norm == "linf":
        return gradient.sign()
    flat = gradient.flatten(1)
    size = flat.abs().sum(1) if norm == "l1" else flat.norm(dim=1)
    return gradient / per_row(size.clamp(min=torch.finfo(gradient.dtype).tiny), gradient)


def project_to_ball(delta: torch.Tensor, eps: torch.Tensor, norm: str) -> torch.Tensor:
    """The nearest point to ``delta`` (B x ...) in the ball ||.||_norm <= eps (eps: B): the I-FGM clip."""
    if norm == "linf":
        bound = per_row(eps, delta)
        return torch.maximum(torch.minimum(delta, bound), -bound)
    flat = delta.flatten(1)
    if norm == "l2":
        scale = (eps / flat.norm(dim=1).clamp(min=torch.finfo(delta.dtype).tiny)).clamp(max=1)
        return delta * per_row(scale, delta)
    # L1: soft-threshold every coordinate by the theta that puts the row on the sphere
    # (Duchi et al., 2008); rows already inside the ball are left alone.
    size = flat.abs()
    ordered = size.sort(dim=1, descending=True).values
    partial = ordered.cumsum(1)
    count = torch.arange(1, flat.shape[1] + 1, device=delta.device, dtype=delta.dtype)
    support = (ordered - (partial - eps[:, None]) / count > 0).sum(1).clamp(min=1)
    theta = (partial.gather(1, support[:, None] - 1).squeeze(1) - eps) / support
    shrunk = flat.sign() * (size - theta[:, None]).clamp(min=0)
    inside = size.sum(1) <= eps
    return torch.where(inside[:, None], flat, shrunk).view_as(delta)


def loss_gradient(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """The gradient (B x ...) of the loss each step descends.

    Targeted: cross-entropy toward ``labels`` (we descend it). Untargeted: minus the
    cross-entropy of the true ``labels`` (descending it ascends the loss).
    """
    x = x.detach().requires_grad_()
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss if targeted else -loss, x)
    return gradient


def _fgm_step(x0, direction, eps):
    return (x0 - per_row(eps, x0) * direction).clamp(0, 1)


def _ifgm_run(model, x0, labels, eps, *, norm, steps, targeted):
    """I-FGM from x0 with per-row eps; returns the last iterate (B x ...)."""
    step = eps / steps
    x = x0
    for _ in range(steps):
        moved = x - per_row(step, x0) * unit_direction(loss_gradient(model, x, labels, targeted), norm)
        x = (x0 + project_to_ball(moved - x0, eps, norm)).clamp(0, 1).detach()
    return x


@torch.no_grad()
def _package(model, images, labels, proposed, eps, *, targeted, evaluations, **details) -> AttackResult:
    """Rows whose candidate succeeds keep it; the others hold x0 (the shared convention)."""
    success = succeeded(model(proposed), labels, 0.0, targeted)
    adversarial = torch.where(per_row(success, images), proposed, images)
    return AttackResult(adversarial=adversarial, success=success, norms=distortions(adversarial, images),
                        c=torch.full((len(images),), float("nan"), device=images.device),
                        gradient_evaluations=evaluations, labels=labels, targeted=targeted,
                        details={"eps": eps, **details})


def fgm(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, norm: str,
        eps: float | torch.Tensor, targeted: bool = True, true_labels: torch.Tensor | None = None) -> AttackResult:
    """FGM: one step of ``norm``-length eps along the loss gradient, then the box clip (EAD eqs. 1-2).

    Parameters
    ----------
    model : maps B x C x H x W images in [0, 1] to B x K logits; in eval mode, on the images' device
    images : float B x C x H x W in [0, 1]
    targets : int64 B, the targets (``targeted=True``) or the true classes (``targeted=False``)
    norm : "l1", "l2" or "linf"
    eps : the step's length in ``norm``: a number, or float B (one per row)
    true_labels : int64 B, optional; in the targeted mode a target may not equal it

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult` (one gradient per row); ``details["eps"]`` holds eps per row.
    """
    check_norm(norm)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    eps = _eps_rows(eps, images)
    direction = unit_direction(loss_gradient(model, images, targets, targeted), norm)
    evaluations = torch.ones(len(images), dtype=torch.int64, device=images.device)
    return _package(model, images, targets, _fgm_step(images, direction, eps), eps, targeted=targeted,
                    evaluations=evaluations)


def ifgm(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, norm: str,
         eps: float | torch.Tensor, steps: int = 10, targeted: bool = True,
         true_labels: torch.Tensor | None = None) -> AttackResult:
    """I-FGM: ``steps`` FGM steps of length eps / steps, each followed by the eps-ball and box clips.

    Shapes and arguments as in :func:`fgm`; ``steps`` is 10 in the EAD paper. The last
    iterate is the answer. Each row costs ``steps`` gradients.
    """
    check_norm(norm)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    eps = _eps_rows(eps, images)
    last = _ifgm_run(model, images.detach(), targets, eps, norm=norm, steps=steps, targeted=targeted)
    evaluations = torch.full((len(images),), steps, dtype=torch.int64, device=images.device)
    return _package(model, images, targets, last, eps, targeted=targeted, evaluations=evaluations)


def eps_grid(norm: str, resolution: float | None = None, largest: float | None = None) -> torch.Tensor:
    """The grid eps = k * resolution, k = 1, 2, ..., up to ``largest`` (float64, increasing).

    The defaults are the EAD paper's Table 4: 1,000 values, from 1e-3 to 1 for linf, from
    1 to 1,000 for l1, from 1e-2 to 10 for l2. A coarser ``resolution`` gives a shorter grid.
    """
    resolution = PAPER_RESOLUTION[check_norm(norm)] if resolution is None else resolution
    largest = PAPER_RESOLUTION[norm] * GRID_SIZE if largest is None else largest
    if resolution <= 0 or largest < resolution:
        raise ValueError(f"need 0 < resolution <= largest, got resolution={resolution}, largest={largest}")
    return torch.arange(1, math.floor(largest / resolution + 1e-9) + 1, dtype=torch.float64) * resolution


def smallest_eps(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, attack: str, norm: str,
                 grid: torch.Tensor | None = None, chunk: int | None = None, steps: int = 10, targeted: bool = True,
                 true_labels: torch.Tensor | None = None) -> AttackResult:
    """For every row, the smallest eps of ``grid`` at which FGM or I-FGM succeeds (the EAD paper's grid search).

    The grid is scanned upward ``chunk`` values at a time, and a row stops at its first
    success, so the answer is exactly that of trying every value in order, and a row
    that succeeds early costs little. FGM's direction does not depend on eps: it costs one
    gradient per row, and each candidate only a forward pass. I-FGM costs ``steps``
    gradients per candidate tried.

    Parameters
    ----------
    attack : "fgm" or "ifgm"
    grid : increasing eps values (default :func:`eps_grid` ``(norm)``, the paper's)
    chunk : grid values tried at once per row (default 100 for FGM, 4 for I-FGM); larger
        is faster on a GPU and wastes at most ``chunk - 1`` candidates per row
    Other arguments as in :func:`fgm` and :func:`ifgm`.

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult`; ``details["eps"]`` is the smallest successful
    eps per row (NaN where none succeeds) and ``details["candidates"]`` how many grid values
    each row tried.
    """
    if attack not in ("fgm", "ifgm"):
        raise ValueError(f"unknown attack {attack!r}; choose 'fgm' or 'ifgm'")
    check_norm(norm)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    grid = eps_grid(norm) if grid is None else torch.as_tensor(grid, dtype=torch.float64).flatten()
    if len(grid) == 0 or (grid <= 0).any() or (grid.diff() <= 0).any():
        raise ValueError("grid must be a non-empty, strictly increasing sequence of positive eps values")
    chunk = chunk or (100 if attack == "fgm" else 4)
    images, device, n_rows = images.detach(), images.device, len(images)
    grid = grid.to(device=device, dtype=images.dtype)

    found = images.clone()
    best_eps = torch.full((n_rows,), float("nan"), dtype=images.dtype, device=device)
    candidates = torch.zeros(n_rows, dtype=torch.int64, device=device)
    evaluations = torch.zeros(n_rows, dtype=torch.int64, device=device)
    if attack == "fgm":
        direction = unit_direction(loss_gradient(model, images, targets, targeted), norm)
        evaluations += 1
    rows = torch.arange(n_rows, device=device)
    for start in range(0, len(grid), chunk):
        if len(rows) == 0:
            break
        tried = grid[start:start + chunk]  # m values
        m, n = len(tried), len(rows)
        eps = tried.repeat_interleave(n)  # m*n: value-major, each value over all rows
        x0, labels = images[rows].repeat(m, *[1] * (images.dim() - 1)), targets[rows].repeat(m)
        if attack == "fgm":
            x = _fgm_step(x0, direction[rows].repeat(m, *[1] * (images.dim() - 1)), eps)
        else:
            x = _ifgm_run(model, x0, labels, eps, norm=norm, steps=steps, targeted=targeted)
        with torch.no_grad():
            hit = succeeded(model(x), labels, 0.0, targeted).view(m, n)
        first = torch.where(hit.any(0), hit.float().argmax(0), torch.full((n,), m, device=device))
        candidates[rows] += (first + 1).clamp(max=m)
        if attack == "ifgm":
            evaluations[rows] += steps * m
        solved = first < m
        winners = first[solved] * n + torch.arange(n, device=device)[solved]
        found[rows[solved]] = x[winners]
        best_eps[rows[solved]] = eps[winners]
        rows = rows[~solved]
    return _package(model, images, targets, found, best_eps, targeted=targeted, evaluations=evaluations,
                    candidates=candidates)
