"""Exercises for the chapters on the defences. Each check compares the answer with the package on hidden inputs."""

from __future__ import annotations

import math

import torch

from ead_tutorial.exercises.checking import Hint, exercise, expect, expect_close  # noqa: F401


def _one_number(value, what: str) -> float:
    """``value`` as a float, or a hint when it is not a single number."""
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, f"return one number ({what}), not a tensor of shape {tuple(value.shape)}")
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Hint(f"return one number ({what}), got {type(value).__name__}") from None


def _bool_rows(answer, rows: int, what: str) -> torch.Tensor:
    """``answer`` as a bool tensor of ``rows`` entries on the CPU, or a hint."""
    expect(isinstance(answer, torch.Tensor), f"return a torch.Tensor of booleans, one per row ({what})")
    expect(tuple(answer.shape) == (rows,), f"return one boolean per row: shape ({rows},), got {tuple(answer.shape)}")
    expect(answer.dtype == torch.bool, f"return booleans (dtype torch.bool), got {answer.dtype}")
    return answer.cpu()


class _Scaled(torch.nn.Module):
    """A network whose logits are multiplied by ``factor``: its decisions are unchanged, its softmax is not."""

    def __init__(self, model: torch.nn.Module, factor: float):
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.factor


def _test_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from ead_tutorial.data import load_mnist

    x, y = load_mnist("test", verbose=False)
    rows = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    return x[rows], y[rows]


def _other_classes(labels: torch.Tensor, generator: torch.Generator, k: int = 10) -> torch.Tensor:
    """A class different from each label, drawn at random."""
    return (labels + torch.randint(1, k, labels.shape, generator=generator)) % k


# --- defences/distillation -------------------------------------------------------------------------------------


@exercise("stable_distillation_loss", chapter="defences/distillation")
def _stable_distillation_loss(answer) -> None:
    """``answer(student_logits, soft, temperature)`` is the mean over the batch of -sum_i s_i log softmax(Z / T)_i,
    finite even where softmax(Z / T) rounds to 0 or 1."""
    from ead_tutorial.models import distillation_loss

    generator = torch.Generator().manual_seed(11)
    logits = torch.randn(5, 10, generator=generator) * 3
    soft = (torch.randn(5, 10, generator=generator) * 2).softmax(1)
    first = _one_number(answer(logits.clone(), soft.clone(), 1.0), "the mean loss over the batch")
    expect_close(first, distillation_loss(logits, soft, 1.0).item(),
                 "at T = 1 with moderate logits the loss is wrong: it is the cross-entropy -sum_i s_i log F_i, "
                 "weighted by the soft labels s (mind the sign), summed over the classes and averaged over the rows",
                 rtol=1e-4)
    for temperature in (20.0, 100.0):
        expect_close(_one_number(answer(logits.clone(), soft.clone(), temperature), "the mean loss"),
                     distillation_loss(logits, soft, temperature).item(),
                     f"right at T = 1 but wrong at T = {temperature:g}: the student's logits are divided by T "
                     "before the softmax", rtol=1e-4)
    # A distilled student deployed at T = 1: logits hundreds apart, so softmax(Z) holds exact 0s and 1s.
    saturated = torch.randn(4, 10, generator=generator) * 300
    for soft_labels, which in ((soft[:4], "soft labels"), (torch.eye(10)[[3, 1, 4, 1]], "one-hot labels")):
        value = _one_number(answer(saturated.clone(), soft_labels.clone(), 1.0), "the mean loss")
        expect(math.isfinite(value), f"with logits hundreds apart and {which} your loss is not finite: "
                                     "log(softmax(Z / T)) is -inf where the softmax rounds to 0; compute "
                                     "log softmax as Z / T - logsumexp(Z / T) instead")
        expect_close(value, distillation_loss(saturated, soft_labels, 1.0).item(),
                     f"with logits hundreds apart and {which} the loss is wrong: compute log softmax(Z / T) from the "
                     "logits (log_softmax or logsumexp), not from the probabilities", rtol=1e-4)


@exercise("saturated_share", chapter="defences/distillation")
def _saturated_share(answer) -> None:
    """``answer(model, images)`` is the share (0 to 1) of rows whose largest softmax(Z) probability, at T = 1 and in
    the network's float32, is exactly 1.0."""
    from ead_tutorial.models import pretrained

    undefended = pretrained("mnist")
    images, _ = _test_images(40, seed=5)
    networks = {"the undefended network": undefended,
                "the undefended network with its logits times 3": _Scaled(undefended, 3.0).eval(),
                "the undefended network with its logits times 30": _Scaled(undefended, 30.0).eval(),
                "the T = 100 student": pretrained("mnist-distilled-T100")}
    for name, model in networks.items():
        value = _one_number(answer(model, images.clone()), "a share between 0 and 1")
        with torch.no_grad():
            expected = (model(images).softmax(1).amax(1) == 1.0).float().mean().item()
        expect(0.0 <= value <= 1.0, "return a share between 0 and 1, not a percentage or a count")
        expect_close(value, expected, f"wrong share for {name}: count the rows whose largest probability of the "
                                      "softmax at T = 1 equals 1.0 exactly (not 'close to 1'), computed in float32 "
                                      "as the network outputs it, without overflow in exp")


# --- defences/breaking_distillation ----------------------------------------------------------------------------


def _f1_from_probabilities(logits, labels, kappa=0.0, targeted=True):
    return -logits.softmax(1).gather(1, labels[:, None]).squeeze(1).log() / math.log(2) - 1


@exercise("no_gradient_rows", chapter="defences/breaking_distillation")
def _no_gradient_rows(answer) -> None:
    """``answer(objective, logits, targets)`` marks the rows (bool, B) where the gradient of the objective with
    respect to the logits is exactly zero in every entry, or not finite in some entry."""
    from ead_tutorial.objectives import OBJECTIVES

    generator = torch.Generator().manual_seed(21)
    base = torch.randn(6, 10, generator=generator)
    targets = _other_classes(base.argmax(1), generator)
    objectives = {"f2": OBJECTIVES["f2"], "f4": OBJECTIVES["f4"], "f6": OBJECTIVES["f6"], "f1": OBJECTIVES["f1"],
                  "f1 from the probabilities": _f1_from_probabilities}
    for scale in (1.0, 30.0, 300.0):
        logits = base * scale
        for name, objective in objectives.items():
            found = _bool_rows(answer(objective, logits.clone(), targets.clone()), len(logits), "no gradient or not")
            z = logits.clone().requires_grad_()
            (gradient,) = torch.autograd.grad(objective(z, targets).sum(), z)
            zero, broken = (gradient == 0).all(1), ~torch.isfinite(gradient).all(1)
            expected = zero | broken
            for where, mask in (("rows whose gradient is exactly zero", zero),
                                ("rows whose gradient holds inf or NaN", broken),
                                ("rows with a finite, nonzero gradient (however small)", ~expected)):
                expect(torch.equal(found[mask], expected[mask]),
                       f"{name} on logits of size about {scale:g}: wrong answer on the {where}; take the gradient "
                       "with respect to the logits, per row, and test for exact zeros and for non-finite entries")


@exercise("soften_objective", chapter="defences/breaking_distillation")
def _soften_objective(answer) -> None:
    """``answer(objective, temperature)`` returns a new objective with the same arguments
    ``(logits, labels, kappa=0.0, targeted=True)`` that applies ``objective`` to the logits divided by T."""
    from ead_tutorial.objectives import OBJECTIVES

    generator = torch.Generator().manual_seed(31)
    softened = answer(OBJECTIVES["f2"], 1.0)
    expect(callable(softened), "soften_objective must return a function: the softened objective")
    logits = torch.randn(6, 10, generator=generator) * 4
    labels = _other_classes(logits.argmax(1), generator)
    value = softened(logits.clone(), labels.clone())
    expect_close(value, OBJECTIVES["f2"](logits, labels), "at T = 1 the softened objective must equal the objective")
    for name in ("f2", "f4", "f6"):
        for temperature in (10.0, 100.0):
            expect_close(answer(OBJECTIVES[name], temperature)(logits.clone(), labels.clone()),
                         OBJECTIVES[name](logits / temperature, labels),
                         f"{name} softened at T = {temperature:g} is wrong: the temperature divides the logits before "
                         "the objective sees them (it does not scale the objective's value)")
    for kappa, targeted in ((0.2, True), (0.0, False), (0.3, False)):
        expect_close(answer(OBJECTIVES["f6"], 10.0)(logits.clone(), labels.clone(), kappa=kappa, targeted=targeted),
                     OBJECTIVES["f6"](logits / 10.0, labels, kappa=kappa, targeted=targeted),
                     f"f6 softened at T = 10 with kappa = {kappa:g}, targeted = {targeted}: wrong values; pass kappa "
                     "and targeted on to the objective")
    # On a distilled network's logits the softened f2 has a gradient again.
    saturated = (torch.randn(4, 10, generator=generator) * 300).requires_grad_()
    targets = _other_classes(saturated.detach().argmax(1), generator)
    value = answer(OBJECTIVES["f2"], 100.0)(saturated, targets)
    expect(isinstance(value, torch.Tensor) and value.requires_grad,
           "the softened objective's value does not depend on the logits for autograd: no detach, no torch.no_grad")
    (gradient,) = torch.autograd.grad(value.sum(), saturated)
    expect(torch.isfinite(gradient).all() and (gradient != 0).any(1).all(),
           "on logits hundreds apart, f2 softened at T = 100 should have a finite, nonzero gradient on every row; "
           "keep the division by T inside the computation that autograd sees")


# --- defences/transferability ----------------------------------------------------------------------------------


def _result(adversarial, success, labels, targeted):
    from ead_tutorial.attacks.result import AttackResult

    zeros = torch.zeros(len(labels))
    return AttackResult(adversarial=adversarial, success=success, norms={"L2": zeros}, c=zeros,
                        gradient_evaluations=zeros.long(), labels=labels, targeted=targeted)


@exercise("judged_transfer", chapter="defences/transferability")
def _judged_transfer(answer) -> None:
    """``answer(adversarial, succeeded_on_source, labels, judge, targeted=True)`` says per row (bool, B) whether the
    example transfers: the attack succeeded on its source and the judge predicts the target (targeted) or anything
    but the true class ``labels`` (untargeted)."""
    from ead_tutorial.models import pretrained
    from ead_tutorial.transfer import transfer_success

    generator = torch.Generator().manual_seed(41)
    images, truth = _test_images(24, seed=41)
    # Stand-ins for examples: clean test images, so the judge mostly predicts their class. A row "reaches" its
    # target when the target is that class; other rows get another class as target.
    reach = torch.rand(24, generator=generator) < 0.5
    source = torch.rand(24, generator=generator) < 0.7
    reach[:2], source[:2] = True, torch.tensor([False, True])  # a failed row whose image the judge would accept
    targets = torch.where(reach, truth, _other_classes(truth, generator))
    # Untargeted, the labels are the true classes; on the rows that 'reach', the image shows another class.
    true_labels = torch.where(reach, _other_classes(truth, generator), truth)
    for judge_name in ("mnist", "mnist-distilled-T100"):
        judge = pretrained(judge_name)
        found = _bool_rows(answer(images.clone(), source.clone(), targets.clone(), judge), 24, "transferred or not")
        expected = transfer_success(_result(images, source, targets, True), judge)
        expect(torch.equal(found[~source], expected[~source]),
               "rows where the attack failed on its source never count as a transfer, whatever the judge says")
        expect(torch.equal(found, expected), "targeted: a row transfers when the judge predicts its target")
        found = _bool_rows(answer(images.clone(), source.clone(), true_labels.clone(), judge, targeted=False), 24,
                           "transferred or not")
        expected = transfer_success(_result(images, source, true_labels, False), judge)
        expect(torch.equal(found, expected), "untargeted (targeted=False): labels are the true classes, and a row "
                                             "transfers when its attack succeeded and the judge predicts any "
                                             "other class")


@exercise("best_and_worst_case", chapter="defences/transferability")
def _best_and_worst_case(answer) -> None:
    """``answer(success, distortion, targets_per_image=9)`` returns ``{"best": (ASR, mean distortion), "worst": (ASR,
    mean distortion)}`` as in the EAD paper: ASR in percent over images, distortions averaged over successful images
    (NaN when there are none)."""
    from ead_tutorial.metrics import case_table

    generator = torch.Generator().manual_seed(51)
    trials = []
    for n_images, k, p in ((6, 9, 0.6), (5, 4, 0.85), (4, 3, 0.2)):
        success = torch.rand(n_images * k, generator=generator) < p
        distortion = torch.rand(n_images * k, generator=generator) * 3
        trials.append((success, distortion, k))
    trials.append((torch.zeros(18, dtype=torch.bool), torch.rand(18, generator=generator), 9))  # nothing transferred
    for success, distortion, k in trials:
        arguments = (success.clone(), distortion.clone()) + ((k,) if k != 9 else ())  # 9 is the default
        found = answer(*arguments)
        expect(isinstance(found, dict) and set(found) >= {"best", "worst"},
               'return a dict with the keys "best" and "worst", each an (ASR, mean distortion) pair')
        table = case_table(success, {"L2": distortion}, targets_per_image=k, by="L2")
        where = f"{len(success) // k} images x {k} targets"
        for case, rule in (("best", "an image counts when any target succeeds; take its successful target of "
                                    "least distortion"),
                           ("worst", "an image counts only when every target succeeds; take its target of largest "
                                     "distortion")):
            pair = found[case]
            expect(isinstance(pair, (tuple, list)) and len(pair) == 2,
                   f'the value for "{case}" must be a pair (ASR, mean distortion)')
            asr = _one_number(pair[0], "the ASR in percent")
            distortion_found = _one_number(pair[1], "the mean distortion")
            expected_asr, expected_distortion = table.loc[case, "ASR"], table.loc[case, "L2"]
            expect_close(asr, expected_asr, f"{case} case ASR wrong ({where}): {rule}; rows of one image are "
                                            "consecutive, and the ASR is a percentage of images")
            if math.isnan(expected_distortion):
                expect(math.isnan(distortion_found), f"{case} case ({where}): with no successful image the mean "
                                                     "distortion is undefined, return NaN")
            else:
                expect_close(distortion_found, expected_distortion,
                             f"{case} case distortion wrong ({where}): {rule}; average over the images that count",
                             rtol=1e-5)


# --- defences/adversarial_training -----------------------------------------------------------------------------


@exercise("label_correct", chapter="defences/adversarial_training")
def _label_correct(answer) -> None:
    """``answer(result, true_labels)`` returns ``(examples, labels)`` on the CPU: the successful adversarial examples
    of an AttackResult, in order, each with the true label of its image."""
    from ead_tutorial.models.adversarial import label_corrected

    generator = torch.Generator().manual_seed(61)
    truth = torch.randint(10, (12,), generator=generator)
    targets = _other_classes(truth, generator)
    adversarial = torch.rand(12, 1, 4, 4, generator=generator)
    success = torch.rand(12, generator=generator) < 0.6
    success[:2] = torch.tensor([True, False])
    for kept in (success, torch.zeros(12, dtype=torch.bool)):
        result = _result(adversarial.clone(), kept.clone(), targets.clone(), True)
        found = answer(result, truth.clone())
        expect(isinstance(found, (tuple, list)) and len(found) == 2, "return a pair (examples, labels)")
        examples, labels = found
        expected_examples, expected_labels = label_corrected(_result(adversarial, kept, targets, True), truth)
        expect(isinstance(examples, torch.Tensor) and isinstance(labels, torch.Tensor), "return two tensors")
        expect(len(examples) == len(expected_examples) and len(labels) == len(expected_labels),
               "keep exactly the rows where the attack succeeded (result.success)"
               + (", and none when no attack succeeded" if not kept.any() else ""))
        expect(examples.device.type == "cpu" and labels.device.type == "cpu", "return both tensors on the CPU")
        expect_close(examples, expected_examples, "the examples are the adversarial images of the successful rows, in "
                                                  "their order")
        expect(labels.dtype == torch.int64, f"labels are class indices (int64), got {labels.dtype}")
        expect(torch.equal(labels, expected_labels), "each example gets the true label of its image, not the target "
                                                     "the attack reached (result.labels holds the targets)")


def _fake_training_attack(model, images, targets, true_labels):
    """A stand-in for an attack: a target-dependent change, 'successful' on a fixed pattern of rows."""
    from ead_tutorial.attacks.rows import per_row

    adversarial = (images * 0.5 + per_row(targets, images) / 20).clamp(0, 1)
    success = (targets * 3 + true_labels) % 4 != 0
    return _result(torch.where(per_row(success, images), adversarial, images), success, targets,
                   True)


def _row_keys(inputs: torch.Tensor, labels: torch.Tensor) -> list[tuple]:
    return sorted(zip((inputs.flatten(1) * 1000).round().long().tolist(), labels.tolist()),
                  key=lambda pair: (pair[1], pair[0]))


@exercise("augmented_training_set", chapter="defences/adversarial_training")
def _augmented_training_set(answer) -> None:
    """``answer(model, x, y, attack)`` attacks every image toward each other class with
    ``attack(model, images, targets, true_labels)`` and returns the training set augmented with the label-corrected
    successes: ``(inputs, labels)``, the original images first or in any order, each image with its label."""
    from ead_tutorial.data import with_all_targets
    from ead_tutorial.models import pretrained
    from ead_tutorial.models.adversarial import label_corrected

    model = pretrained("mnist")
    generator = torch.Generator().manual_seed(71)
    for n in (3, 1):
        x = torch.rand(n, 1, 5, 5, generator=generator)
        y = torch.randint(10, (n,), generator=generator)
        found = answer(model, x.clone(), y.clone(), _fake_training_attack)
        expect(isinstance(found, (tuple, list)) and len(found) == 2, "return a pair (inputs, labels)")
        inputs, labels = found
        expect(isinstance(inputs, torch.Tensor) and isinstance(labels, torch.Tensor), "return two tensors")
        images, targets, index = with_all_targets(x, y)
        examples, true = label_corrected(_fake_training_attack(model, images, targets, y[index]), y[index])
        expected_inputs, expected_labels = torch.cat([x, examples]), torch.cat([y, true])
        expect(inputs.shape[1:] == x.shape[1:], f"inputs must be images like x, of shape N x {tuple(x.shape[1:])}")
        expect(len(inputs) == len(labels), "inputs and labels must have the same number of rows")
        expect(all(any(torch.equal(inputs[i].cpu(), image) for i in range(len(inputs))) for image in x),
               "the original training images must stay in the set")
        expect(len(inputs) == len(expected_inputs),
               "wrong number of rows: attack each image toward each of its 9 other classes, and add only the rows "
               "where the attack succeeded")
        expect(_row_keys(inputs.cpu(), labels.cpu()) == _row_keys(expected_inputs, expected_labels),
               "wrong images or labels: each added example is the attack's adversarial image with the true label of "
               "the image it came from (not the target)")
