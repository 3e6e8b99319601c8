"""Bounds on every hidden pre-activation over a set of inputs: the big-M constants of the MILP.

The tighter the bounds, the fewer ReLUs are undecided (and the fewer binaries the solver
branches on), and the faster it solves. Three sets of inputs, each inside the last:

- the whole box [0, 1]^n (what a solver knows without an attack);
- the box intersected with the norm ball of radius r around x0, where r is the distance
  an attack already found: the minimum cannot be larger, so nothing outside the ball matters;
- the same, with each bound then tightened by a linear program (:func:`lp_tightened`).
"""

from __future__ import annotations

import numpy as np

from ead_tutorial.exact.network import ReluNetwork


def ball_bounds(x0: np.ndarray, norm: str, radius: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel bounds of the box [0, 1]^n intersected with the ball ||x - x0|| <= radius.

    ``norm`` is "l1", "l2" or "linf"; each coordinate can move at most ``radius`` in any of
    them. ``radius=None`` means the whole box.
    """
    if radius is None:
        return np.zeros_like(x0), np.ones_like(x0)
    return np.clip(x0 - radius, 0.0, 1.0), np.clip(x0 + radius, 0.0, 1.0)


def _first_layer_l1(w: np.ndarray, b: np.ndarray, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact bounds of W x + b over the box [lower, upper] and ||x - x0||_1 <= radius (a knapsack per row).

    To raise row i, spend the L1 budget on the pixels with the largest |W_ij| first, each
    up to its room in the helpful direction; the greedy order solves this linear program exactly.
    """
    def largest(weights: np.ndarray) -> np.ndarray:
        room = np.where(weights > 0, upper - x0, x0 - lower)  # how far each pixel can move to help
        gain = np.abs(weights)
        order = np.argsort(-gain, axis=1)
        gain, room = np.take_along_axis(gain, order, 1), np.take_along_axis(np.broadcast_to(room, gain.shape), order, 1)
        spent_before = np.cumsum(room, axis=1) - room
        moved = np.clip(radius - spent_before, 0.0, room)
        return (gain * moved).sum(axis=1)

    centre = w @ x0 + b
    return centre - largest(-w), centre + largest(w)


def layer_bounds(network: ReluNetwork, lower: np.ndarray, upper: np.ndarray, *, x0: np.ndarray | None = None,
                 l1_radius: float | None = None, l2_radius: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval bounds (l_k, u_k) on every hidden layer's pre-activation for inputs in [lower, upper].

    With ``x0`` and ``l1_radius`` the first layer's bounds also use ||x - x0||_1 <= l1_radius
    (exactly, :func:`_first_layer_l1`); with ``l2_radius``, ||x - x0||_2 <= l2_radius, by
    Cauchy-Schwarz: W_i x moves at most l2_radius ||W_i||_2 from W_i x0 (valid, and exact
    when the box does not bind). Later layers propagate intervals:
    W⁺ relu(u) + W⁻ relu(l) + b bounds the next pre-activation from above. Returns one pair
    per hidden layer (not the output layer).
    """
    bounds = []
    low, high = lower, upper
    for index, (w, b) in enumerate(network.layers[:-1]):
        positive, negative = np.maximum(w, 0.0), np.minimum(w, 0.0)
        l_k = positive @ low + negative @ high + b
        u_k = positive @ high + negative @ low + b
        if index == 0 and l1_radius is not None and x0 is not None:
            l_ball, u_ball = _first_layer_l1(w, b, x0, lower, upper, l1_radius)
            l_k, u_k = np.maximum(l_k, l_ball), np.minimum(u_k, u_ball)
        if index == 0 and l2_radius is not None and x0 is not None:
            centre, reach = w @ x0 + b, l2_radius * np.linalg.norm(w, axis=1)
            l_k, u_k = np.maximum(l_k, centre - reach), np.minimum(u_k, centre + reach)
        bounds.append((l_k, u_k))
        low, high = np.maximum(l_k, 0.0), np.maximum(u_k, 0.0)
    return bounds


def unstable(bounds: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """How many ReLUs the bounds leave undecided (l < 0 < u): the binaries the solver branches on."""
    return int(sum(((l_k < 0) & (u_k > 0)).sum() for l_k, u_k in bounds))
