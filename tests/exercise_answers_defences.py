"""Plausible wrong answers to the defence chapters' exercises."""

import torch
import torch.nn.functional as F


# --- defences/distillation ---

def _loss_from_probabilities(student_logits, soft, temperature):  # log of the probabilities: inf or NaN if saturated
    return -(soft * (student_logits / temperature).softmax(1).log()).sum(1).mean()


def _loss_without_temperature(student_logits, soft, temperature):  # forgot to divide by T
    return -(soft * F.log_softmax(student_logits, dim=1)).sum(1).mean()


def _loss_summed_over_batch(student_logits, soft, temperature):  # sum instead of mean over the rows
    return -(soft * F.log_softmax(student_logits / temperature, dim=1)).sum()


def _loss_with_hard_labels(student_logits, soft, temperature):  # the teacher's top class instead of its distribution
    return F.cross_entropy(student_logits / temperature, soft.argmax(1))


@torch.no_grad()
def _share_close_to_one(model, images):  # "saturated" read as "above 0.999"
    return (model(images).softmax(1).amax(1) > 0.999).float().mean().item()


@torch.no_grad()
def _share_in_float64(model, images):  # computed in double precision, where far fewer rows round to 1
    return (model(images).double().softmax(1).amax(1) == 1.0).float().mean().item()


@torch.no_grad()
def _share_at_training_temperature(model, images):  # softmax at T = 100 instead of the deployed T = 1
    return ((model(images) / 100).softmax(1).amax(1) == 1.0).float().mean().item()


@torch.no_grad()
def _mean_top_probability(model, images):  # the mean of the top probability, not a share of rows
    return model(images).softmax(1).amax(1).mean().item()


# --- defences/breaking_distillation ---

def _gradient(objective, logits, targets):
    z = logits.detach().clone().requires_grad_()
    (gradient,) = torch.autograd.grad(objective(z, targets).sum(), z)
    return gradient


def _only_zero_rows(objective, logits, targets):  # forgot the rows where the gradient is NaN or inf
    return (_gradient(objective, logits, targets) == 0).all(1)


def _small_gradient_rows(objective, logits, targets):  # a threshold instead of exact zeros
    gradient = _gradient(objective, logits, targets)
    return (gradient.norm(dim=1) < 1e-6) | ~torch.isfinite(gradient).all(1)


def _any_zero_entry(objective, logits, targets):  # one zero entry is not a vanished gradient
    gradient = _gradient(objective, logits, targets)
    return (gradient == 0).any(1) | ~torch.isfinite(gradient).all(1)


def _soften_multiply(objective, temperature):  # multiplies the logits by T: sharpens instead of softening
    return lambda logits, labels, kappa=0.0, targeted=True: objective(logits * temperature, labels, kappa, targeted)


def _soften_value(objective, temperature):  # divides the objective's value, not the logits
    return lambda logits, labels, kappa=0.0, targeted=True: objective(logits, labels, kappa, targeted) / temperature


def _soften_drops_kappa(objective, temperature):  # kappa and targeted are not passed on
    return lambda logits, labels, kappa=0.0, targeted=True: objective(logits / temperature, labels)


def _soften_detached(objective, temperature):  # the values are right but autograd never sees them
    return lambda logits, labels, kappa=0.0, targeted=True: objective(
        (logits / temperature).detach(), labels, kappa, targeted)


# --- defences/transferability ---

@torch.no_grad()
def _transfer_ignores_source(adversarial, succeeded_on_source, labels, judge, targeted=True):  # forgot the source
    predicted = judge(adversarial).argmax(1)
    return predicted == labels if targeted else predicted != labels


@torch.no_grad()
def _transfer_always_targeted(adversarial, succeeded_on_source, labels, judge, targeted=True):  # ignores `targeted`
    return succeeded_on_source & (judge(adversarial).argmax(1) == labels)


@torch.no_grad()
def _transfer_either(adversarial, succeeded_on_source, labels, judge, targeted=True):  # "or" instead of "and"
    predicted = judge(adversarial).argmax(1)
    return succeeded_on_source | (predicted == labels if targeted else predicted != labels)


def _cases(success, distortion, k):
    return success.view(-1, k), distortion.view(-1, k)


def _best_ignores_failures(success, distortion, targets_per_image=9):  # least distortion over all targets
    s, d = _cases(success, distortion, targets_per_image)
    best_ok, worst_ok = s.any(1), s.all(1)
    return {"best": (100 * best_ok.float().mean().item(), d.amin(1)[best_ok].mean().item()),
            "worst": (100 * worst_ok.float().mean().item(), d.amax(1)[worst_ok].mean().item())}


def _cases_by_wrong_axis(success, distortion, targets_per_image=9):  # rows of one image taken as a column
    s = success.view(targets_per_image, -1).T
    d = distortion.view(targets_per_image, -1).T
    best_ok, worst_ok = s.any(1), s.all(1)
    return {"best": (100 * best_ok.float().mean().item(),
                     d.masked_fill(~s, float("inf")).amin(1)[best_ok].mean().item()),
            "worst": (100 * worst_ok.float().mean().item(), d.amax(1)[worst_ok].mean().item())}


def _worst_counts_any(success, distortion, targets_per_image=9):  # the worst case succeeds if any target does
    s, d = _cases(success, distortion, targets_per_image)
    ok = s.any(1)
    return {"best": (100 * ok.float().mean().item(), d.masked_fill(~s, float("inf")).amin(1)[ok].mean().item()),
            "worst": (100 * ok.float().mean().item(), d.masked_fill(~s, 0.0).amax(1)[ok].mean().item())}


def _cases_as_fractions(success, distortion, targets_per_image=9):  # shares in [0, 1] instead of percentages
    s, d = _cases(success, distortion, targets_per_image)
    best_ok, worst_ok = s.any(1), s.all(1)
    return {"best": (best_ok.float().mean().item(), d.masked_fill(~s, float("inf")).amin(1)[best_ok].mean().item()),
            "worst": (worst_ok.float().mean().item(), d.amax(1)[worst_ok].mean().item())}


# --- defences/adversarial_training ---

def _label_with_targets(result, true_labels):  # labels the examples with the targets the attack reached
    keep = result.success.cpu()
    return result.adversarial.cpu()[keep], result.labels.cpu()[keep]


def _keep_every_row(result, true_labels):  # adds the failed rows (the original images) too
    return result.adversarial.cpu(), true_labels.cpu()


def _keep_failures(result, true_labels):  # the mask the wrong way round
    keep = ~result.success.cpu()
    return result.adversarial.cpu()[keep], true_labels.cpu()[keep]


def _augment(model, x, y, attack, *, originals=True, use_targets=False, keep_all=False, one_target=False):
    from ead_tutorial.data import with_all_targets

    images, targets, index = with_all_targets(x, y)
    if one_target:
        images, targets, index = images[::9], targets[::9], index[::9]
    result = attack(model, images, targets, y[index])
    keep = torch.ones_like(result.success) if keep_all else result.success
    labels = (targets if use_targets else y[index])[keep]
    parts = ([x], [y]) if originals else ([], [])
    return torch.cat(parts[0] + [result.adversarial[keep]]), torch.cat(parts[1] + [labels])


WRONG = {
    "stable_distillation_loss": [_loss_from_probabilities, _loss_without_temperature, _loss_summed_over_batch,
                                 _loss_with_hard_labels],
    "saturated_share": [_share_close_to_one, _share_in_float64, _share_at_training_temperature,
                        _mean_top_probability],
    "no_gradient_rows": [_only_zero_rows, _small_gradient_rows, _any_zero_entry],
    "soften_objective": [_soften_multiply, _soften_value, _soften_drops_kappa, _soften_detached],
    "judged_transfer": [_transfer_ignores_source, _transfer_always_targeted, _transfer_either],
    "best_and_worst_case": [_best_ignores_failures, _cases_by_wrong_axis, _worst_counts_any, _cases_as_fractions],
    "label_correct": [_label_with_targets, _keep_every_row, _keep_failures],
    "augmented_training_set": [
        lambda model, x, y, attack: _augment(model, x, y, attack, originals=False),  # forgot the original images
        lambda model, x, y, attack: _augment(model, x, y, attack, use_targets=True),  # labelled with the targets
        lambda model, x, y, attack: _augment(model, x, y, attack, keep_all=True),  # kept the failed rows
        lambda model, x, y, attack: _augment(model, x, y, attack, one_target=True),  # one target per image
    ],
}
