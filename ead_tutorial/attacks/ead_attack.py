"""EAD, the elastic-net attack (Chen et al., 2018), batched.

EAD minimises, over x in the box [0, 1]^p (EAD eq. 7),

    c f(x, t) + beta ||x - x0||_1 + ||x - x0||_2^2,

by projected FISTA: a gradient step on the smooth part g(x) = c f(x, t) + ||x - x0||_2^2,
then the shrinkage-thresholding operator S_beta (eq. 9), which handles the L1 term and
the box at once, then a momentum step (Algorithm 1). The search over c and the record
of the best example are the same objects the C&W L2 attack uses.

Cost. Each iteration needs the gradient at the slack point y^(k) (a forward and a
backward pass) and the model's verdict on the new iterate x^(k+1) (a forward pass).
The verdict is skipped, exactly, for a row that has already succeeded at this c and
whose new distortion is no smaller than its best (under every decision rule the run
keeps): nothing the model could say would change the answer. With ISTA (y = x) the
next gradient's forward pass gives the verdict for free. Rows leave the batch only at abort-early checks, so between checks the loop
indexes nothing.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ead_tutorial.attacks.result import AttackResult, finish_attack
from ead_tutorial.attacks.rows import per_row, rows_tensor
from ead_tutorial.attacks.search import BestSoFar, ConstantSearch, search_rounds
from ead_tutorial.attacks.stopping import EarlyStop, choose_rule
from ead_tutorial.attacks.validation import check_attack_inputs, check_counts, check_non_negative
from ead_tutorial.metrics import l1
from ead_tutorial.objectives import f6, succeeded

RULES = ("en", "l1")
MOMENTA = ("paper", "reference")


def shrink(z: torch.Tensor, x0: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """The projected shrinkage-thresholding operator S_beta of EAD eq. (9), elementwise.

    Moves each z_i toward x0_i by beta, sets it to x0_i if it is within beta of it, and
    clips the result to [0, 1]: the proximal operator of beta ||. - x0||_1 restricted to
    the box. ``z`` and ``x0`` have the same shape B x ...; ``beta`` is a number or a
    float B tensor (one threshold per row).
    """
    beta = per_row(beta, z)
    difference = z - x0
    above = (z - beta).clamp(max=1)  # z_i - x0_i > beta
    below = (z + beta).clamp(min=0)  # z_i - x0_i < -beta
    return torch.where(difference > beta, above, torch.where(difference < -beta, below, x0))


def step_size(k: int, steps: int, lr: float) -> float:
    """alpha_k = lr (1 - k / steps)^(1/2): the square-root decay EAD uses."""
    return lr * (1 - k / steps) ** 0.5


def momentum(k: int, schedule: str = "paper") -> float:
    """FISTA's weight on x^(k+1) - x^(k): k / (k + 3), as Algorithm 1 prints it ("paper").

    The authors' TensorFlow code reads its step counter after the gradient step has
    incremented it, so it runs (k + 1) / (k + 4) ("reference"): 1/4 at the first step, not 0.
    """
    return (k + 1) / (k + 4) if schedule == "reference" else k / (k + 3)


def elastic_net(delta: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """beta ||delta||_1 + ||delta||_2^2 per row, for B x ... perturbations."""
    flat = delta.flatten(1)
    beta = beta if not isinstance(beta, torch.Tensor) else beta.view(-1)
    return beta * flat.abs().sum(1) + flat.pow(2).sum(1)


class _Round:
    """The rows still running in one round at one c: their FISTA state and their pass counts.

    Every tensor holds the running rows only, in the order of ``rows`` (int64 B', indices
    into the batch). ``everyone`` says that every row of the batch is running, in order,
    so that nothing needs indexing. Rows leave only at abort-early checks (``keep``).
    """

    STATE = ("rows", "x0", "labels", "c", "beta", "x", "y", "succeeded", "checks")

    def __init__(self, images, labels, c, beta):
        n_rows, device = len(images), images.device
        self.rows, self.everyone = torch.arange(n_rows, device=device), True
        self.x0, self.labels, self.c, self.beta = images, labels, c, beta
        self.x, self.y = images.clone(), images.clone()  # x^(0) = y^(0) = x0
        self.succeeded = torch.zeros(n_rows, dtype=torch.bool, device=device)  # at this c
        self.checks = torch.zeros(n_rows, dtype=torch.int64, device=device)  # forward-only passes
        self.iterations = 0  # gradient passes since the counts were last handed back

    def index(self) -> torch.Tensor | None:
        return None if self.everyone else self.rows

    def hand_back(self, success, backward, forward) -> None:
        """Add the running rows' success at this c and their pass counts to the batch's tensors."""
        success[self.rows] |= self.succeeded
        backward[self.rows] += self.iterations
        forward[self.rows] += self.iterations + self.checks
        self.iterations = 0
        self.checks.zero_()

    def keep(self, going_on: torch.Tensor, success, backward, forward) -> None:
        """Hand back the counts, then drop the rows that stopped (``going_on``: bool B')."""
        self.hand_back(success, backward, forward)
        for name in self.STATE:
            setattr(self, name, getattr(self, name)[going_on])
        self.everyone = False


def _verdict(model, new_x, distortions, now: _Round, bests: dict[str, BestSoFar], kappa, targeted, skip):
    """Whether each new iterate succeeds (bool B'), and f6 there (float B'; 0 for skipped rows).

    ``distortions`` and ``bests`` hold, for each decision rule, the new iterates' distortion
    (float B') and the best example so far. With ``skip``, a row is left out when it has
    already succeeded at this c and its new distortion is no smaller than its best under
    every rule: whatever the model says, neither an answer nor the search over c can
    change, so reporting "no success" is exact.
    """
    if skip:
        improves = torch.stack([distortions[rule] < best.distance[now.rows] for rule, best in bests.items()]).any(0)
        needed = ~now.succeeded | improves
        picked = needed.nonzero().squeeze(1)  # one wait for the device: worth it on a CPU only
        if len(picked) < len(needed):
            now.checks[picked] += 1
            logits = model(new_x[picked])
            reached = torch.zeros_like(needed)
            reached[picked] = succeeded(logits, now.labels[picked], kappa, targeted)
            f = torch.zeros_like(now.c)
            f[picked] = f6(logits, now.labels[picked], kappa, targeted)
            return reached, f
    now.checks += 1
    logits = model(new_x)
    return succeeded(logits, now.labels, kappa, targeted), f6(logits, now.labels, kappa, targeted)


def _minimise_at_c(model, images, labels, c, beta, *, kappa, targeted, steps, lr, fista, momentum_schedule,
                   exact_prox, stop_rule, skip_checks, bests, backward, forward) -> torch.Tensor:
    """Algorithm 1 for ``steps`` iterations at the rows' current c; update ``bests`` and the pass counts.

    ``bests`` maps each decision rule to its :class:`BestSoFar`. The iterates do not depend
    on the rule, only which successful one each rule keeps, so one run serves every rule.
    Returns whether each row succeeded at any iterate (bool, B).
    """
    now = _Round(images, labels, c, beta)
    stop = EarlyStop(stop_rule, steps, len(images), images.device)
    success = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    reuse = not fista  # ISTA: y^(k) = x^(k), so the gradient's forward pass judges x^(k) for free

    def distortion_of(delta):  # what each decision rule ranks
        return {rule: elastic_net(delta, now.beta) if rule == "en" else l1(delta) for rule in bests}

    def judge(candidate, reached, distortions):
        for rule, best in bests.items():
            best.update(now.index(), candidate, reached, distortions[rule], now.c)
        now.succeeded |= reached

    for k in range(steps):
        slack = now.y.detach().requires_grad_()
        logits_y = model(slack)
        f_y = f6(logits_y, now.labels, kappa, targeted)
        smooth = now.c * f_y + (slack - now.x0).flatten(1).pow(2).sum(1)
        (grad,) = torch.autograd.grad(smooth.sum(), slack)  # grad g(y^(k))
        now.iterations += 1
        with torch.no_grad():
            slack, f_y = slack.detach(), f_y.detach()
            if reuse and k > 0:  # x^(k) = y^(k): judge it with this forward pass
                distortions = distortion_of(slack - now.x0)
                judge(now.x, succeeded(logits_y.detach(), now.labels, kappa, targeted), distortions)
            alpha = step_size(k, steps, lr)
            threshold = alpha * now.beta if exact_prox else now.beta
            new_x = shrink(slack - alpha * grad, now.x0, threshold)  # x^(k+1), eq. (8)
            at_check = stop.due(k)
            if reuse:
                f_checked, delta_checked = f_y, slack - now.x0  # the loss at x^(k), checked below
            else:  # the iterate itself is what must succeed: one more forward pass
                delta_checked = new_x - now.x0
                distortions = distortion_of(delta_checked)
                skip = skip_checks and not (at_check and stop.needs_loss)
                reached, f_checked = _verdict(model, new_x, distortions, now, bests, kappa, targeted, skip)
                judge(new_x, reached, distortions)
            now.y = new_x + momentum(k, momentum_schedule) * (new_x - now.x) if fista else new_x
            now.x = new_x
            if at_check:
                loss = now.c * f_checked + elastic_net(delta_checked, now.beta)
                going_on = ~stop.stalled(loss, now.succeeded)
                if not going_on.all():  # rows leave the batch only here
                    now.keep(going_on, success, backward, forward)
                    stop.keep(going_on)
                    if len(now.rows) == 0:
                        return success
    if reuse:  # the last iterate has had no forward pass yet
        with torch.no_grad():
            now.checks += 1
            judge(now.x, succeeded(model(now.x), now.labels, kappa, targeted), distortion_of(now.x - now.x0))
    now.hand_back(success, backward, forward)
    return success


def ead(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, beta: float | torch.Tensor = 1e-3,
        rule: str | tuple[str, ...] = "en", kappa: float = 0.0, search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
        initial_c: float | torch.Tensor = 1e-3, fista: bool = True, momentum_schedule: str = "paper",
        exact_prox: bool = False, abort_early: bool | str = True, last_at_upper: bool | None = None,
        skip_checks: bool | None = None, discretize: bool = False, targeted: bool = True,
        true_labels: torch.Tensor | None = None, progress: bool = False) -> AttackResult | dict[str, AttackResult]:
    """EAD: minimise c f + beta ||x - x0||_1 + ||x - x0||_2^2 over the box by projected (F)ISTA, searching c per row.

    Parameters
    ----------
    model : maps B x C x H x W images in [0, 1] to B x K logits; in eval mode, on the images' device
    images : float B x C x H x W in [0, 1], the originals x0
    targets : int64 B, the target classes (``targeted=True``, eq. 4) or the true classes (``targeted=False``, eq. 6)
    beta : the L1 weight, a number or float B (one per row)
    rule : decision rule over every successful iterate: "en" (least beta L1 + L2^2) or "l1" (least L1);
        or a tuple of rules, e.g. ``("en", "l1")``: the iterates do not depend on the rule, only
        which one it keeps, so one run then gives each rule's result for the price of one
    kappa : confidence margin
    search_steps : rounds of the binary search over c
    steps : (F)ISTA iterations per round (I in Algorithm 1)
    lr : the first step size alpha_0; alpha_k = lr (1 - k / steps)^(1/2)
    initial_c : the first c of every row (a number, or float B). The EAD paper's text says the
        search starts at 0.01; C&W's code, whose defaults the paper says it uses, and the EAD
        authors' code start at 1e-3, which is the default here
    fista : use FISTA's momentum (Algorithm 1); False gives plain ISTA
    momentum_schedule : "paper" (k / (k + 3), Algorithm 1) or "reference" ((k + 1) / (k + 4), the
        authors' code); see :func:`momentum`
    exact_prox : threshold by alpha_k beta, the exact proximal step for eq. (7), instead of beta
        as printed in eq. (9) and used in the paper's experiments
    abort_early : when a row's round ends early: True (the default rule, "until-success": a row
        whose loss stalls before it has succeeded at this c), False (never), or another rule of
        :mod:`ead_tutorial.attacks.stopping` ("loss" per row, as C&W's code; "batch-loss", the
        letter of the authors' code)
    last_at_upper : spend the last round at each row's upper bound on c; None does so when
        ``search_steps >= 10``, as the reference codes do
    skip_checks : skip the verdict on iterates that cannot change the answer (exact); None
        skips on a CPU, where the test is free, and not on a GPU, where it would make the
        loop wait for the device
    discretize : round the result to 8-bit pixels and repair any success that rounding broke
    true_labels : int64 B, optional; in the targeted mode a target may not equal it
    progress : show a progress bar over the rounds

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult`; failed rows hold the original image.
    ``forward_passes`` counts the verdicts too. For a tuple of rules, a dict rule -> result,
    whose pass counts are those of the one shared run.
    """
    rules = (rule,) if isinstance(rule, str) else tuple(rule)
    if not rules or any(r not in RULES for r in rules) or len(set(rules)) < len(rules):
        raise ValueError(f"unknown decision rule {rule!r}; choose 'en' (elastic net), 'l1', or a tuple of both")
    if momentum_schedule not in MOMENTA:
        raise ValueError(f"unknown momentum_schedule {momentum_schedule!r}; choose 'paper' or 'reference'")
    stop_rule = choose_rule(abort_early, default="until-success")
    check_non_negative(beta=beta, kappa=kappa, initial_c=initial_c, search_steps=search_steps, steps=steps, lr=lr)
    check_counts(search_steps=search_steps, steps=steps)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    if isinstance(beta, torch.Tensor) and beta.shape != (len(images),):
        raise ValueError(f"beta must be a number or one value per row, shape ({len(images)},); got {tuple(beta.shape)}")
    images, n_rows, device = images.detach(), len(images), images.device
    if skip_checks is None:
        skip_checks = device.type == "cpu"
    search = ConstantSearch.start(n_rows, initial_c, device)
    bests = {r: BestSoFar.start(images) for r in rules}
    backward = torch.zeros(n_rows, dtype=torch.int64, device=device)
    forward = torch.zeros(n_rows, dtype=torch.int64, device=device)
    beta_rows = rows_tensor(beta, n_rows, device)
    rounds = search_rounds(search, search_steps, last_at_upper)
    name = "EAD (" + " and ".join(r.upper() for r in rules) + (" rule)" if len(rules) == 1 else " rules)")
    for _ in tqdm(rounds, total=search_steps, desc=f"{name}: search over c", disable=not progress):
        success_at_c = _minimise_at_c(model, images, targets, search.c, beta_rows, kappa=kappa,
                                      targeted=targeted, steps=steps, lr=lr, fista=fista,
                                      momentum_schedule=momentum_schedule, exact_prox=exact_prox,
                                      stop_rule=stop_rule, skip_checks=skip_checks, bests=bests,
                                      backward=backward, forward=forward)
        search.update(success_at_c)
    results = {r: finish_attack(model, images, targets, best, c=torch.where(best.found, best.c, search.lower),
                                evaluations=backward.clone(), forward_passes=forward.clone(), kappa=kappa,
                                targeted=targeted, discretize=discretize)
               for r, best in bests.items()}
    return results[rule] if isinstance(rule, str) else results
