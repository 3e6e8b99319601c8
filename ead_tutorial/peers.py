"""Peer libraries' attacks behind this package's interface, for side-by-side comparisons.

- foolbox (``pip install foolbox``): its C&W L2 attack has the same search over c,
  Adam, change of variables and abort early as ours, and its EAD the same projected
  FISTA, step-size decay and decision rules, so each pair can be run with the same
  budget on the same rows.
- torchattacks (``pip install --no-deps torchattacks``): its EADEN and EADL1, the same EAD
  with the paper code's fixed threshold and whole-batch abort early, but with a few
  departures (see :func:`torchattacks_ead`).
- adv-lib (``pip install --no-deps adv-lib``): its C&W L2, the same search over c, Adam and
  change of variables, with abort early that waits for every row of the batch to stall; and
  ALMA, a minimum-norm L1 attack of today, for the exact-minimum comparison.
- the Adversarial Robustness Toolbox (``pip install adversarial-robustness-toolbox``):
  its JSMA (Papernot et al., 2016), the L0 attack C&W compare theirs with.
"""

from __future__ import annotations

import torch

from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.attacks.rows import per_row
from ead_tutorial.attacks.validation import check_attack_inputs
from ead_tutorial.metrics import distortions
from ead_tutorial.objectives import succeeded


def foolbox_available() -> bool:
    try:
        import foolbox  # noqa: F401
    except ImportError:
        return False
    return True


def torchattacks_available() -> bool:
    try:
        import torchattacks  # noqa: F401
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
    adversarial = torch.where(per_row(success, images), raw, images)
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

    Shapes as in :func:`ead_tutorial.attacks.ead_attack`. foolbox reports no gradient count;
    ``gradient_evaluations`` is the upper bound ``search_steps * steps``.
    """
    raw = _run_foolbox(lambda foolbox: foolbox.attacks.EADAttack(
        binary_search_steps=search_steps, steps=steps, initial_stepsize=lr, confidence=kappa,
        initial_const=initial_c, regularization=beta, decision_rule=rule.upper(), abort_early=abort_early),
        model, images, targets)
    return _as_result(model, raw, images, targets, kappa, search_steps * steps)


def foolbox_fmn(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, norm: str = "l1",
                steps: int = 100) -> AttackResult:
    """foolbox 3's ``L1FMNAttack`` or ``L2FMNAttack`` (targeted): the fast minimum-norm attack of Pintor et al. (2021).

    A minimum-norm attack with no constant to search: it steps toward the boundary and
    shrinks a budget in ``norm`` ("l1" or "l2") as it goes. foolbox reports no gradient
    count; ``gradient_evaluations`` is ``steps``.
    """
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    raw = _run_foolbox(lambda foolbox: (foolbox.attacks.L1FMNAttack if norm == "l1" else foolbox.attacks.L2FMNAttack)(
        steps=steps), model, images, targets)
    return _as_result(model, raw, images, targets, 0.0, steps)


def adv_lib_available() -> bool:
    try:
        _import_adv_lib()
    except ImportError:
        return False
    return True


def _import_adv_lib(name: str = "carlini_wagner_l2"):
    """The attack function ``name`` of ``adv_lib.attacks``. adv-lib imports visdom (for an optional
    live plot) at start-up; where visdom is not installed an empty placeholder stands in, since
    the attacks never use it."""
    import importlib
    import importlib.util
    import sys
    import types

    if importlib.util.find_spec("adv_lib") is None:
        raise ImportError("the comparison needs adv-lib: pip install --no-deps adv-lib "
                          "(--no-deps because its live-plot dependency, visdom, does not build from source here; "
                          "the attacks need only torch and tqdm)")
    if "visdom" not in sys.modules and importlib.util.find_spec("visdom") is None:
        sys.modules["visdom"] = types.ModuleType("visdom")
    return getattr(importlib.import_module("adv_lib.attacks"), name)


def adv_lib_cw_l2(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, kappa: float = 0.0,
                  search_steps: int = 9, steps: int = 1000, lr: float = 1e-2, initial_c: float = 1e-3,
                  abort_early: bool = True) -> AttackResult:
    """adv-lib's ``carlini_wagner_l2`` (targeted), with our argument names, as an :class:`AttackResult`.

    Shapes as in :func:`ead_tutorial.attacks.cw_l2`. adv-lib reports no gradient count;
    ``gradient_evaluations`` is the upper bound ``search_steps * steps``.
    """
    attack = _import_adv_lib()
    check_attack_inputs(model, images, targets, targeted=True)
    raw = attack(model, images, targets, targeted=True, confidence=kappa, learning_rate=lr, initial_const=initial_c,
                 binary_search_steps=search_steps, max_iterations=steps, abort_early=abort_early)
    return _as_result(model, raw.detach(), images, targets, kappa, search_steps * steps)


def adv_lib_alma(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, norm: str = "l1",
                 steps: int = 1000) -> AttackResult:
    """adv-lib's ``alma`` (targeted) in ``norm`` ("l1" or "l2"): the augmented Lagrangian attack of Rony et al. (2021).

    A minimum-norm attack: it minimises the distance under the constraint of reaching the
    target, with a Lagrange multiplier in place of C&W's constant and its search. Every
    other setting is adv-lib's default. ``steps`` forward and backward passes per row.
    """
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    alma = _import_adv_lib("alma")
    check_attack_inputs(model, images, targets, targeted=True)
    raw = alma(model, images, targets, targeted=True, num_steps=steps, distance=norm)
    return _as_result(model, raw.detach(), images, targets, 0.0, steps)


def torchattacks_ead(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, beta: float = 1e-3,
                     rule: str = "en", kappa: float = 0.0, search_steps: int = 9, steps: int = 1000,
                     lr: float = 1e-2, initial_c: float = 1e-3, abort_early: bool = True) -> AttackResult:
    """torchattacks' ``EADEN`` (rule "en") or ``EADL1`` (rule "l1"), targeted, as an :class:`AttackResult`.

    Shapes as in :func:`ead_tutorial.attacks.ead_attack`. torchattacks reports no gradient count;
    ``gradient_evaluations`` is the upper bound ``search_steps * steps``. Its abort early
    needs ``steps >= 10``.

    Like the paper's code, it thresholds by beta (not alpha_k beta), decays the step size
    as lr (1 - k / steps)^(1/2), applies the decision rule to every iterate, and checks
    abort early every steps / 10 iterations on the loss summed over the whole batch. It
    departs from the paper in that

    - x and y are not reset to x0 when c changes: each round starts where the last stopped;
    - the first gradient step also moves its copy of x0 (the two share memory) by
      lr * c * grad, so the L1 term, the shrinkage and the decision rule then measure from
      a shifted x0 and iterates leave [0, 1]; we clip its output to the box before
      rechecking success, which costs nothing at initial_c = 1e-3 (a shift near 3e-5)
      but undoes most successes at initial_c = 1 (a shift near 0.03); the pixels it
      leaves "unchanged" keep that shift, which inflates L0;
    - the momentum weight is (k + 1) / (k + 4), one step ahead of Algorithm 1's k / (k + 3),
      inherited from the authors' code (our ``momentum_schedule="reference"``);
    - its success test subtracts kappa from every batch target's logit in every row, so
      only kappa = 0 matches the paper when rows have different targets.

    The model's parameters are frozen during the run, or its backward pass would also
    compute (and leave behind) weight gradients.
    """
    try:
        import torchattacks
    except ImportError as error:
        raise ImportError("the comparison needs torchattacks: pip install --no-deps torchattacks "
                          "(--no-deps because it pins requests~=2.25.1, which conflicts with Sphinx; "
                          "at run time it needs only torch, torchvision, scipy and numpy)") from error
    if rule not in ("en", "l1"):
        raise ValueError(f"unknown decision rule {rule!r}; choose 'en' (elastic net) or 'l1'")
    check_attack_inputs(model, images, targets, targeted=True)
    attack_class = torchattacks.EADEN if rule == "en" else torchattacks.EADL1
    attack = attack_class(model, kappa=kappa, lr=lr, binary_search_steps=search_steps, max_iterations=steps,
                          abort_early=abort_early, initial_const=initial_c, beta=beta)
    attack.set_mode_targeted_by_label(quiet=True)  # the labels passed are the targets
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    try:
        for parameter in trainable:
            parameter.requires_grad_(False)
        raw = attack(images, targets).clamp(0, 1)
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
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
