"""Peer libraries' attacks behind this package's interface, for side-by-side comparisons.

- foolbox (``pip install foolbox``): its C&W L2 attack has the same search over c,
  Adam, change of variables and abort early as ours, and its EAD the same projected
  FISTA, step-size decay and decision rules, so each pair can be run with the same
  budget on the same rows.
- the Adversarial Robustness Toolbox (``pip install adversarial-robustness-toolbox``):
  its JSMA (Papernot et al., 2016), the L0 attack C&W compare theirs with.
"""

from __future__ import annotations

import torch

from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.attacks.validation import check_attack_inputs
from ead_tutorial.metrics import distortions
from ead_tutorial.objectives import succeeded


def foolbox_available() -> bool:
    try:
        import foolbox  # noqa: F401
    except ImportError:
        return False
    return True


def art_available() -> bool:
    try:
        import art  # noqa: F401
    except ImportError:
        return False
    return True


def _as_result(model, raw, images, targets, kappa, evaluations) -> AttackResult:
    """A peer's B x ... output as an :class:`AttackResult`: success rechecked on the model, failures reset to x0."""
    with torch.no_grad():
        success = succeeded(model(raw), targets, kappa)
    adversarial = torch.where(success.view(-1, *[1] * (images.dim() - 1)), raw, images)
    return AttackResult(adversarial=adversarial, success=success, norms=distortions(adversarial, images),
                        c=torch.full((len(images),), float("nan"), device=images.device),
                        gradient_evaluations=torch.full((len(images),), evaluations, device=images.device),
                        labels=targets)


def _run_foolbox(make_attack, model, images, targets) -> torch.Tensor:
    """Run the foolbox attack ``make_attack(foolbox)`` (targeted) on the rows; returns its raw output."""
    try:
        import foolbox
    except ImportError as error:
        raise ImportError("the comparison needs foolbox: pip install 'foolbox>=3.3,<4'") from error
    check_attack_inputs(model, images, targets, targeted=True)
    wrapped = foolbox.PyTorchModel(model, bounds=(0, 1), device=images.device)
    raw, _, _ = make_attack(foolbox)(wrapped, images, foolbox.criteria.TargetedMisclassification(targets),
                                     epsilons=None)
    return raw


def foolbox_cw_l2(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, kappa: float = 0.0,
                  search_steps: int = 9, steps: int = 1000, lr: float = 1e-2, initial_c: float = 1e-3,
                  abort_early: bool = True) -> AttackResult:
    """foolbox 3's ``L2CarliniWagnerAttack`` (targeted), with our argument names, as an :class:`AttackResult`.

    Shapes as in :func:`ead_tutorial.attacks.cw_l2`. foolbox reports no gradient
    count; ``gradient_evaluations`` is the upper bound ``search_steps * steps``.
    """
    raw = _run_foolbox(lambda foolbox: foolbox.attacks.L2CarliniWagnerAttack(
        binary_search_steps=search_steps, steps=steps, stepsize=lr, confidence=kappa, initial_const=initial_c,
        abort_early=abort_early), model, images, targets)
    return _as_result(model, raw, images, targets, kappa, search_steps * steps)


def foolbox_ead(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, beta: float = 1e-3,
                rule: str = "en", kappa: float = 0.0, search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
                initial_c: float = 1e-3, abort_early: bool = True) -> AttackResult:
    """foolbox 3's ``EADAttack`` (targeted), with our argument names, as an :class:`AttackResult`.

    Shapes as in :func:`ead_tutorial.attacks.ead`. foolbox reports no gradient count;
    ``gradient_evaluations`` is the upper bound ``search_steps * steps``.
    """
    raw = _run_foolbox(lambda foolbox: foolbox.attacks.EADAttack(
        binary_search_steps=search_steps, steps=steps, initial_stepsize=lr, confidence=kappa,
        initial_const=initial_c, regularization=beta, decision_rule=rule.upper(), abort_early=abort_early),
        model, images, targets)
    return _as_result(model, raw, images, targets, kappa, search_steps * steps)


def art_jsma(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, theta: float = 1.0,
             gamma: float = 0.1, batch_size: int = 128) -> AttackResult:
    """The Adversarial Robustness Toolbox's ``SaliencyMapMethod`` (JSMA, targeted) as an :class:`AttackResult`.

    Parameters
    ----------
    images : float B x C x H x W in [0, 1]; targets : int64 B
    theta : the change applied to each chosen pixel (1: set it to white)
    gamma : the largest fraction of the input JSMA may change before it gives up

    ART works in numpy on the CPU and reports no gradient count; ``gradient_evaluations`` is 0.
    """
    try:
        from art.attacks.evasion import SaliencyMapMethod
        from art.estimators.classification import PyTorchClassifier
    except ImportError as error:
        raise ImportError("the comparison needs the Adversarial Robustness Toolbox: "
                          "pip install 'adversarial-robustness-toolbox>=1.17,<2'") from error
    check_attack_inputs(model, images, targets, targeted=True)
    with torch.no_grad():
        n_classes = model(images[:1]).shape[1]
    classifier = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(images.shape[1:]),
                                   nb_classes=n_classes, clip_values=(0.0, 1.0), device_type=images.device.type)
    attack = SaliencyMapMethod(classifier, theta=theta, gamma=gamma, batch_size=batch_size, verbose=False)
    one_hot = torch.nn.functional.one_hot(targets.cpu(), n_classes).numpy()
    raw = torch.from_numpy(attack.generate(images.cpu().numpy(), y=one_hot)).to(images.device, images.dtype)
    return _as_result(model, raw, images, targets, 0.0, 0)
