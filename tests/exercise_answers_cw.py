"""Plausible wrong answers to the exercises of the chapters on the parts of C&W."""

import math

import torch
import torch.nn.functional as F

from ead_tutorial.attacks import cw_l2
from ead_tutorial.data import with_all_targets

UNBOUNDED = 1e10


def _at(v, t):
    return v.gather(1, t[:, None]).squeeze(1)


def _best_other(v, t):
    return v.scatter(1, t[:, None], float("-inf")).amax(1)


def _gap(v, t):
    return _best_other(v, t) - _at(v, t)


# ---- cw/objectives and cw/why_f6


def f6_no_kappa(z, t, kappa=0.0, targeted=True):
    return (_gap(z, t) if targeted else -_gap(z, t)).clamp(min=0)  # forgot kappa: floor at 0


def f6_same_sign(z, t, kappa=0.0, targeted=True):
    return _gap(z, t).clamp(min=-kappa)  # the untargeted form keeps the targeted sign


def f6_shifted(z, t, kappa=0.0, targeted=True):
    return ((_gap(z, t) if targeted else -_gap(z, t)) + kappa).clamp(min=0)  # max(gap + kappa, 0)


def f6_on_probabilities(z, t, kappa=0.0, targeted=True):
    p = z.softmax(1)
    return (_gap(p, t) if targeted else -_gap(p, t)).clamp(min=-kappa)


def f6_max_over_all(z, t, kappa=0.0, targeted=True):
    gap = z.amax(1) - _at(z, t)  # the max includes the label itself
    return (gap if targeted else -gap).clamp(min=-kappa)


def f1_printed(z, t):
    return _at(F.log_softmax(z, 1), t) + 1  # log F_t + 1, as printed


def f1_natural_log(z, t):
    return -_at(F.log_softmax(z, 1), t) - 1


def f1_log_of_softmax(z, t):
    return -torch.log2(_at(z.softmax(1), t)) - 1  # infinite once the softmax underflows


def f1_no_constant(z, t):
    return -_at(F.log_softmax(z, 1), t) / math.log(2)


def _truth(f, z, t, strict=False):
    value = f(z, t)
    says, wins = (value < 0) if strict else (value <= 0), z.argmax(1) == t
    return says, wins


def requirement_swapped(f, z, t):
    says, wins = _truth(f, z, t)
    return bool(says[wins].all()), bool(wins[says].all())  # the two directions in the wrong order


def requirement_strict(f, z, t):
    says, wins = _truth(f, z, t, strict=True)  # f < 0 instead of f <= 0
    return bool(wins[says].all()), bool(says[wins].all())


def requirement_agreement(f, z, t):
    says, wins = _truth(f, z, t)
    both = bool((says == wins).all())  # "if and only if" tested as one thing, reported twice
    return both, both


def requirement_on_some_row(f, z, t):
    says, wins = _truth(f, z, t)
    return bool(wins[says].any()), bool(says[wins].any())  # "some row" instead of "every row"


def f7_no_kappa(z, t, kappa=0.0):
    return F.softplus(_gap(z, t)) - math.log(2)


def f7_naive_softplus(z, t, kappa=0.0):
    return torch.log(1 + torch.exp(_gap(z, t) + kappa)) - math.log(2)  # overflows for large gaps


def f7_no_log2(z, t, kappa=0.0):
    return F.softplus(_gap(z, t) + kappa)


def f7_on_probabilities(z, t, kappa=0.0):
    return F.softplus(_gap(z.softmax(1), t) + kappa) - math.log(2)  # that is f3


# ---- cw/box_constraints


def encode_no_shrink(x, shrink=1e-6):
    return torch.atanh(2 * x - 1)


def encode_shrink_outside(x, shrink=1e-6):
    return (1 - shrink) * torch.atanh(2 * x - 1)


def encode_by_clipping(x, shrink=1e-6):
    return torch.atanh((2 * x - 1).clamp(-1 + shrink, 1 - shrink))


def encode_no_rescale(x, shrink=1e-6):
    return torch.atanh(x * (1 - shrink))


def gradient_tanh_factor(box, w, grad_x):
    if box == "tanh":
        return grad_x * (1 - torch.tanh(w) ** 2)  # forgot the 1/2
    if box == "clipped":
        return grad_x * ((w >= 0) & (w <= 1))
    return grad_x.clone()


def gradient_clip_passes(box, w, grad_x):
    if box == "tanh":
        return grad_x * (1 - torch.tanh(w) ** 2) / 2
    return grad_x.clone()  # clipping treated like projection


def gradient_clip_blocks_the_edges(box, w, grad_x):
    if box == "tanh":
        return grad_x * (1 - torch.tanh(w) ** 2) / 2
    if box == "clipped":
        return grad_x * ((w > 0) & (w < 1))  # torch's bare clamp: nothing passes on the edges
    return grad_x.clone()


def gradient_projection_masked(box, w, grad_x):
    if box == "tanh":
        return grad_x * (1 - torch.tanh(w) ** 2) / 2
    return grad_x * ((w >= 0) & (w <= 1))  # projection treated like clipping


# ---- cw/choosing_c


def search_swapped(c, lower, upper, success, growth=10.0):
    lower = torch.where(success, torch.maximum(lower, c), lower)  # success and failure swapped
    upper = torch.where(success, upper, torch.minimum(upper, c))
    return torch.where(upper < UNBOUNDED, (lower + upper) / 2, c * growth), lower, upper


def search_always_bisect(c, lower, upper, success, growth=10.0):
    upper = torch.where(success, torch.minimum(upper, c), upper)
    lower = torch.where(success, lower, torch.maximum(lower, c))
    return (lower + upper) / 2, lower, upper  # bisects towards 5e9 before the first success


def search_ignores_growth(c, lower, upper, success, growth=10.0):
    upper = torch.where(success, torch.minimum(upper, c), upper)
    lower = torch.where(success, lower, torch.maximum(lower, c))
    return torch.where(upper < UNBOUNDED, (lower + upper) / 2, c * 10), lower, upper


def search_bisect_old_bounds(c, lower, upper, success, growth=10.0):
    c_new = torch.where(upper < UNBOUNDED, (lower + upper) / 2, c * growth)  # c from the bounds before this round
    upper = torch.where(success, torch.minimum(upper, c), upper)
    lower = torch.where(success, lower, torch.maximum(lower, c))
    return c_new, lower, upper


def largest_successful_c(model, images, targets, c_grid, **attack):
    found = torch.full((len(images),), float("inf"))
    for c in sorted(c_grid):  # small to large: the last success written is the largest c
        found[cw_l2(model, images, targets, search_steps=1, initial_c=c, **attack).success.cpu()] = c
    return found


def smallest_c_zero_if_none(model, images, targets, c_grid, **attack):
    found = torch.zeros(len(images))
    for c in sorted(c_grid, reverse=True):
        found[cw_l2(model, images, targets, search_steps=1, initial_c=c, **attack).success.cpu()] = c
    return found


def smallest_c_for_everyone(model, images, targets, c_grid, **attack):
    for c in sorted(c_grid):  # one c for all rows: the first at which any row succeeds
        if cw_l2(model, images, targets, search_steps=1, initial_c=c, **attack).success.any():
            return torch.full((len(images),), float(c))
    return torch.full((len(images),), float("inf"))


# ---- cw/table_iii


def worst_case_any(success, l2, targets_per_image=9):
    success, l2 = success.view(-1, targets_per_image), l2.view(-1, targets_per_image)
    solved = success.any(1)  # that is the best case's rule
    return 100.0 * solved.float().mean().item(), l2.amax(1)[solved].mean().item()


def worst_case_mean_target(success, l2, targets_per_image=9):
    success, l2 = success.view(-1, targets_per_image), l2.view(-1, targets_per_image)
    solved = success.all(1)
    return 100.0 * solved.float().mean().item(), l2.mean(1)[solved].mean().item()  # mean over targets


def worst_case_fraction(success, l2, targets_per_image=9):
    success, l2 = success.view(-1, targets_per_image), l2.view(-1, targets_per_image)
    solved = success.all(1)
    return solved.float().mean().item(), l2.amax(1)[solved].mean().item()  # a fraction, not percent


def worst_case_nine(success, l2, targets_per_image=9):
    success, l2 = success.view(-1, 9), l2.view(-1, 9)  # ignores targets_per_image
    solved = success.all(1)
    return 100.0 * solved.float().mean().item(), l2.amax(1)[solved].mean().item()


def uses_kappa_signature(objective):
    import inspect

    return "kappa" in inspect.signature(objective).parameters  # every objective takes kappa


def uses_kappa_clean_rows(objective):
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    labels = logits.argmin(1)  # the label never wins: f2 and f6 look unchanged
    return not torch.allclose(objective(logits, labels, kappa=0.0), objective(logits, labels, kappa=3.0))


def uses_kappa_by_name(objective):
    return objective.__name__ in ("f2", "f3", "f6", "f7")


def cell_first_target_only(model, images, labels, objective, box, **budget):
    targets = (labels + 1) % 10  # one target per image instead of all nine
    result = cw_l2(model, images, targets, objective=objective, box=box, **budget)
    rate, mean = result.success_rate, result.mean_norms()["L2"]
    return {"best": (rate, mean), "average": (rate, mean)}


def cell_ignores_box(model, images, labels, objective, box, **budget):
    rows, targets, _ = with_all_targets(images, labels)
    cases = cw_l2(model, rows, targets, objective=objective, **budget).case_table(by="L2", seed=0)  # default box
    return {case: (cases.loc[case, "ASR"], cases.loc[case, "L2"]) for case in ("best", "average")}


def cell_all_rows_pooled(model, images, labels, objective, box, **budget):
    rows, targets, _ = with_all_targets(images, labels)
    result = cw_l2(model, rows, targets, objective=objective, box=box, **budget)
    pooled = (result.success_rate, result.mean_norms()["L2"])  # every row counted, no best or average case
    return {"best": pooled, "average": pooled}


# ---- cw/box_in_the_attack


def common_mean_own_rows(successes, norms):
    return {name: norms[name][successes[name]].mean().item() for name in norms}


def common_mean_all_rows(successes, norms):
    return {name: norms[name].mean().item() for name in norms}


def common_mean_zero_if_none(successes, norms):
    common = torch.stack(list(successes.values())).all(0)
    return {name: norms[name][common].mean().item() if common.any() else 0.0 for name in norms}


def _abort_counts(losses, every, tolerance, offset):
    rows, steps = losses.shape
    ran = torch.full((rows,), steps, dtype=torch.int64)
    previous = torch.full((rows,), float("inf"))
    for k in range(0, steps, every):
        stalled = (losses[:, k] > tolerance * previous) & (ran == steps)
        ran[stalled] = k + offset
        previous = losses[:, k]
    return ran


def abort_one_short(losses):
    return _abort_counts(losses, max(losses.shape[1] // 10, 1), 0.9999, 0)  # forgets the step taken at the check


def abort_every_step(losses):
    return _abort_counts(losses, 1, 0.9999, 1)  # checks at every iteration


def abort_no_tolerance(losses):
    return _abort_counts(losses, max(losses.shape[1] // 10, 1), 1.0, 1)  # stops only when the loss rises


WRONG = {
    "mean_on_common_rows": [common_mean_own_rows, common_mean_all_rows, common_mean_zero_if_none],
    "abort_early_iterations": [abort_one_short, abort_every_step, abort_no_tolerance],
    "my_f6": [f6_no_kappa, f6_same_sign, f6_shifted, f6_on_probabilities, f6_max_over_all],
    "my_f1": [f1_printed, f1_natural_log, f1_log_of_softmax, f1_no_constant],
    "requirement_holds": [requirement_swapped, requirement_strict, requirement_agreement, requirement_on_some_row],
    "my_f7": [f7_no_kappa, f7_naive_softplus, f7_no_log2, f7_on_probabilities],
    "tanh_encode": [encode_no_shrink, encode_shrink_outside, encode_by_clipping, encode_no_rescale],
    "box_variable_gradient": [gradient_tanh_factor, gradient_clip_passes, gradient_clip_blocks_the_edges,
                              gradient_projection_masked],
    "batched_search_update": [search_swapped, search_always_bisect, search_ignores_growth, search_bisect_old_bounds],
    "smallest_successful_c": [largest_successful_c, smallest_c_zero_if_none, smallest_c_for_everyone],
    "table_iii_worst_case": [worst_case_any, worst_case_mean_target, worst_case_fraction, worst_case_nine],
    "uses_kappa": [uses_kappa_signature, uses_kappa_clean_rows, uses_kappa_by_name],
    "table_iii_cell": [cell_first_target_only, cell_ignores_box, cell_all_rows_pooled],
}
