"""The exact minimum: the smallest targeted perturbation of a small ReLU network, by mixed-integer programming.

An attack reports the distance it *found*; these solvers say how small the smallest one *is*.
"""

from ead_tutorial.exact.bounds import ball_bounds, layer_bounds
from ead_tutorial.exact.milp import ExactMinimum, minimum_perturbation
from ead_tutorial.exact.network import ReluNetwork

__all__ = ["ExactMinimum", "ReluNetwork", "ball_bounds", "layer_bounds", "minimum_perturbation"]
