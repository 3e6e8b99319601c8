"""The Carlini & Wagner L2 attack (Carlini & Wagner, 2017, Section VI.A), batched.

Every row (one image and one target) is attacked at once. Per-row state (c and
its bounds, the best example, Adam's moments, whether a row has stopped) lives in
tensors, and rows that abort early stop costing forward and backward passes.
"""

from __future__ import annotations

import torch
from tqdm.auto import trange

from ead_tutorial.attacks.optimizers import OPTIMIZERS
from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.attacks.search import BestSoFar, ConstantSearch
from ead_tutorial.attacks.validation import check_attack_inputs, check_non_negative
from ead_tutorial.box import get_box
from ead_tutorial.discretize import repair_rounding
from ead_tutorial.metrics import distortions
from ead_tutorial.objectives import get_objective, succeeded

# C&W's abort-early test: stop a row when its loss has not fallen below this
# fraction of its value at the previous check (checks every steps / 10 iterations).
ABORT_TOLERANCE = 0.9999


def drop_stalled(rows: torch.Tensor, loss: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """C&W's abort early: of the running ``rows`` (int64 B'), those that go on.

    A row goes on if its ``loss`` (B') fell below ABORT_TOLERANCE times its value at the
    previous check, which ``previous`` (float B, one per row of the whole batch) holds;
    ``previous`` is updated in place.
    """
    stalled = loss > previous[rows] * ABORT_TOLERANCE
    previous[rows] = loss
    return rows[~stalled]


# Random restarts start from the image plus uniform noise of this amplitude.
RESTART_NOISE = 0.1


def _minimise_at_c(model, images, labels, variable, c, *, objective, encoding, kappa, targeted, steps,
                   lr, optimizer, abort_early, best, evaluations) -> torch.Tensor:
    """Minimise ||x - x0||_2^2 + c f(x) from ``variable`` for ``steps`` iterations; update ``best``.

    Returns whether each row succeeded at any iterate (bool, B).
    """
    n_rows = len(images)
    rows = torch.arange(n_rows, device=images.device)
    optimiser = OPTIMIZERS[optimizer](variable, lr)
    previous = torch.full((n_rows,), float("inf"), device=images.device)  # abort early starts at +inf
    success = torch.zeros(n_rows, dtype=torch.bool, device=images.device)
    check_every = max(steps // 10, 1)
    for step in range(steps):
        everyone = len(rows) == n_rows
        pick = (lambda t: t) if everyone else (lambda t: t[rows])
        w = pick(variable).detach().requires_grad_()
        x = encoding.to_image(w)
        logits = model(x)
        distance = (x - pick(images)).flatten(1).pow(2).sum(1)
        loss = distance + pick(c) * objective(logits, pick(labels), kappa, targeted)
        (grad,) = torch.autograd.grad(loss.sum(), w)
        with torch.no_grad():
            reached = succeeded(logits, pick(labels), kappa, targeted)
            best.update(rows, x, reached, distance.sqrt(), pick(c))
            success[rows] |= reached
            evaluations[rows] += 1
            optimiser.step(variable, grad, None if everyone else rows)
            encoding.after_step(variable)
            if abort_early and (step + 1) % check_every == 0:
                rows = drop_stalled(rows, loss, previous)
                if len(rows) == 0:
                    break
    return success


def cw_l2(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, objective: str = "f6",
          box: str = "tanh", kappa: float = 0.0, search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
          initial_c: float | torch.Tensor = 1e-3, abort_early: bool = True, restarts: int = 0, discretize: bool = False,
          targeted: bool = True, optimizer: str = "adam", true_labels: torch.Tensor | None = None,
          seed: int = 0, progress: bool = False) -> AttackResult:
    """The C&W L2 attack: minimise ||x - x0||_2^2 + c f(x) over the box, searching c per row.

    Parameters
    ----------
    model : maps B x C x H x W images in [0, 1] to B x K logits; in eval mode, on the images' device
    images : float B x C x H x W in [0, 1], the originals x0
    targets : int64 B, the target classes (``targeted=True``) or the true classes (``targeted=False``)
    objective : "f1" ... "f7"; C&W's choice is "f6"
    box : "tanh" (change of variables), "clipped" or "projected"
    kappa : confidence margin: success needs the goal to hold by more than kappa
    search_steps : rounds of the binary search over c
    steps : optimiser iterations per round (C&W use 10,000; the EAD paper 1,000)
    lr : the optimiser's step size
    initial_c : the first c of every row (a number, or float B for one per row)
    abort_early : stop a row once its loss stalls (checked every steps / 10 iterations)
    restarts : extra random starting points per round (0: start from x0 only)
    discretize : round the result to 8-bit pixels and repair any success that rounding broke
    optimizer : "adam" (C&W) or "gd" (plain gradient descent, for comparison)
    true_labels : int64 B, optional; in the targeted mode a target may not equal it
    seed : seeds the random restarts
    progress : show a progress bar over the rounds

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult`; failed rows hold the original image.
    """
    objective_fn, encoding = get_objective(objective), get_box(box)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    check_non_negative(kappa=kappa, initial_c=initial_c, search_steps=search_steps, steps=steps, lr=lr,
                       restarts=restarts)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    images = images.detach()
    search = ConstantSearch.start(len(images), initial_c, images.device)
    best = BestSoFar.start(images)
    evaluations = torch.zeros(len(images), dtype=torch.int64, device=images.device)
    generator = torch.Generator(device=images.device).manual_seed(seed)

    for _ in trange(search_steps, desc="C&W L2: search over c", disable=not progress):
        success_at_c = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        for start in range(1 + restarts):
            begin = images
            if start > 0:
                noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
                begin = (images + RESTART_NOISE * (2 * noise - 1)).clamp(0, 1)
            success_at_c |= _minimise_at_c(
                model, images, targets, encoding.to_variable(begin), search.c, objective=objective_fn,
                encoding=encoding, kappa=kappa, targeted=targeted, steps=steps, lr=lr, optimizer=optimizer,
                abort_early=abort_early, best=best, evaluations=evaluations)
        search.update(success_at_c)

    return finish_attack(model, images, targets, best, c=torch.where(best.found, best.c, search.lower),
                         evaluations=evaluations, kappa=kappa, targeted=targeted, discretize=discretize)


@torch.no_grad()
def finish_attack(model, images, labels, best: BestSoFar, *, c, evaluations, kappa, targeted,
                  discretize) -> AttackResult:
    """Optionally discretize, re-check every row on the model, and package the result."""
    adversarial = best.adversarial
    if discretize:
        adversarial, repairs = repair_rounding(model, adversarial, labels, best.found, kappa=kappa, targeted=targeted)
        evaluations = evaluations + repairs
    # The returned success is what the model says about the returned images.
    success = best.found & succeeded(model(adversarial), labels, kappa, targeted)
    adversarial = torch.where(success.view(-1, *[1] * (images.dim() - 1)), adversarial, images)
    return AttackResult(adversarial=adversarial, success=success, norms=distortions(adversarial, images), c=c,
                        gradient_evaluations=evaluations, labels=labels, targeted=targeted)
