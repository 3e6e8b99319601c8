"""COV, the EAD paper's baseline for its Table 1: the elastic-net loss minimised by Adam under C&W's change of variables.

The loss is EAD's eq. (7), c f(x) + beta ||x - x0||_1 + ||x - x0||_2^2, but instead of
EAD's projected shrinkage-thresholding step it writes x = (tanh w + 1) / 2 and lets Adam
move w freely, differentiating |.| by its subgradient, as C&W do for the L2 loss
(Chen et al. 2018, Sec. 4.2; Table 1). Everything else is C&W's L2 attack: the same
search over c, the same Adam, abort early; the example kept for a row is its successful
iterate of least elastic-net distortion (EAD's EN rule).
"""

from __future__ import annotations

import torch

from ead_tutorial.attacks.cw_l2_attack import _minimise_at_c
from ead_tutorial.attacks.result import AttackResult, finish_attack
from ead_tutorial.attacks.rows import rows_tensor
from ead_tutorial.attacks.search import BestSoFar, ConstantSearch, search_rounds
from ead_tutorial.attacks.stopping import choose_rule
from ead_tutorial.attacks.validation import check_attack_inputs, check_counts, check_non_negative
from ead_tutorial.box import get_box
from ead_tutorial.objectives import get_objective


def cov(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, beta: float | torch.Tensor = 1e-3,
        kappa: float = 0.0, search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
        initial_c: float | torch.Tensor = 1e-3, abort_early: bool | str = True, last_at_upper: bool | None = None,
        targeted: bool = True, true_labels: torch.Tensor | None = None) -> AttackResult:
    """The COV attack: Adam on c f6 + beta ||delta||_1 + ||delta||_2^2 through x = (tanh w + 1) / 2.

    Parameters
    ----------
    model : a classifier in eval mode returning logits (B x K)
    images : B x C x H x W in [0, 1]
    targets : int64 B, the target class of each row (the true class if ``targeted=False``)
    beta : the L1 weight, one number or one per row (float B)
    kappa, search_steps, steps, lr, initial_c, abort_early, last_at_upper : as in :func:`cw_l2`

    Returns
    -------
    :class:`AttackResult`; a row's example is its successful iterate of least
    beta ||delta||_1 + ||delta||_2^2 over every c tried.
    """
    objective, encoding = get_objective("f6"), get_box("tanh")
    stop_rule = choose_rule(abort_early, default="loss")
    check_non_negative(beta=beta, kappa=kappa, initial_c=initial_c, lr=lr)
    check_counts(search_steps=search_steps, steps=steps)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    images = images.detach()
    beta_rows = rows_tensor(beta, len(images), images.device)
    search = ConstantSearch.start(len(images), initial_c, images.device)
    best = BestSoFar.start(images)
    evaluations = torch.zeros(len(images), dtype=torch.int64, device=images.device)
    for _ in search_rounds(search, search_steps, last_at_upper):
        success = _minimise_at_c(model, images, targets, encoding.to_variable(images), search.c, objective=objective,
                                 encoding=encoding, kappa=kappa, targeted=targeted, steps=steps, lr=lr,
                                 optimizer="adam", stop_rule=stop_rule, best=best, evaluations=evaluations,
                                 l1_weight=beta_rows)
        search.update(success)
    return finish_attack(model, images, targets, best, c=torch.where(best.found, best.c, search.lower),
                         evaluations=evaluations, kappa=kappa, targeted=targeted, discretize=False)
