"""Plausible wrong answers to the exercises of the chapters on the fast gradient baselines."""

import torch
import torch.nn.functional as F

from ead_tutorial.attacks.fast_gradient import project_to_ball


def _direction_unguarded(gradient, norm):  # 0 / 0 on a flat row
    if norm == "linf":
        return gradient.sign()
    flat = gradient.flatten(1)
    size = flat.abs().sum(1) if norm == "l1" else flat.norm(dim=1)
    return gradient / size.view(-1, 1, 1, 1)


def _direction_whole_batch(gradient, norm):  # normalised over the batch, not per row
    if norm == "linf":
        return gradient.sign()
    return gradient / (gradient.abs().sum() if norm == "l1" else gradient.norm())


def _direction_l2_for_l1(gradient, norm):  # the L1 step divided by the L2 norm
    if norm == "linf":
        return gradient.sign()
    size = gradient.flatten(1).norm(dim=1).clamp(min=1e-30)
    return gradient / size.view(-1, 1, 1, 1)


def _clip_without_box(x, x0, eps, norm):  # forgot the box
    return x0 + project_to_ball(x - x0, eps, norm)


def _clip_always_rescale(x, x0, eps, norm):  # pushes every row out to the sphere, even those inside the ball
    delta = x - x0
    radius = eps.view(-1, 1, 1, 1)
    if norm == "linf":
        return (x0 + delta.sign() * radius).clamp(0, 1)
    return (x0 + delta * radius / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)


def _clip_box_first(x, x0, eps, norm):  # the box, then the ball: in L2 the order matters
    return x0 + project_to_ball(x.clamp(0, 1) - x0, eps, norm)


def _steepest(model, x0, target, eps, k, steps=10, *, share=True, sign=1.0, box=True, by_abs=True, fixed=False):
    x = x0
    gradient = None
    for _ in range(steps):
        if gradient is None or not fixed:
            x_var = (x0 if fixed else x).detach().requires_grad_()
            (gradient,) = torch.autograd.grad(F.cross_entropy(model(x_var), target, reduction="sum"), x_var)
        flat = gradient.flatten(1)
        top = (flat.abs() if by_abs else -flat).topk(k, dim=1).indices
        chosen = torch.zeros_like(flat).scatter(1, top, 1.0) * flat.sign()
        x = x - sign * eps / (steps * (k if share else 1)) * chosen.view_as(gradient)
        x = x0 + project_to_ball(x - x0, torch.full((len(x0),), float(eps)), "l1")
        x = x.clamp(0, 1).detach() if box else x.detach()
    return x


def _summary_all_rows(success, norms):  # averages over every row, failures included
    return {"ASR": 100.0 * success.float().mean().item(), **{n: v.double().mean().item() for n, v in norms.items()}}


def _summary_fraction(success, norms):  # the ASR as a fraction
    return {"ASR": success.float().mean().item(),
            **{n: (v[success].double().mean().item() if success.any() else float("nan")) for n, v in norms.items()}}


def _summary_zero_when_none(success, norms):  # 0 instead of "undefined" when nothing succeeded
    return {"ASR": 100.0 * success.float().mean().item(),
            **{n: (v[success].double().mean().item() if success.any() else 0.0) for n, v in norms.items()}}


def _best_worst_unmasked(success, distortion, targets_per_image=9):  # best case takes the min over failed rows too
    ok, size = success.view(-1, targets_per_image), distortion.view(-1, targets_per_image)

    def case(values, counted):
        return 100.0 * counted.float().mean().item(), (values[counted].double().mean().item() if counted.any()
                                                       else float("nan"))
    return {"best": case(size.amin(1), ok.any(1)), "worst": case(size.amax(1), ok.all(1))}


def _best_worst_any(success, distortion, targets_per_image=9):  # worst case counts an image if any target succeeds
    ok, size = success.view(-1, targets_per_image), distortion.view(-1, targets_per_image)

    def case(values, counted):
        return 100.0 * counted.float().mean().item(), (values[counted].double().mean().item() if counted.any()
                                                       else float("nan"))
    best = size.masked_fill(~ok, float("inf")).amin(1)
    return {"best": case(best, ok.any(1)), "worst": case(size.amax(1), ok.any(1))}


def _best_worst_rows(success, distortion, targets_per_image=9):  # ASR over rows, not over images
    ok, size = success.view(-1, targets_per_image), distortion.view(-1, targets_per_image)
    best = size.masked_fill(~ok, float("inf")).amin(1)
    rate = 100.0 * success.float().mean().item()
    return {"best": (rate, best[ok.any(1)].double().mean().item() if ok.any() else float("nan")),
            "worst": (rate, size.amax(1)[ok.all(1)].double().mean().item() if ok.all(1).any() else float("nan"))}


WRONG = {
    "fgm_direction": [_direction_unguarded, _direction_whole_batch, _direction_l2_for_l1],
    "ifgm_clip": [_clip_without_box, _clip_always_rescale, _clip_box_first],
    "steepest_l1_ifgm": [
        lambda model, x0, target, eps, k, steps=10: _steepest(model, x0, target, eps, k, steps, share=False),
        lambda model, x0, target, eps, k, steps=10: _steepest(model, x0, target, eps, k, steps, sign=-1.0),
        lambda model, x0, target, eps, k, steps=10: _steepest(model, x0, target, eps, k, steps, box=False),
        lambda model, x0, target, eps, k, steps=10: _steepest(model, x0, target, eps, k, steps, by_abs=False),
        lambda model, x0, target, eps, k, steps=10: _steepest(model, x0, target, eps, k, steps, fixed=True),
    ],
    "summarise_attack": [_summary_all_rows, _summary_fraction, _summary_zero_when_none],
    "all_attacks_best_worst": [_best_worst_unmasked, _best_worst_any, _best_worst_rows],
}


def _relu_no_upper(z, a, s, l, u):  # forgot a <= u s
    return a >= z - 1e-9 and a >= -1e-9 and a <= z - l * (1 - s) + 1e-9


def _relu_no_lower_link(z, a, s, l, u):  # forgot a <= z - l (1 - s)
    return a >= z - 1e-9 and a >= -1e-9 and a <= u * s + 1e-9


def _relu_only_triangle(z, a, s, l, u):  # the LP relaxation, not the exact ReLU
    return a >= z - 1e-9 and a >= -1e-9 and a <= u * (z - l) / (u - l) + 1e-9


def _curve_counts_failures(success, distance, eps):  # failed rows (distance 0) counted as broken
    return torch.stack([(distance <= e).float().mean() for e in eps])


def _curve_strict(success, distance, eps):  # < instead of <=
    return torch.stack([(success & (distance < e)).float().mean() for e in eps])


def _curve_over_successes(success, distance, eps):  # share of the successful rows only
    return torch.stack([(distance[success] <= e).float().mean() for e in eps])


WRONG.update({
    "relu_feasible": [_relu_no_upper, _relu_no_lower_link, _relu_only_triangle],
    "robustness_curve": [_curve_counts_failures, _curve_strict, _curve_over_successes],
})
