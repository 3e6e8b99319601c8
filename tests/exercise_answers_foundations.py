"""Plausible wrong answers to the exercises of the introduction and the foundations."""

import torch


def _norms_squared_l2(x_adv, x):  # off by a square: the L2 norm without its square root
    delta = (x_adv - x).flatten(1)
    return {"L0": (delta != 0).sum(1).float(), "L1": delta.abs().sum(1), "L2": delta.pow(2).sum(1),
            "Linf": delta.abs().amax(1)}


def _norms_signed(x_adv, x):  # forgot the absolute value in L1 and Linf
    delta = (x_adv - x).flatten(1)
    return {"L0": (delta != 0).sum(1).float(), "L1": delta.sum(1), "L2": delta.norm(dim=1), "Linf": delta.amax(1)}


def _norms_whole_batch(x_adv, x):  # reduced over the whole batch, not per row
    delta = x_adv - x
    return {"L0": (delta != 0).sum().float(), "L1": delta.abs().sum(), "L2": delta.norm(), "Linf": delta.abs().max()}


def _adversarial_without_box(model, x, labels, targeted=True):  # forgot that the result must be an image
    predicted = model(x).argmax(1)
    return predicted == labels if targeted else predicted != labels


def _adversarial_ignores_mode(model, x, labels, targeted=True):  # treats every attack as targeted
    in_box = ((x >= 0) & (x <= 1)).flatten(1).all(1)
    return (model(x).argmax(1) == labels) & in_box


def _adversarial_box_any(model, x, labels, targeted=True):  # one pixel in the box is not enough
    in_box = ((x >= 0) & (x <= 1)).flatten(1).any(1)
    predicted = model(x).argmax(1)
    return (predicted == labels if targeted else predicted != labels) & in_box


def _accuracy_percent(model, x, y):  # a percentage, not a fraction
    return 100 * (model(x).argmax(1) == y).float().mean().item()


def _accuracy_count(model, x, y):  # the number right, not the share
    return (model(x).argmax(1) == y).sum().item()


def _accuracy_error_rate(model, x, y):  # the share wrong
    return (model(x).argmax(1) != y).float().mean().item()


def _sample_no_shuffle(model, x, y, n, seed):  # the first n correct rows in the data's own order
    keep = (model(x).argmax(1) == y).nonzero().flatten()[:n]
    return x[keep], y[keep]


def _sample_keeps_mistakes(model, x, y, n, seed):  # shuffles but forgets to check the model
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    return x[order], y[order]


def _sample_sorted(model, x, y, n, seed):  # the right rows, put back in the data's order
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    chosen = order[(model(x[order]).argmax(1) == y[order])][:n].sort().values
    return x[chosen], y[chosen]


def _confused_with_diagonal(confusion):  # forgot to leave out the correct answers
    return divmod(int(confusion.argmax()), confusion.shape[1])


def _confused_swapped(confusion):  # (predicted, true): rows and columns mixed up
    errors = confusion - torch.diag(confusion.diag())
    true, predicted = divmod(int(errors.argmax()), confusion.shape[1])
    return predicted, true


def _confused_least(confusion):  # argmin instead of argmax, once the diagonal is gone
    errors = confusion + torch.diag(torch.full((len(confusion),), 10**9))
    return divmod(int(errors.argmin()), confusion.shape[1])


WRONG = {
    "row_distortions": [_norms_squared_l2, _norms_signed, _norms_whole_batch],
    "is_adversarial_example": [_adversarial_without_box, _adversarial_ignores_mode, _adversarial_box_any],
    "classifier_accuracy": [_accuracy_percent, _accuracy_count, _accuracy_error_rate],
    "sample_correct_rows": [_sample_no_shuffle, _sample_keeps_mistakes, _sample_sorted],
    "most_confused_pair": [_confused_with_diagonal, _confused_swapped, _confused_least],
}
