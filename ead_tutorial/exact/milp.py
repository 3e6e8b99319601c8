"""The minimum targeted perturbation of a ReLU network as a mixed-integer linear program.

For the input x in the box, every hidden layer k has z_k = W_k a_{k-1} + b_k (a_0 = x) and
a_k = relu(z_k). Given bounds l <= z_k <= u, one binary s per undecided ReLU writes it exactly:

    a >= z,   a >= 0,   a <= z - l (1 - s),   a <= u s.

(s = 1 makes a = z, s = 0 makes a = 0; a ReLU the bounds decide needs no binary.) The
target t wins when Z_t - Z_j >= margin for every other class j. Minimising
sum_i |x_i - x0_i| (L1) or max_i |x_i - x0_i| (L-infinity) over those constraints is then a
MILP, solved here by HiGHS through :func:`scipy.optimize.milp`. Minimising
sum_i (x_i - x0_i)^2 (L2, squared) over the same constraints is a mixed-integer quadratic
program, which HiGHS does not solve; SCIP does (``pip install pyscipopt``).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from ead_tutorial.exact.bounds import ball_bounds, layer_bounds, unstable
from ead_tutorial.exact.network import ReluNetwork

NORMS = ("l1", "linf", "l2")


def _as_sparse(matrix) -> sparse.coo_matrix:
    """A block as a sparse matrix: a scipy sparse one as it is, a dense one (or a vector, as one row) converted."""
    return sparse.coo_matrix(matrix if sparse.issparse(matrix) else np.atleast_2d(matrix))


class _Program:
    """Variables and rows of a linear program, built up block by block (rows as sparse triplets)."""

    def __init__(self):
        self.lower, self.upper, self.integer = [], [], []
        self.rows, self.columns, self.values, self.row_lower, self.row_upper = [], [], [], [], []

    def variables(self, lower, upper, integer: bool = False) -> np.ndarray:
        lower, upper = np.atleast_1d(np.asarray(lower, float)), np.atleast_1d(np.asarray(upper, float))
        start = len(self.lower)
        self.lower += list(lower)
        self.upper += list(upper)
        self.integer += [int(integer)] * len(lower)
        return np.arange(start, start + len(lower))

    def rows_of(self, blocks: list[tuple[np.ndarray, np.ndarray]], lower, upper) -> None:
        """Add rows sum over blocks of (matrix @ x[columns]) in [lower, upper]; each matrix is rows x len(columns)."""
        first = len(self.row_lower)
        count = _as_sparse(blocks[0][0]).shape[0]
        for matrix, columns in blocks:
            matrix = _as_sparse(matrix)
            self.rows.append(matrix.row + first)
            self.columns.append(np.asarray(columns)[matrix.col])
            self.values.append(matrix.data)
        self.row_lower += list(np.broadcast_to(lower, count))
        self.row_upper += list(np.broadcast_to(upper, count))

    def matrix(self) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.concatenate(self.values), (np.concatenate(self.rows), np.concatenate(self.columns))),
                                 shape=(len(self.row_lower), len(self.lower)))

    def solve(self, objective: np.ndarray, *, relax: bool = False, time_limit: float | None = None,
              gap: float = 1e-6):
        size = len(self.lower)
        matrix = self.matrix()
        options = {"disp": False, "mip_rel_gap": gap, "presolve": True}
        if time_limit is not None:
            options["time_limit"] = time_limit
        return milp(objective, integrality=np.zeros(size) if relax else np.asarray(self.integer),
                    bounds=Bounds(np.asarray(self.lower), np.asarray(self.upper)),
                    constraints=LinearConstraint(matrix, np.asarray(self.row_lower), np.asarray(self.row_upper)),
                    options=options)


def _solve_squared_distance(program: _Program, x: np.ndarray, x0: np.ndarray, radius: float | None,
                            time_limit: float | None, gap: float = 1e-6) -> dict:
    """Minimise ||x - x0||_2^2 over the program's rows by SCIP: the MIQP of the L2 minimum.

    The objective is an epigraph variable r >= sum_i (x_i - x0_i)^2 (SCIP takes a linear
    objective). Returns a dict shaped like scipy's milp result: status (0 optimal, 1 time
    limit, 2 infeasible, 4 other), x, fun, mip_dual_bound, mip_gap, message.
    """
    try:
        import pyscipopt
    except ImportError as error:
        raise ImportError("the exact L2 minimum is a mixed-integer quadratic program, which HiGHS does not solve; "
                          "it needs SCIP: pip install pyscipopt") from error
    matrix = program.matrix()
    model = pyscipopt.Model()
    model.hideOutput()
    model.setParam("limits/gap", gap)
    model.setParam("parallel/maxnthreads", 1)
    if time_limit is not None:
        model.setParam("limits/time", float(time_limit))
    variables = [model.addVar(lb=low, ub=high, vtype="B" if integer and high > low else "C")
                 for low, high, integer in zip(program.lower, program.upper, program.integer)]
    for row, (low, high) in enumerate(zip(program.row_lower, program.row_upper)):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        expression = pyscipopt.quicksum(value * variables[column]
                                        for value, column in zip(matrix.data[start:end], matrix.indices[start:end]))
        if np.isfinite(low):
            model.addCons(expression >= low)
        if np.isfinite(high):
            model.addCons(expression <= high)
    squared = model.addVar(lb=0.0, ub=model.infinity() if radius is None else radius ** 2)
    model.addCons(pyscipopt.quicksum((variables[column] - x0[pixel]) * (variables[column] - x0[pixel])
                                     for pixel, column in enumerate(x)) <= squared)
    model.setObjective(squared, "minimize")
    model.optimize()
    status = model.getStatus()
    found = model.getNSols() > 0
    point = np.array([model.getVal(variable) for variable in variables]) if found else None
    code = {"optimal": 0, "gaplimit": 0, "timelimit": 1, "infeasible": 2}.get(status, 4)  # gaplimit: optimal to the gap
    return {"status": code, "x": point, "fun": model.getObjVal() if found else None,
            "mip_dual_bound": model.getDualbound(), "mip_gap": model.getGap() if found else None,
            "message": status}


def _network_rows(program: _Program, network: ReluNetwork, x: np.ndarray,
                  bounds: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The ReLU constraints of every hidden layer (one binary per undecided ReLU); returns each layer's a_k."""
    previous, activations = x, []
    for (w, b), (l_k, u_k) in zip(network.layers[:-1], bounds):
        a = program.variables(np.zeros_like(u_k), np.maximum(u_k, 0.0))
        # A decided ReLU gets its binary fixed (0 when u <= 0, 1 when l >= 0); presolve removes it.
        s = program.variables((l_k >= 0).astype(float), (u_k > 0).astype(float), integer=True)
        eye = sparse.identity(len(b))
        program.rows_of([(eye, a), (-w, previous)], b, np.inf)                              # a >= z
        program.rows_of([(eye, a), (-w, previous), (sparse.diags(-l_k), s)], -np.inf, b - l_k)  # a <= z - l (1 - s)
        program.rows_of([(eye, a), (sparse.diags(-u_k), s)], -np.inf, 0.0)                      # a <= u s
        previous = a
        activations.append(a)
    return activations


def _norm_rows(program: _Program, x: np.ndarray, x0: np.ndarray, norm: str, radius: float | None) -> np.ndarray:
    """Variables t with t >= |x - x0| (one per pixel for L1, one in all for L-infinity); returns t."""
    largest = np.maximum(x0, 1.0 - x0)
    eye = sparse.identity(len(x0))
    if norm == "l1":
        t = program.variables(np.zeros_like(x0), largest)
        program.rows_of([(eye, t), (-eye, x)], -x0, np.inf)
        program.rows_of([(eye, t), (eye, x)], x0, np.inf)
        if radius is not None:
            program.rows_of([(np.ones((1, len(x0))), t)], -np.inf, radius)
    else:
        t = program.variables(0.0, min(largest.max(), np.inf if radius is None else radius))
        column = np.ones((len(x0), 1))
        program.rows_of([(column, t), (-eye, x)], -x0, np.inf)
        program.rows_of([(column, t), (eye, x)], x0, np.inf)
    return t


def lp_tightened(network: ReluNetwork, x0: np.ndarray, norm: str, radius: float | None,
                 bounds: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tighten each undecided ReLU's bounds (after the first layer) by two linear programs.

    For layer k the LP relaxes the binaries of the layers before it and minimises, then
    maximises, the pre-activation z_k[j] over the ball: a valid and usually much tighter
    bound than intervals. Each layer's tightened bounds feed the next layer's LPs.
    """
    lower, upper = ball_bounds(x0, norm, radius)
    bounds = [tuple(np.array(pair) for pair in layer) for layer in bounds]
    for k in range(1, len(bounds)):
        program = _Program()
        x = program.variables(lower, upper)
        _norm_rows(program, x, x0, norm, radius)
        previous = _network_rows(program, network, x, bounds[:k])[-1]
        w, b = network.layers[k]
        l_k, u_k = bounds[k]
        for j in np.flatnonzero((l_k < 0) & (u_k > 0)):
            objective = np.zeros(len(program.lower))
            objective[previous] = w[j]
            low, high = program.solve(objective, relax=True), program.solve(-objective, relax=True)
            if low.status == 0:
                l_k[j] = max(l_k[j], low.fun + b[j] - 1e-9)
            if high.status == 0:
                u_k[j] = min(u_k[j], -high.fun + b[j] + 1e-9)
        # Bounds of later layers follow from the tightened ones by intervals, before their own LPs.
        for later in range(k + 1, len(bounds)):
            w_next, b_next = network.layers[later]
            low_a, high_a = np.maximum(bounds[later - 1][0], 0.0), np.maximum(bounds[later - 1][1], 0.0)
            positive, negative = np.maximum(w_next, 0.0), np.minimum(w_next, 0.0)
            bounds[later] = (np.maximum(bounds[later][0], positive @ low_a + negative @ high_a + b_next),
                             np.minimum(bounds[later][1], positive @ high_a + negative @ low_a + b_next))
    return bounds


@dataclasses.dataclass
class ExactMinimum:
    """One solved instance: the smallest ||x - x0|| (in ``norm``) that makes the network predict ``target``.

    ``status`` is "optimal" (``distance`` is the minimum, to the solver's ``gap``), "time
    limit" (``distance`` is the best found, an upper bound, and ``lower_bound`` what the
    solver proved), or "infeasible" (no such x within ``radius``). ``x`` is float64 (n,) in
    [0, 1]; ``verified`` says the network's own float32 logits rank ``target`` first at ``x``.
    """

    norm: str
    target: int
    status: str
    distance: float
    lower_bound: float
    gap: float
    x: np.ndarray | None
    verified: bool
    seconds: float
    unstable_relus: int
    radius: float | None


def minimum_perturbation(network: ReluNetwork, x0: np.ndarray, target: int, norm: str = "l1", *,
                         radius: float | None = None, tighten: str = "ball", time_limit: float = 60.0,
                         margin: float = 1e-4, model=None) -> ExactMinimum:
    """The exact minimum-``norm`` perturbation of ``x0`` (float (n,), in [0, 1]) toward ``target``.

    ``norm`` is "l1" or "linf" (a MILP, by HiGHS) or "l2" (a mixed-integer quadratic program,
    by SCIP; its ``gap`` is relative on the squared distance).

    Parameters
    ----------
    radius : an upper bound on the minimum (e.g. the distance an attack found); the search
        stays inside that ball. ``None`` searches the whole box.
    tighten : how the ReLU bounds are made: "box" (intervals over the whole box, ignoring
        ``radius``), "ball" (intervals over the box and the ball; exact for the first layer)
        or "lp" (then each later bound tightened by linear programs, :func:`lp_tightened`).
    margin : Z_t must exceed every other logit by this much (a strict win cannot be posed).
    model : the torch model the network came from; with it the answer is verified on the
        model's own float32 logits, otherwise on the float64 network.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if tighten not in ("box", "ball", "lp"):
        raise ValueError(f"tighten must be 'box', 'ball' or 'lp', got {tighten!r}")
    x0 = np.asarray(x0, dtype=np.float64).ravel()
    if x0.shape != (network.inputs,):
        raise ValueError(f"x0 has {x0.size} values; the network takes {network.inputs}")
    if x0.min() < 0 or x0.max() > 1 or not np.isfinite(x0).all():
        raise ValueError("x0 must hold finite pixels in [0, 1]")
    if not 0 <= target < network.classes:
        raise ValueError(f"target {target} is not a class of a {network.classes}-class network")
    if network.logits(x0).argmax() == target:
        raise ValueError(f"the network already predicts the target {target} at x0; pick another target")
    started = time.perf_counter()
    if radius is not None:
        radius = float(radius) * (1 + 1e-6) + 1e-6  # the attack's own point must stay feasible
    ball = None if tighten == "box" else radius
    lower, upper = ball_bounds(x0, norm, ball)
    bounds = layer_bounds(network, lower, upper, x0=x0, l1_radius=ball if norm == "l1" else None,
                          l2_radius=ball if norm == "l2" else None)
    if tighten == "lp":
        if norm == "l2":
            raise ValueError("LP tightening needs a polyhedral ball (l1 or linf); use tighten='ball' for l2")
        bounds = lp_tightened(network, x0, norm, radius, bounds)

    program = _Program()
    x = program.variables(*ball_bounds(x0, norm, radius))
    t = _norm_rows(program, x, x0, norm, radius) if norm != "l2" else None
    last = _network_rows(program, network, x, bounds)[-1] if network.hidden else x
    w, b = network.layers[-1]
    others = [j for j in range(network.classes) if j != target]
    program.rows_of([(w[target] - w[others], last)], margin - (b[target] - b[others]), np.inf)  # Z_t - Z_j >= margin
    if norm == "l2":
        solved = _solve_squared_distance(program, x, x0, radius, time_limit)
    else:
        objective = np.zeros(len(program.lower))
        objective[t] = 1.0
        result = program.solve(objective, time_limit=time_limit)
        solved = {"status": result.status, "x": result.x, "message": result.message,
                  "mip_dual_bound": getattr(result, "mip_dual_bound", None), "mip_gap": getattr(result, "mip_gap", None)}
    seconds = time.perf_counter() - started

    found = solved["x"] is not None
    point = np.clip(solved["x"][x], 0.0, 1.0) if found else None
    status = {0: "optimal", 2: "infeasible"}.get(solved["status"], "time limit" if found or solved["status"] == 1 else
                                                   f"failed: {solved['message']}")
    if found:
        delta = point - x0
        distance = float({"l1": np.abs(delta).sum(), "linf": np.abs(delta).max(), "l2": np.sqrt((delta ** 2).sum())}[norm])
        logits = network.torch_logits(model, point)[0] if model is not None else network.logits(point)
        verified = bool(logits.argmax() == target)
    else:
        distance, verified = float("nan"), False
    bound = solved["mip_dual_bound"]
    if bound is not None and np.isfinite(bound) and norm == "l2":
        bound = np.sqrt(max(bound, 0.0))  # SCIP bounds the squared distance
    lower_bound = float(bound) if bound is not None and np.isfinite(bound) else (distance if status == "optimal" else 0.0)
    gap = float(solved["mip_gap"] or 0.0) if found else float("nan")
    return ExactMinimum(norm=norm, target=target, status=status, distance=distance, lower_bound=lower_bound, gap=gap,
                        x=point, verified=verified, seconds=seconds, unstable_relus=unstable(bounds), radius=radius)
