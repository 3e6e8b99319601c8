"""Peer libraries' attacks behind this package's interface, for side-by-side comparisons.

Only foolbox (``pip install foolbox``) is wrapped: its C&W L2 attack has the same
search over c, Adam, change of variables and abort early as ours, so both can be
run with the same budget on the same rows.
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


def foolbox_cw_l2(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, kappa: float = 0.0,
                  search_steps: int = 9, steps: int = 1000, lr: float = 1e-2, initial_c: float = 1e-3,
                  abort_early: bool = True) -> AttackResult:
    """foolbox 3's ``L2CarliniWagnerAttack`` (targeted), with our argument names, as an :class:`AttackResult`.

    Shapes as in :func:`ead_tutorial.attacks.cw_l2`. foolbox reports no gradient
    count; ``gradient_evaluations`` is the upper bound ``search_steps * steps``.
    """
    try:
        import foolbox
    except ImportError as error:
        raise ImportError("the comparison needs foolbox: pip install 'foolbox>=3.3,<4'") from error
    check_attack_inputs(model, images, targets, targeted=True)
    attack = foolbox.attacks.L2CarliniWagnerAttack(binary_search_steps=search_steps, steps=steps, stepsize=lr,
                                                   confidence=kappa, initial_const=initial_c,
                                                   abort_early=abort_early)
    wrapped = foolbox.PyTorchModel(model, bounds=(0, 1), device=images.device)
    raw, _, _ = attack(wrapped, images, foolbox.criteria.TargetedMisclassification(targets), epsilons=None)
    with torch.no_grad():
        success = succeeded(model(raw), targets, kappa)
    adversarial = torch.where(success.view(-1, *[1] * (images.dim() - 1)), raw, images)
    return AttackResult(adversarial=adversarial, success=success, norms=distortions(adversarial, images),
                        c=torch.full((len(images),), float("nan"), device=images.device),
                        gradient_evaluations=torch.full((len(images),), search_steps * steps, device=images.device),
                        labels=targets)
