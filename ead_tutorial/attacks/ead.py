"""EAD, the elastic-net attack (Chen et al., 2018), batched.

EAD minimises, over x in the box [0, 1]^p (EAD eq. 7),

    c f(x, t) + beta ||x - x0||_1 + ||x - x0||_2^2,

by projected FISTA: a gradient step on the smooth part g(x) = c f(x, t) + ||x - x0||_2^2,
then the shrinkage-thresholding operator S_beta (eq. 9), which handles the L1 term and
the box at once, then a momentum step (Algorithm 1). The search over c and the record
of the best example are the same objects the C&W L2 attack uses.
"""

from __future__ import annotations

import torch
from tqdm.auto import trange

from ead_tutorial.attacks.cw import drop_stalled, finish_attack
from ead_tutorial.attacks.search import BestSoFar, ConstantSearch
from ead_tutorial.attacks.validation import check_attack_inputs, check_non_negative
from ead_tutorial.objectives import f6, succeeded

RULES = ("en", "l1")


def _per_row(value: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A number as is; a tensor of one value per row shaped to broadcast against B x ... ``like``."""
    if isinstance(value, torch.Tensor) and value.dim() == 1:
        return value.view(-1, *[1] * (like.dim() - 1))
    return value


def shrink(z: torch.Tensor, x0: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """The projected shrinkage-thresholding operator S_beta of EAD eq. (9), elementwise.

    Moves each z_i toward x0_i by beta, sets it to x0_i if it is within beta of it, and
    clips the result to [0, 1]: the proximal operator of beta ||. - x0||_1 restricted to
    the box. ``z`` and ``x0`` have the same shape B x ...; ``beta`` is a number or a
    float B tensor (one threshold per row).
    """
    beta = _per_row(beta, z)
    difference = z - x0
    above = (z - beta).clamp(max=1)  # z_i - x0_i > beta
    below = (z + beta).clamp(min=0)  # z_i - x0_i < -beta
    return torch.where(difference > beta, above, torch.where(difference < -beta, below, x0))


def step_size(k: int, steps: int, lr: float) -> float:
    """alpha_k = lr (1 - k / steps)^(1/2): the square-root decay EAD uses."""
    return lr * (1 - k / steps) ** 0.5


def momentum(k: int) -> float:
    """FISTA's weight k / (k + 3) on x^(k+1) - x^(k) in Algorithm 1."""
    return k / (k + 3)


def elastic_net(delta: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """beta ||delta||_1 + ||delta||_2^2 per row, for B x ... perturbations."""
    flat = delta.flatten(1)
    beta = beta if not isinstance(beta, torch.Tensor) else beta.view(-1)
    return beta * flat.abs().sum(1) + flat.pow(2).sum(1)


def _minimise_at_c(model, images, labels, c, beta, *, rule, kappa, targeted, steps, lr, fista, exact_prox,
                   abort_early, best, evaluations) -> torch.Tensor:
    """Algorithm 1 for ``steps`` iterations at the rows' current c; update ``best``.

    Returns whether each row succeeded at any iterate (bool, B).
    """
    n_rows = len(images)
    rows = torch.arange(n_rows, device=images.device)
    x = images.clone()  # x^(0) = y^(0) = x0
    y = images.clone()
    previous = torch.full((n_rows,), float("inf"), device=images.device)  # abort early starts at +inf
    success = torch.zeros(n_rows, dtype=torch.bool, device=images.device)
    check_every = max(steps // 10, 1)
    beta_rows = beta if isinstance(beta, torch.Tensor) else torch.full((n_rows,), float(beta), device=images.device)
    for k in range(steps):
        everyone = len(rows) == n_rows  # index only once some rows have stopped
        pick = (lambda t: t) if everyone else (lambda t: t[rows])
        x0, target, c_rows, b = pick(images), pick(labels), pick(c), pick(beta_rows)
        slack = pick(y).detach().requires_grad_()
        smooth = c_rows * f6(model(slack), target, kappa, targeted) + (slack - x0).flatten(1).pow(2).sum(1)
        (grad,) = torch.autograd.grad(smooth.sum(), slack)  # grad g(y^(k))
        with torch.no_grad():
            alpha = step_size(k, steps, lr)
            threshold = alpha * b if exact_prox else b
            new_x = shrink(slack - alpha * grad, x0, threshold)  # x^(k+1), eq. (8)
            new_y = new_x + momentum(k) * (new_x - pick(x)) if fista else new_x
            if everyone:
                x, y = new_x, new_y
            else:
                x[rows], y[rows] = new_x, new_y
            logits = model(new_x)  # the iterate itself is what must succeed
            reached = succeeded(logits, target, kappa, targeted)
            delta = new_x - x0
            distortion = elastic_net(delta, b) if rule == "en" else delta.flatten(1).abs().sum(1)
            best.update(rows, new_x, reached, distortion, c_rows)
            success[rows] |= reached
            evaluations[rows] += 1
            if abort_early and (k + 1) % check_every == 0:
                loss = c_rows * f6(logits, target, kappa, targeted) + elastic_net(delta, b)
                rows = drop_stalled(rows, loss, previous)
                if len(rows) == 0:
                    break
    return success


def ead(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, beta: float | torch.Tensor = 1e-3,
        rule: str = "en", kappa: float = 0.0, search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
        initial_c: float | torch.Tensor = 1e-3, fista: bool = True, exact_prox: bool = False,
        abort_early: bool = True, discretize: bool = False, targeted: bool = True,
        true_labels: torch.Tensor | None = None, progress: bool = False):
    """EAD: minimise c f + beta ||x - x0||_1 + ||x - x0||_2^2 over the box by projected (F)ISTA, searching c per row.

    Parameters
    ----------
    model : maps B x C x H x W images in [0, 1] to B x K logits; in eval mode, on the images' device
    images : float B x C x H x W in [0, 1], the originals x0
    targets : int64 B, the target classes (``targeted=True``, eq. 4) or the true classes (``targeted=False``, eq. 6)
    beta : the L1 weight, a number or float B (one per row)
    rule : decision rule over every successful iterate: "en" (least beta L1 + L2^2) or "l1" (least L1)
    kappa : confidence margin
    search_steps : rounds of the binary search over c
    steps : (F)ISTA iterations per round (I in Algorithm 1)
    lr : the first step size alpha_0; alpha_k = lr (1 - k / steps)^(1/2)
    initial_c : the first c of every row (a number, or float B)
    fista : use FISTA's momentum (Algorithm 1); False gives plain ISTA
    exact_prox : threshold by alpha_k beta, the exact proximal step for eq. (7), instead of beta
        as printed in eq. (9) and used in the paper's experiments
    abort_early : stop a row's round once its loss stalls (checked every steps / 10 iterations)
    discretize : round the result to 8-bit pixels and repair any success that rounding broke
    true_labels : int64 B, optional; in the targeted mode a target may not equal it
    progress : show a progress bar over the rounds

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult`; failed rows hold the original image.
    """
    if rule not in RULES:
        raise ValueError(f"unknown decision rule {rule!r}; choose 'en' (elastic net) or 'l1'")
    check_non_negative(beta=beta, kappa=kappa, initial_c=initial_c, search_steps=search_steps, steps=steps, lr=lr)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    if isinstance(beta, torch.Tensor) and beta.shape != (len(images),):
        raise ValueError(f"beta must be a number or one value per row, shape ({len(images)},); got {tuple(beta.shape)}")
    images = images.detach()
    search = ConstantSearch.start(len(images), initial_c, images.device)
    best = BestSoFar.start(images)
    evaluations = torch.zeros(len(images), dtype=torch.int64, device=images.device)
    for _ in trange(search_steps, desc=f"EAD ({rule.upper()} rule): search over c", disable=not progress):
        success_at_c = _minimise_at_c(model, images, targets, search.c, beta, rule=rule, kappa=kappa,
                                      targeted=targeted, steps=steps, lr=lr, fista=fista, exact_prox=exact_prox,
                                      abort_early=abort_early, best=best, evaluations=evaluations)
        search.update(success_at_c)
    return finish_attack(model, images, targets, best, c=torch.where(best.found, best.c, search.lower),
                         evaluations=evaluations, kappa=kappa, targeted=targeted, discretize=discretize)
