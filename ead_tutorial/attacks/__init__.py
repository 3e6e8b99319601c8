"""The attacks: batched over rows (image x target pairs), on the model's device.

Every attack returns an :class:`AttackResult`.
"""

from ead_tutorial.attacks.cov_attack import cov
from ead_tutorial.attacks.cw_l2_attack import cw_l2
from ead_tutorial.attacks.cw_l0_attack import cw_l0
from ead_tutorial.attacks.cw_linf_attack import cw_linf
from ead_tutorial.attacks.ead_attack import ead, shrink
from ead_tutorial.attacks.fast_gradient import eps_grid, fgm, ifgm, smallest_eps
from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.attacks.search import BestSoFar, ConstantSearch

__all__ = ["AttackResult", "BestSoFar", "ConstantSearch", "cov", "cw_l0", "cw_l2", "cw_linf", "ead", "eps_grid", "fgm",
           "ifgm", "shrink", "smallest_eps"]
