"""The Carlini & Wagner L2 attack (Carlini & Wagner, 2017, Section VI.A), batched.

Every row (one image and one target) is attacked at once. Per-row state (c and
its bounds, the best example, Adam's moments) lives in tensors. Rows that abort early
leave the batch at the check where they stop, so they cost no more passes, and between
checks the loop indexes nothing.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ead_tutorial.attacks.optimizers import OPTIMIZERS
from ead_tutorial.attacks.result import AttackResult, finish_attack
from ead_tutorial.attacks.rows import per_row
from ead_tutorial.attacks.search import BestSoFar, ConstantSearch, search_rounds
from ead_tutorial.attacks.stopping import EarlyStop, choose_rule
from ead_tutorial.attacks.validation import check_attack_inputs, check_counts, check_non_negative
from ead_tutorial.box import get_box
from ead_tutorial.objectives import get_objective, succeeded

# Random restarts "uniform" start from the image plus uniform noise of this amplitude.
RESTART_NOISE = 0.1
RESTARTS = ("uniform", "ball")


def restart_points(images: torch.Tensor, best: BestSoFar, how: str, generator: torch.Generator) -> torch.Tensor:
    """Random starting points near ``images`` (B x ...), inside the box.

    - "uniform": x0 plus uniform noise in [-0.1, 0.1] on every pixel;
    - "ball": a point drawn uniformly from the L2 ball around x0 whose radius is the row's
      best distance so far (C&W, Section VI.A); rows with no success yet use "uniform".
    """
    noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    uniform = images + RESTART_NOISE * (2 * noise - 1)
    if how == "uniform":
        return uniform.clamp(0, 1)
    direction = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    direction = direction / per_row(direction.flatten(1).norm(dim=1), images)
    dimension = images[0].numel()
    radius = best.distance * torch.rand(len(images), generator=generator, device=images.device) ** (1 / dimension)
    inside = images + per_row(torch.where(best.found, radius, 0.0), images) * direction
    return torch.where(per_row(best.found, images), inside, uniform).clamp(0, 1)


def _minimise_at_c(model, images, labels, variable, c, *, objective, encoding, kappa, targeted, steps,
                   lr, optimizer, stop_rule, best, evaluations, l1_weight=None) -> torch.Tensor:
    """Minimise ||x - x0||_2^2 + c f(x) from ``variable`` for ``steps`` iterations; update ``best``.

    With ``l1_weight`` (beta, float B) the distance is the elastic net
    beta ||x - x0||_1 + ||x - x0||_2^2 instead (its L1 term differentiated by its
    subgradient), and ``best`` ranks by it: the EAD paper's COV baseline (Table 1).
    Returns whether each row succeeded at any iterate (bool, B).
    """
    n_rows = len(images)
    rows, everyone = torch.arange(n_rows, device=images.device), True
    x0, target, c_rows, beta_rows = images, labels, c, l1_weight
    optimiser = OPTIMIZERS[optimizer](variable, lr)
    stop = EarlyStop(stop_rule, steps, n_rows, images.device)
    success = torch.zeros(n_rows, dtype=torch.bool, device=images.device)
    here = torch.zeros(n_rows, dtype=torch.bool, device=images.device)  # success at this c, running rows
    iterations = 0
    for k in range(steps):
        w = variable.detach().requires_grad_()
        x = encoding.to_image(w)
        logits = model(x)
        delta = (x - x0).flatten(1)
        distance = delta.pow(2).sum(1)
        if beta_rows is not None:
            distance = distance + beta_rows * delta.abs().sum(1)  # the elastic net, eq. (7) of the EAD paper
        loss = distance + c_rows * objective(logits, target, kappa, targeted)
        (grad,) = torch.autograd.grad(loss.sum(), w)
        iterations += 1
        with torch.no_grad():
            reached = succeeded(logits, target, kappa, targeted)
            best.update(None if everyone else rows, x, reached, distance.sqrt() if beta_rows is None else distance, c_rows)
            here |= reached
            optimiser.step(variable, grad)
            encoding.after_step(variable)
            if stop.due(k):
                going_on = ~stop.stalled(loss.detach(), here)
                if not going_on.all():  # rows leave the batch only here
                    success[rows] |= here
                    evaluations[rows] += iterations
                    iterations, everyone = 0, False
                    rows, x0, target, c_rows, here = (t[going_on] for t in (rows, x0, target, c_rows, here))
                    beta_rows = None if beta_rows is None else beta_rows[going_on]
                    variable = variable[going_on]
                    optimiser.keep(going_on)
                    stop.keep(going_on)
                    if len(rows) == 0:
                        return success
    success[rows] |= here
    evaluations[rows] += iterations
    return success


def cw_l2(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, objective: str = "f6",
          box: str = "tanh", kappa: float = 0.0, search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
          initial_c: float | torch.Tensor = 1e-3, abort_early: bool | str = True, last_at_upper: bool | None = None,
          restarts: int = 0, restart_from: str = "uniform", discretize: bool = False, targeted: bool = True,
          optimizer: str = "adam", true_labels: torch.Tensor | None = None, seed: int = 0,
          progress: bool = False) -> AttackResult:
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
    abort_early : when a row's round ends early: True (the default, "loss": C&W's test on each
        row's loss at k = I/10, 2I/10, ...), False (never), or another rule of
        :mod:`ead_tutorial.attacks.stopping` ("batch-loss": the reference code's letter;
        "until-success": only rows that have not yet succeeded at this c stop)
    last_at_upper : spend the last round at each row's upper bound on c; None does so when
        ``search_steps >= 10``, as C&W's code does
    restarts : extra random starting points per round (0: start from x0 only, as C&W's code)
    restart_from : where restarts start, "uniform" (x0 plus noise of 0.1) or "ball" (the
        paper's: uniformly in the L2 ball whose radius is the best distance so far)
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
    if restart_from not in RESTARTS:
        raise ValueError(f"unknown restart_from {restart_from!r}; choose one of {', '.join(RESTARTS)}")
    stop_rule = choose_rule(abort_early, default="loss")
    check_non_negative(kappa=kappa, initial_c=initial_c, search_steps=search_steps, steps=steps, lr=lr,
                       restarts=restarts)
    check_counts(search_steps=search_steps, steps=steps)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    images = images.detach()
    search = ConstantSearch.start(len(images), initial_c, images.device)
    best = BestSoFar.start(images)
    evaluations = torch.zeros(len(images), dtype=torch.int64, device=images.device)
    generator = torch.Generator(device=images.device).manual_seed(seed)

    rounds = search_rounds(search, search_steps, last_at_upper)
    for _ in tqdm(rounds, total=search_steps, desc="C&W L2: search over c", disable=not progress):
        success_at_c = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        for start in range(1 + restarts):
            begin = images if start == 0 else restart_points(images, best, restart_from, generator)
            success_at_c |= _minimise_at_c(
                model, images, targets, encoding.to_variable(begin), search.c, objective=objective_fn,
                encoding=encoding, kappa=kappa, targeted=targeted, steps=steps, lr=lr, optimizer=optimizer,
                stop_rule=stop_rule, best=best, evaluations=evaluations)
        search.update(success_at_c)

    return finish_attack(model, images, targets, best, c=torch.where(best.found, best.c, search.lower),
                         evaluations=evaluations, kappa=kappa, targeted=targeted, discretize=discretize)
