"""The Carlini & Wagner L0 attack (Carlini & Wagner, 2017, Section VI.B), batched.

L0 counts changed pixels and has no useful gradient, so the attack shrinks a set of
pixels that may change. Each round runs the L2 attack restricted to that set,
warm-started from the previous solution and stopped at the first success; then it
takes g = grad f at the solution and removes the pixels that contribute least to the
success: those whose change is negligible, and the few with the smallest
|sum over channels of g_i * delta_i|. When the restricted attack fails even at the
largest c, the last success is the answer.

Per-row state (the allowed mask, c, the warm start, Adam's moments) is held in
tensors, and every row moves through its rounds at its own pace (see ``rounds``).
"""

from __future__ import annotations

import torch

from ead_tutorial.attacks.rounds import RowRounds
from ead_tutorial.attacks.validation import check_attack_inputs, check_c_factor, check_counts, check_non_negative
from ead_tutorial.box import get_box
from ead_tutorial.metrics import l0
from ead_tutorial.objectives import f6, margin, succeeded

# How each allowed pixel is scored; the lowest scores are removed first.
SCORES = ("gradient", "signed", "magnitude", "random", "reference")
# How many pixels a round removes: the package's rule or C&W's code's (see ``pixels_to_remove``).
REMOVALS = ("package", "reference")
# C&W's code stops a round's removals at the first pixel scoring above this.
REFERENCE_SCORE_LIMIT = 0.01
# A pixel whose change (summed over channels) is below this is treated as unchanged.
NEGLIGIBLE = 1e-4
# The adaptive rule removes ceil(REMOVAL_RATE * sqrt(changed pixels)) pixels per round.
REMOVAL_RATE = 0.3


def pixel_scores(delta: torch.Tensor, grad: torch.Tensor, score: str, generator: torch.Generator) -> torch.Tensor:
    """Score each pixel of B x C x H x W changes ``delta`` with gradients ``grad`` of f; returns B x 1 x H x W.

    - "gradient": |sum_c g * delta|, the first-order change of f if the pixel is reset;
    - "signed": sum_c g * delta, the rule as printed (argmin g_i delta_i), which picks
      the pixels that help most, because helpful changes lower f and so have g * delta < 0;
    - "magnitude": sum_c |delta|, ignoring the gradient;
    - "random": uniform noise (the ablation's baseline);
    - "reference": |sum_c delta| * sum_c |g|, C&W's code's score, where ``grad`` must then be
      the gradient of the whole loss with respect to the optimiser's variable (in tanh space
      for the tanh box), not of f in image space.
    """
    if score == "gradient":
        return (grad * delta).sum(1, keepdim=True).abs()
    if score == "signed":
        return (grad * delta).sum(1, keepdim=True)
    if score == "magnitude":
        return delta.abs().sum(1, keepdim=True)
    if score == "reference":
        return delta.sum(1, keepdim=True).abs() * grad.abs().sum(1, keepdim=True)
    if score == "random":
        shape = (delta.shape[0], 1, *delta.shape[2:])
        return torch.rand(shape, generator=generator, device=delta.device, dtype=delta.dtype)
    raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")


def pixels_to_remove(allowed: torch.Tensor, delta: torch.Tensor, scores: torch.Tensor,
                     pixels_per_round: int | None) -> torch.Tensor:
    """The pixels to take out of ``allowed`` (bool B x 1 x H x W) after a successful round.

    Every allowed pixel whose change is negligible goes, plus the ``k`` allowed pixels of
    lowest score among those that did change: ``k = pixels_per_round``, or, if None,
    ceil(0.3 sqrt(number of changed pixels)) (fast early on, one at a time at the end).
    """
    change = delta.abs().sum(1, keepdim=True)
    negligible = allowed & (change < NEGLIGIBLE)
    candidates = (allowed & ~negligible).flatten(1)
    changed = candidates.sum(1)
    if pixels_per_round is None:
        k = torch.ceil(REMOVAL_RATE * changed.double().sqrt()).long()
    else:
        k = torch.full_like(changed, pixels_per_round)
    k = torch.minimum(k, changed)
    ranked = scores.flatten(1).masked_fill(~candidates, float("inf")).argsort(1)
    position = torch.arange(ranked.shape[1], device=ranked.device).expand_as(ranked)
    lowest = torch.zeros_like(candidates).scatter_(1, ranked, position < k[:, None])
    return negligible | lowest.view_as(allowed)


def reference_pixels_to_remove(allowed: torch.Tensor, delta: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The pixels C&W's code fixes after a successful round (bool B x 1 x H x W).

    It walks the allowed pixels in increasing order of score, unchanged ones included,
    and fixes them one at a time until it has fixed ceil(0.3 sqrt(changed pixels)) of
    them (at least one), or has just fixed a pixel scoring above 0.01.
    """
    changed = (allowed & (delta.abs().sum(1, keepdim=True) >= NEGLIGIBLE)).flatten(1).sum(1)
    budget = torch.ceil(REMOVAL_RATE * changed.double().sqrt()).long().clamp(min=1)
    flat_allowed = allowed.flatten(1)
    ordered = scores.flatten(1).masked_fill(~flat_allowed, float("inf"))
    ranked = ordered.argsort(dim=1, stable=True)
    ranked_scores = ordered.gather(1, ranked)
    above = (ranked_scores > REFERENCE_SCORE_LIMIT) & torch.isfinite(ranked_scores)
    position = torch.arange(ranked.shape[1], device=ranked.device).expand_as(ranked)
    first_above = torch.where(above, position, ranked.shape[1]).amin(1)
    count = torch.minimum(torch.minimum(budget, first_above + 1), flat_allowed.sum(1))
    fixed = torch.zeros_like(flat_allowed).scatter_(1, ranked, position < count[:, None])
    return fixed.view_as(allowed)


def cw_l0(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, kappa: float = 0.0,
          steps: int = 1000, lr: float = 1e-2, initial_c: float = 1e-3, largest_c: float = 2e6,
          c_factor: float = 2.0, box: str = "tanh", abort_early: bool = True, score: str = "gradient",
          pixels_per_round: int | None = None, removal: str = "package", reset_between_tries: bool = True,
          max_rounds: int | None = None, discretize: bool = False, targeted: bool = True,
          true_labels: torch.Tensor | None = None, seed: int = 0, progress: bool = False,
          record: bool = False):
    """The C&W L0 attack: shrink the set of pixels the L2 attack may change until it fails.

    Parameters
    ----------
    model : maps B x C x H x W images in [0, 1] to B x K logits; in eval mode, on the images' device
    images : float B x C x H x W in [0, 1], the originals x0
    targets : int64 B, target classes (``targeted=True``) or true classes (``targeted=False``)
    kappa : confidence margin of f6
    steps : Adam iterations allowed per round and per value of c
    lr : Adam's step size
    initial_c : the first c of every row; c doubles whenever a round fails, and is kept between rounds
    largest_c : a row whose round fails with c above this is finished
    c_factor : how much c grows after a failed try (C&W double it)
    box : how the restricted L2 attack stays in [0, 1]: "tanh" (C&W), "projected" or "clipped"
    abort_early : end a try at one c once its loss stalls (as in the L2 attack) instead of running all ``steps``
    score : how pixels are ranked for removal, one of ``SCORES`` ("gradient" is C&W's)
    pixels_per_round : pixels removed per round besides the negligible ones (None: adaptive)
    removal : "package" (every negligible pixel plus the lowest-scoring changed ones) or
        "reference" (C&W's code: one at a time in score order, see
        :func:`reference_pixels_to_remove`; ``pixels_per_round`` is then ignored)
    reset_between_tries : start each try at a doubled c afresh from the round's start, with
        Adam's state cleared; False keeps both, as C&W's code does
    max_rounds : stop after this many rounds (None: when every row has failed)
    discretize : round the result to 8-bit pixels and repair any success that rounding broke
    true_labels : int64 B, optional; in the targeted mode a target may not equal it
    seed : seeds the "random" score
    progress : show a progress bar over the rounds
    record : keep, in ``details``, the allowed masks after every round

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult`; ``details`` holds "allowed" (bool B x 1 x H x W,
    the final set of changeable pixels), "answer_mask" (the set under which each row's answer
    was found), "rounds" (int64 B, successful rounds per row), and with ``record=True``
    "allowed_history" (every row's mask after each round of any row, a list of B x 1 x H x W).
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    if removal not in REMOVALS:
        raise ValueError(f"unknown removal {removal!r}; choose one of {', '.join(REMOVALS)}")
    if images.dim() != 4:
        raise ValueError(f"cw_l0 needs B x C x H x W images (a pixel is one (h, w) position), "
                         f"got shape {tuple(images.shape)}")
    check_non_negative(kappa=kappa, steps=steps, lr=lr, initial_c=initial_c, largest_c=largest_c)
    check_counts(steps=steps)
    check_c_factor(c_factor)
    if pixels_per_round is not None and pixels_per_round < 1:
        raise ValueError(f"pixels_per_round must be at least 1 (or None for the adaptive rule), got {pixels_per_round}")
    encoding = get_box(box)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    images = images.detach()
    state = RowRounds.start(images, initial_c)
    c, starts, rounds, evaluations, best = state.c, state.starts, state.rounds, state.evaluations, state.best
    allowed = torch.ones(len(images), 1, *images.shape[2:], dtype=torch.bool, device=images.device)
    answer_mask = allowed.clone()  # the allowed set under which each row's answer was found
    generator = torch.Generator(device=images.device).manual_seed(seed)
    history = []

    def image_of(w, rows):  # only allowed pixels may differ from x0
        return torch.where(allowed[rows], encoding.to_image(w), images[rows])

    def loss_of(x, logits, rows):  # the L2 attack's loss, ||x - x0||^2 + c f6
        distance = (x - images[rows]).flatten(1).pow(2).sum(1)
        return distance + c[rows] * f6(logits, targets[rows], kappa, targeted)

    def accept(x, logits, rows):  # stop each round at the first success
        return succeeded(logits, targets[rows], kappa, targeted)

    def on_accept(rows, solutions):  # record the success, then shrink the allowed set
        solutions, grad = _tidy_solution(model, images[rows], solutions, targets[rows], kappa, targeted)
        evaluations[rows] += 1
        if score == "reference":  # the whole loss's gradient in the optimiser's variable, as C&W's code scores
            grad = _loss_gradient(model, images[rows], solutions, targets[rows], c[rows], kappa, targeted, encoding)
            evaluations[rows] += 1
        delta = solutions - images[rows]
        improved = rows[l0(delta) < best.distance[rows]]
        answer_mask[improved] = allowed[improved]
        best.update(rows, solutions, torch.ones_like(rows, dtype=torch.bool), l0(delta), c[rows])
        rounds[rows] += 1
        starts[rows] = solutions  # the next round starts from the tidied answer, not the raw iterate
        scores = pixel_scores(delta, grad, score, generator)
        if removal == "reference":
            allowed[rows] &= ~reference_pixels_to_remove(allowed[rows], delta, scores)
        else:
            allowed[rows] &= ~pixels_to_remove(allowed[rows], delta, scores, pixels_per_round)
        if record:
            history.append(allowed.clone())
        go_on = allowed[rows].flatten(1).any(1)
        return go_on if max_rounds is None else go_on & (rounds[rows] < max_rounds)

    result = state.run(model, targets, kappa=kappa, targeted=targeted, discretize=discretize,
                       progress="C&W L0: iterations" if progress else None, encoding=encoding, image_of=image_of,
                       loss_of=loss_of, accept=accept, on_accept=on_accept, steps=steps, lr=lr, largest_c=largest_c,
                       factor=c_factor, abort_early=abort_early, reset_between_tries=reset_between_tries)
    result.details.update(allowed=allowed, answer_mask=answer_mask)
    if record:
        result.details["allowed_history"] = history
    return result


def _tidy_solution(model, images, solutions, targets, kappa, targeted):
    """Reset negligible changes to x0 where the result still succeeds; return it and g there.

    g is the gradient of the unclipped margin inside f6 (max_{i != t} Z_i - Z_t): at a
    success f6 itself is flat at -kappa, so its gradient would say nothing.
    """
    change = (solutions - images).abs().sum(1, keepdim=True)
    tidied = torch.where(change < NEGLIGIBLE, images, solutions)
    with torch.enable_grad():
        x = tidied.detach().requires_grad_()
        logits = model(x)
        goal = margin(logits, targets) if targeted else -margin(logits, targets)
        (grad,) = torch.autograd.grad(goal.sum(), x)
    keeps = succeeded(logits.detach(), targets, kappa, targeted).view(-1, 1, 1, 1)
    return torch.where(keeps, tidied, solutions), grad


def _loss_gradient(model, images, solutions, targets, c, kappa, targeted, encoding):
    """The gradient of ||x - x0||^2 + c f6(x) with respect to the box encoding's variable w, at the solutions."""
    with torch.enable_grad():
        w = encoding.to_variable(solutions).detach().requires_grad_()
        x = encoding.to_image(w)
        loss = (x - images).flatten(1).pow(2).sum(1) + c * f6(model(x), targets, kappa, targeted)
        (grad,) = torch.autograd.grad(loss.sum(), w)
    return grad
