"""Plausible wrong answers to the EAD chapters' exercises."""

import torch
import torch.nn.functional as F

from ead_tutorial.attacks import cw_l2, ead, shrink
from ead_tutorial.attacks.ead_attack import elastic_net
from ead_tutorial.objectives import f6


def _smooth_gradient(model, y, x0, targets, c, *, distance_factor=2.0, use_c=True):
    y = y.detach().clone().requires_grad_()
    loss = (c if use_c else 1.0) * f6(model(y), targets)
    (grad,) = torch.autograd.grad(loss.sum(), y)
    return grad + distance_factor * (y.detach() - x0)


def _fista(x, y, grad, x0, beta, k, steps, lr=0.01, *, weight=None, at_x=False, decay=True, from_y=False):
    alpha = lr * (1 - k / steps) ** 0.5 if decay else lr
    new_x = shrink((x if at_x else y) - alpha * grad, x0, beta)
    weight = k / (k + 3) if weight is None else weight(k)
    return new_x, new_x + weight * (new_x - (y if from_y else x))


def _choose(iterates, hits, x0, beta, rule, *, use_hits=True, squared=True, keep_x0=True, swap=False):
    delta = (iterates - x0).flatten(2)
    l1 = delta.abs().sum(2)
    l2 = delta.pow(2).sum(2) if squared else delta.norm(dim=2)
    en_rule = (rule == "en") != swap
    distance = beta * l1 + l2 if en_rule else l1
    if use_hits:
        distance = distance.masked_fill(~hits, float("inf"))
    index = distance.argmin(0)
    found = hits.any(0)
    chosen = iterates[index, torch.arange(iterates.shape[1])]
    if keep_x0:
        chosen[~found] = x0[~found]
    return chosen, found


def _untargeted(logits, labels, kappa, *, others_only=True, sign=1.0, cap=True):
    true = logits.gather(1, labels[:, None]).squeeze(1)
    pool = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")) if others_only else logits
    loss = sign * (true - pool.amax(1))
    return loss.clamp(min=-kappa) if cap else loss


def _l1_by_beta(model, images, targets, betas, *, over_all_rows=False, norm="L1", keep_budget=True, **budget):
    if not keep_budget:
        budget = {key: value for key, value in budget.items() if key != "rule"}
    means = []
    for beta in betas:
        result = ead(model, images, targets, beta=beta, **budget)
        values = result.norms[norm]
        means.append(values.mean() if over_all_rows else values[result.success].mean())
    return torch.stack(means)


def _pixels_ratio(model, images, targets, beta, *, both_only=True, norm="L0", box="projected", **budget):
    cw = cw_l2(model, images, targets, box=box, **budget)
    elastic = ead(model, images, targets, beta=beta, **budget)
    if both_only:
        both = cw.success & elastic.success
        return (elastic.norms[norm][both].mean() / cw.norms[norm][both].mean()).item()
    # each attack over its own successes, as a table of success-averaged norms would give
    return (elastic.norms[norm][elastic.success].mean() / cw.norms[norm][cw.success].mean()).item()


def _worst(success, distortion, targets_per_image=9, *, any_target=False, percent=True, all_images=False):
    success = success.view(-1, targets_per_image)
    hardest = distortion.view(-1, targets_per_image).amax(1)
    ok = success.any(1) if any_target else success.all(1)
    rate = ok.float().mean().item() * (100 if percent else 1)
    return rate, (hardest.mean() if all_images else hardest[ok].mean()).item()


WRONG = {
    "median_shrink": [
        lambda z, x0, beta: torch.maximum(z - beta, torch.minimum(x0, z + beta)),  # forgot the box
        lambda z, x0, beta: torch.minimum(z - beta, torch.maximum(x0, z + beta)).clamp(0, 1),  # min and max swapped
        lambda z, x0, beta: z.clamp(0, 1),  # no shrinkage
    ],
    "en_distortion": [
        lambda delta, beta: elastic_net(delta, beta) - delta.flatten(1).pow(2).sum(1)
        + delta.flatten(1).norm(dim=1),  # the L2 norm, not squared
        lambda delta, beta: beta * delta.abs().sum() + delta.pow(2).sum(),  # one number for the whole batch
        lambda delta, beta: delta.flatten(1).abs().sum(1) + beta * delta.flatten(1).pow(2).sum(1),  # weights swapped
        lambda delta, beta: beta * delta.flatten(1).abs().mean(1) + delta.flatten(1).pow(2).mean(1),  # mean, not sum
    ],
    "en_soft_threshold": [
        lambda z, x0, beta: shrink(z, x0, beta),  # clipped to the box
        lambda z, x0, beta: torch.where((z - x0).abs() > beta, z, x0),  # hard threshold: no shift
        lambda z, x0, beta: x0 + torch.sign(z - x0) * ((z - x0).abs() + beta),  # pushed away from x0
    ],
    "exact_prox_step": [
        lambda x, grad, x0, alpha, beta: shrink(x - alpha * grad, x0, beta),  # Algorithm 1's threshold beta
        lambda x, grad, x0, alpha, beta: shrink(x + alpha * grad, x0, alpha * beta),  # uphill
        lambda x, grad, x0, alpha, beta: x0 + torch.sign(x - alpha * grad - x0)
        * ((x - alpha * grad - x0).abs() - alpha * beta).clamp(min=0),  # forgot the box
    ],
    "unchanged_share": [
        lambda z, x0, beta: ((z - x0).abs() <= beta).flatten(1).float().mean(1),  # the dead zone only
        lambda z, x0, beta: (shrink(z, x0, beta) == x0).flatten(1).float().sum(1),  # a count, not a share
        lambda z, x0, beta: (shrink(z, x0, beta) == x0).float().mean().expand(len(z)),  # over the whole batch
    ],
    "smooth_part_gradient": [
        lambda model, y, x0, targets, c: _smooth_gradient(model, y, x0, targets, c, distance_factor=1.0),  # no 2
        lambda model, y, x0, targets, c: _smooth_gradient(model, y, x0, targets, c, use_c=False),  # forgot c
        lambda model, y, x0, targets, c: _smooth_gradient(model, y, x0, targets, c, distance_factor=0.0),  # f6 only
    ],
    "fista_step": [
        lambda *args: _fista(*args, weight=lambda k: (k + 1) / (k + 4)),  # momentum one step ahead
        lambda *args: _fista(*args, at_x=True),  # gradient step from x, not from the slack point
        lambda *args: _fista(*args, decay=False),  # constant step size
        lambda *args: _fista(*args, from_y=True),  # momentum on x^(k+1) - y^(k)
    ],
    "choose_by_rule": [
        lambda *args: _choose(*args, use_hits=False),  # failures are candidates too
        lambda *args: _choose(*args, squared=False),  # beta L1 + L2, not squared
        lambda *args: _choose(*args, keep_x0=False),  # a row without success returns some iterate
        lambda *args: _choose(*args, swap=True),  # the rules mixed up
    ],
    "ead_untargeted_loss": [
        lambda logits, labels, kappa: _untargeted(logits, labels, kappa, others_only=False),  # max over all classes
        lambda logits, labels, kappa: _untargeted(logits, labels, kappa, sign=-1.0),  # the targeted loss
        lambda logits, labels, kappa: _untargeted(logits, labels, kappa, cap=False),  # forgot kappa
    ],
    "l1_by_beta": [
        lambda *args, **budget: _l1_by_beta(*args, over_all_rows=True, **budget),  # failed rows count as 0
        lambda *args, **budget: _l1_by_beta(*args, norm="L2", **budget),  # the wrong norm
        lambda *args, **budget: _l1_by_beta(*args, keep_budget=False, **budget),  # dropped the rule
    ],
    "choose_beta": [
        lambda table, metric: table[metric].idxmin(),  # ignores the success rate
        lambda table, metric: table[table["ASR"] == 100][metric].idxmax(),  # the largest
        lambda table, metric: (table[table["ASR"] == 100][metric].idxmin()[0], None),  # rule only
    ],
    "pixels_changed_ratio": [
        lambda *args, **budget: _pixels_ratio(*args, both_only=False, **budget),  # each over its own successes
        lambda *args, **budget: _pixels_ratio(*args, box="tanh", **budget),  # C&W with the change of variables
        lambda *args, **budget: _pixels_ratio(*args, norm="L1", **budget),  # L1, not pixels changed
    ],
    "worst_case": [
        lambda *args: _worst(*args, any_target=True),  # success if any target succeeded
        lambda *args: _worst(*args, percent=False),  # a fraction, not percent
        lambda *args: _worst(*args, all_images=True),  # mean over every image
    ],
}
