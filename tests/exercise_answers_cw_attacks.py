"""Plausible wrong answers to the exercises of the chapters on the assembled C&W attacks."""

import math

import torch

from ead_tutorial.objectives import f6, succeeded


def _wins(model, x, targets, kappa):
    with torch.no_grad():
        return succeeded(model(x), targets, kappa)


# --- cw/discretization ---

def _breaks_forgot_before(model, x, targets, kappa=0.0):
    # Counts every row that fails after rounding, whether or not it succeeded before.
    return ~_wins(model, torch.round(255 * x) / 255, targets, kappa)


def _breaks_floor(model, x, targets, kappa=0.0):
    # Truncates to the level below instead of rounding to the nearest one.
    return _wins(model, x, targets, kappa) & ~_wins(model, torch.floor(255 * x) / 255, targets, kappa)


def _breaks_no_kappa(model, x, targets, kappa=0.0):
    # Ignores the margin: judges success at kappa = 0.
    return _wins(model, x, targets, 0.0) & ~_wins(model, torch.round(255 * x) / 255, targets, 0.0)


def _repair_step(model, x, targets, kappa=0.0, *, sign=-1.0, box=True, skip_done=True, step=1 / 255):
    x = x.detach().requires_grad_()
    logits = model(x)
    (grad,) = torch.autograd.grad(f6(logits, targets, kappa).sum(), x)
    with torch.no_grad():
        done = succeeded(logits, targets, kappa)
        move = sign * grad.sign() * step
        allowed = (grad != 0)
        if box:
            allowed &= (x + move >= 0) & (x + move <= 1)
        best = (grad.abs() * allowed).flatten(1).argmax(1)
        rows = torch.arange(len(x))
        moved = x.detach().flatten(1).clone()
        moved[rows, best] += (move * allowed).flatten(1)[rows, best]
        moved = moved.view_as(x)
        if skip_done:
            moved = torch.where(done.view(-1, 1, 1, 1), x.detach(), moved)
        return moved


# --- cw/l2_attack ---

def _loss(model, w, x0, targets, c, kappa=0.0, *, squared=True, tanh=True, use_kappa=True, reduce=False):
    x = (torch.tanh(w) + 1) / 2 if tanh else w
    distance = (x - x0).flatten(1).norm(dim=1)
    distance = distance ** 2 if squared else distance
    loss = distance + c * f6(model(x), targets, kappa if use_kappa else 0.0)
    return loss.sum() if reduce else loss


def _keep_best_no_success(best_l2, best_x, x, l2, success):
    better = l2 < best_l2  # forgot that the iterate must succeed
    return torch.where(better, l2, best_l2), torch.where(better.view(-1, 1, 1, 1), x, best_x)


def _keep_best_always(best_l2, best_x, x, l2, success):
    better = success  # every success replaces the best, even a farther one
    return torch.where(better, l2, best_l2), torch.where(better.view(-1, 1, 1, 1), x, best_x)


def _keep_best_x_only(best_l2, best_x, x, l2, success):
    better = success & (l2 < best_l2)  # updates the image but not the distance
    return best_l2, torch.where(better.view(-1, 1, 1, 1), x, best_x)


# --- cw/l0_attack ---

def _shrink(allowed, delta, scores, *, negligible=True, lowest=True, mask_outside=True, count_all=False):
    change = delta.abs().sum(1, keepdim=True)
    tiny = allowed & (change < 1e-4) if negligible else torch.zeros_like(allowed)
    candidates = allowed & ~tiny
    new = allowed & ~tiny
    for row in range(len(allowed)):
        n = int((allowed[row] if count_all else candidates[row]).sum())
        k = min(math.ceil(0.3 * math.sqrt(n)), int(candidates[row].sum()))
        s = scores[row].flatten().clone()
        if mask_outside:
            s[~candidates[row].flatten()] = float("inf") if lowest else -float("inf")
        order = s.argsort(descending=not lowest)[:k]
        new[row].view(-1)[order] = False
    return new


# --- cw/linf_attack ---

def _penalty_loop_no_abs(delta, tau):
    return torch.stack([torch.relu(row - t).sum() for row, t in zip(delta, tau)])  # forgot |.|


WRONG = {
    "discretize_rounding_breaks": [_breaks_forgot_before, _breaks_floor, _breaks_no_kappa],
    "discretize_repair_step": [
        lambda model, x, targets, kappa=0.0: _repair_step(model, x, targets, kappa, sign=1.0),  # along the gradient
        lambda model, x, targets, kappa=0.0: _repair_step(model, x, targets, kappa, box=False),  # forgot the box
        lambda model, x, targets, kappa=0.0: _repair_step(model, x, targets, kappa, step=1 / 510),  # half a level
    ],
    "l2_attack_loss": [
        lambda *a: _loss(*a, squared=False),  # L2 instead of its square
        lambda *a: _loss(*a, tanh=False),  # treats w as the image
        lambda *a: _loss(*a, use_kappa=False),  # forgot kappa
        lambda *a: _loss(*a, reduce=True),  # summed over the batch
        lambda model, w, x0, targets, c, kappa=0.0: (  # c weighs the distance instead of f6
            c * ((torch.tanh(w) + 1) / 2 - x0).flatten(1).pow(2).sum(1)
            + f6(model((torch.tanh(w) + 1) / 2), targets, kappa)),
    ],
    "l2_keep_best": [_keep_best_no_success, _keep_best_always, _keep_best_x_only],
    "l0_pixel_scores": [
        lambda delta, grad: (grad * delta).sum(1, keepdim=True),  # the rule as printed, with signs
        lambda delta, grad: (grad * delta).abs().sum(1, keepdim=True),  # absolute value before the channel sum
        lambda delta, grad: (grad * delta).abs(),  # forgot the channel sum
        lambda delta, grad: delta.abs().sum(1, keepdim=True),  # ignores the gradient
    ],
    "l0_shrink_allowed": [
        lambda allowed, delta, scores: _shrink(allowed, delta, scores, negligible=False),  # keeps negligible pixels
        lambda allowed, delta, scores: _shrink(allowed, delta, scores, lowest=False),  # removes the highest scores
        lambda allowed, delta, scores: _shrink(allowed, delta, scores, mask_outside=False),  # ranks every pixel
        lambda allowed, delta, scores: _shrink(allowed, delta, scores, count_all=True),  # k from all allowed pixels
    ],
    "linf_tau_penalty": [
        lambda delta, tau: (delta.abs() - tau).clamp(min=0).flatten(1).sum(1),  # tau broadcast along the last axis
        lambda delta, tau: (delta.abs() - tau.view(-1, *[1] * (delta.dim() - 1))).clamp(min=0).flatten(1).mean(1),
        lambda delta, tau: (delta.abs() - tau.view(-1, *[1] * (delta.dim() - 1))).clamp(min=0).pow(2).flatten(1).sum(1),
        _penalty_loop_no_abs,
    ],
    "linf_next_tau": [
        lambda tau, delta, tau_factor=0.9: tau_factor * tau,  # ignores the change actually used
        lambda tau, delta, tau_factor=0.9: tau_factor * torch.minimum(tau, delta.flatten(1).amax(1)),  # forgot |.|
        lambda tau, delta, tau_factor=0.9: tau_factor * torch.minimum(tau, delta.abs().max()),  # max over the batch
    ],
    "linf_round_solved": [
        lambda logits, delta, targets, tau, kappa=0.0: succeeded(logits, targets, kappa),  # forgot tau
        lambda logits, delta, targets, tau, kappa=0.0: (succeeded(logits, targets)  # forgot kappa
                                                        & (delta.abs().flatten(1).amax(1) <= tau)),
        lambda logits, delta, targets, tau, kappa=0.0: (succeeded(logits, targets, kappa)  # mean instead of max
                                                        & (delta.abs().flatten(1).mean(1) <= tau)),
    ],
}
