"""The exact minimum: the MILP agrees with a linear program on a linear model, with brute force
over activation patterns on a tiny network, and no attack ever beats it."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linprog, minimize
from torch import nn

from ead_tutorial.exact import ReluNetwork, minimum_perturbation
from ead_tutorial.models.linear import RandomLinear, minimum_l1


def _tiny(seed=0, sizes=(3, 5, 4, 4)):
    torch.manual_seed(seed)
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double().eval()


def _brute_force(network, x0, target, norm, margin):
    """Minimum over every activation pattern of the LP restricted to that pattern's region."""
    n = network.inputs
    best = np.inf
    for pattern in itertools.product((0, 1), repeat=sum(network.hidden)):
        pattern = np.array(pattern)
        # affine maps x -> z_k under the pattern: z = M x + c
        m, c = np.eye(n), np.zeros(n)
        rows, right = [], []  # A x <= r
        start = 0
        for w, b in network.layers[:-1]:
            z_m, z_c = w @ m, w @ c + b
            on = pattern[start:start + len(b)].astype(bool)
            start += len(b)
            rows += [-z_m[on], z_m[~on]]  # z >= 0 where on, z <= 0 where off
            right += [z_c[on], -z_c[~on]]
            m, c = z_m * on[:, None], z_c * on
        w, b = network.layers[-1]
        out_m, out_c = w @ m, w @ c + b
        others = [j for j in range(network.classes) if j != target]
        rows.append(out_m[others] - out_m[target])  # Z_j - Z_t <= -margin
        right.append(out_c[target] - out_c[others] - margin)
        a, r = np.vstack(rows), np.concatenate(right)
        if norm == "l2":  # a convex QP: find a feasible point by LP, then minimise from it
            feasible = linprog(np.zeros(n), A_ub=a, b_ub=r, bounds=[(0, 1)] * n, method="highs")
            if feasible.status != 0:
                continue
            solved = minimize(lambda x: ((x - x0) ** 2).sum(), feasible.x, jac=lambda x: 2 * (x - x0),
                              bounds=[(0, 1)] * n, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500},
                              constraints=[{"type": "ineq", "fun": lambda x: r - a @ x, "jac": lambda x: -a}])
            assert (a @ solved.x <= r + 1e-8).all()
            best = min(best, np.sqrt(solved.fun))
            continue
        if norm == "l1":  # variables x, t; t >= |x - x0|
            cost = np.concatenate([np.zeros(n), np.ones(n)])
            a_ub = np.vstack([np.hstack([a, np.zeros((len(a), n))]), np.hstack([np.eye(n), -np.eye(n)]),
                              np.hstack([-np.eye(n), -np.eye(n)])])
            b_ub = np.concatenate([r, x0, -x0])
            bounds = [(0, 1)] * n + [(0, None)] * n
        else:
            cost = np.concatenate([np.zeros(n), [1.0]])
            a_ub = np.vstack([np.hstack([a, np.zeros((len(a), 1))]), np.hstack([np.eye(n), -np.ones((n, 1))]),
                              np.hstack([-np.eye(n), -np.ones((n, 1))])])
            b_ub = np.concatenate([r, x0, -x0])
            bounds = [(0, 1)] * n + [(0, None)]
        solved = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if solved.status == 0:
            best = min(best, solved.fun)
    return best


@pytest.mark.parametrize("norm", ["l1", "linf", "l2"])
@pytest.mark.parametrize("seed", range(4))
def test_on_a_tiny_network_the_milp_equals_brute_force_over_activation_patterns(norm, seed):
    """L1 and L-infinity by HiGHS, L2 (a mixed-integer quadratic program) by SCIP."""
    if norm == "l2":
        pytest.importorskip("pyscipopt")
    model = _tiny(seed)
    network = ReluNetwork.from_torch(model)
    x0 = np.random.default_rng(seed).uniform(0.2, 0.8, network.inputs)
    predicted = network.logits(x0).argmax()
    for target in set(range(network.classes)) - {predicted}:
        expected = _brute_force(network, x0, target, norm, margin=1e-4)
        for tighten in ("box", "ball") if norm == "l2" else ("box", "ball", "lp"):
            radius = None if tighten == "box" or not np.isfinite(expected) else expected * 1.5
            exact = minimum_perturbation(network, x0, target, norm, tighten=tighten, radius=radius, margin=1e-4)
            if not np.isfinite(expected):
                assert exact.status == "infeasible"
                continue
            assert exact.status == "optimal" and exact.verified
            assert exact.distance == pytest.approx(expected, rel=1e-5, abs=1e-7), (tighten, target)


@pytest.mark.parametrize("seed", [0, 1])
def test_on_a_linear_model_the_milp_equals_the_linear_program(seed):
    model = RandomLinear(dim=784, seed=seed)
    network = ReluNetwork.from_torch(model)
    x0 = torch.rand(784, generator=torch.Generator().manual_seed(seed))
    predicted = int(model(x0[None]).argmax())
    for target in [(predicted + 1) % 10, (predicted + 5) % 10]:
        exact = minimum_perturbation(network, x0.numpy(), target, "l1", margin=1e-3, model=model)
        assert exact.status == "optimal" and exact.verified and exact.unstable_relus == 0
        assert exact.distance == pytest.approx(minimum_l1(model, x0, target, margin=1e-3), rel=1e-6)


def test_on_a_linear_model_the_l2_miqp_equals_the_quadratic_program():
    """With no ReLU there is no integer: SCIP's answer is the convex QP's, solved here by SLSQP."""
    pytest.importorskip("pyscipopt")
    model = RandomLinear(dim=40, seed=3)
    network = ReluNetwork.from_torch(model)
    x0 = torch.rand(40, generator=torch.Generator().manual_seed(3)).double().numpy()
    w, b = network.layers[-1]
    predicted = int(network.logits(x0).argmax())
    for target in [(predicted + 1) % 10, (predicted + 4) % 10]:
        others = [j for j in range(10) if j != target]
        a, r = w[others] - w[target], b[target] - b[others] - 1e-3  # a x <= r: Z_t - Z_j >= 1e-3
        qp = minimize(lambda x: ((x - x0) ** 2).sum(), np.clip(x0 + 0.5 * (w[target] - w[predicted]), 0, 1),
                      jac=lambda x: 2 * (x - x0), bounds=[(0, 1)] * 40, method="SLSQP",
                      options={"ftol": 1e-14, "maxiter": 1000},
                      constraints=[{"type": "ineq", "fun": lambda x: r - a @ x, "jac": lambda x: -a}])
        assert qp.success and (a @ qp.x <= r + 1e-8).all()
        exact = minimum_perturbation(network, x0, target, "l2", margin=1e-3)
        assert exact.status == "optimal" and exact.verified and exact.unstable_relus == 0
        assert exact.distance == pytest.approx(np.sqrt(qp.fun), rel=1e-4)


def test_a_time_limit_gives_a_bound_never_an_optimum():
    model = _tiny(0, sizes=(30, 40, 40, 5))
    network = ReluNetwork.from_torch(model)
    x0 = np.random.default_rng(0).uniform(0, 1, 30)
    target = (int(network.logits(x0).argmax()) + 1) % 5
    exact = minimum_perturbation(network, x0, target, "l1", tighten="box", time_limit=1e-3)
    assert exact.status in ("time limit", "optimal", "infeasible")
    if exact.status == "time limit":
        assert exact.lower_bound <= exact.distance or np.isnan(exact.distance)


def test_bad_input_is_named():
    model = _tiny(0)
    network = ReluNetwork.from_torch(model)
    x0 = np.full(3, 0.5)
    predicted = int(network.logits(x0).argmax())
    with pytest.raises(ValueError, match="already predicts"):
        minimum_perturbation(network, x0, predicted)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        minimum_perturbation(network, np.full(3, 1.5), (predicted + 1) % 3)
    with pytest.raises(ValueError, match="norm must be one of"):
        minimum_perturbation(network, x0, (predicted + 1) % 3, "l0")
    with pytest.raises(ValueError, match="polyhedral"):
        minimum_perturbation(network, x0, (predicted + 1) % 3, "l2", tighten="lp")
    with pytest.raises(ValueError, match="Conv2d"):
        ReluNetwork.from_torch(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(1, 2)).eval())
    with pytest.raises(ValueError, match="training mode"):
        ReluNetwork.from_torch(_tiny(0).train())


def test_no_attack_reports_a_distance_below_the_verified_exact_minimum():
    """On the quick run of the chapter's experiment: every exact answer is verified on the
    network, no attack beats an optimum, and the optimum is at most what the attacks found."""
    from ead_tutorial.experiments import NORM_NAMES, run_experiment

    data = run_experiment("exact-minimum", "quick", save=False, keep=False, targets_per_image=1).data
    optima = 0
    assert set(data["compared"]) == {"l1", "linf"} and "FMN-L1 (foolbox)" in data["compared"]["l1"]
    for norm in data["compared"]:
        for row, exact in enumerate(data["exact"][norm]):
            assert exact["status"] in ("optimal", "time limit", "infeasible")
            if exact["status"] == "infeasible":
                continue
            assert exact["verified"], (norm, row, exact)
            found = [data["attacks"][name]["rows"][NORM_NAMES[norm]][row] for name in data["attacks"]
                     if data["attacks"][name]["rows"]["success"][row]]
            if found and not exact["searched the whole box"]:  # the search stays inside the smallest distance found
                assert exact["distance"] <= min(found) * (1 + 1e-5) + 1e-5
            if exact["status"] == "optimal":
                optima += 1
                assert exact["lower bound"] <= exact["distance"] * (1 + 1e-5) + 1e-6
                assert all(distance >= exact["distance"] * (1 - 1e-3) - 1e-5 for distance in found), (norm, row)
    assert optima >= 2, "the quick run should solve some rows to optimality"


def test_almas_l1_is_never_below_the_exact_minimum():
    """adv-lib's ALMA (a peer, installed only with --no-deps, so skipped where it is absent) behind our interface."""
    pytest.importorskip("adv_lib")
    from ead_tutorial.experiments import attack_rows
    from ead_tutorial.models import pretrained
    from ead_tutorial.peers import adv_lib_alma

    model = pretrained("mnist-small-relu")
    images, targets, _ = attack_rows(model, 1, 0)
    images, targets = images[:2], targets[:2]
    result = adv_lib_alma(model, images, targets, norm="l1", steps=200)
    assert result.success.any()
    network = ReluNetwork.from_torch(model)
    for row in torch.nonzero(result.success).flatten().tolist():
        exact = minimum_perturbation(network, images[row].flatten().double().numpy(), int(targets[row]), "l1",
                                     radius=float(result.norms["L1"][row]), model=model)
        assert exact.status == "optimal" and exact.verified
        assert result.norms["L1"][row] >= exact.distance * (1 - 1e-3) - 1e-5
