"""The book's experiments by name: each takes a profile and returns ``(config, data)``.

Later chapters register their tables and figures here, so that
``python -m ead_tutorial.reproduce NAME --profile P`` can recompute any stored result.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ead_tutorial import __version__
from ead_tutorial.devices import describe_hardware
from ead_tutorial.profiles import check_profile, pick
from ead_tutorial.store import Checkpoint, StoredResult, save_result

Experiment = Callable[[str], tuple[dict[str, Any], dict[str, Any]]]
EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str) -> Callable[[Experiment], Experiment]:
    """Register a function ``profile -> (config, data)`` under ``name``."""

    def register(function: Experiment) -> Experiment:
        EXPERIMENTS[name] = function
        return function

    return register


@experiment("mnist-accuracy")
def mnist_accuracy(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test accuracy and confusion matrix of the shipped MNIST model."""
    from ead_tutorial.data import load_mnist, predict
    from ead_tutorial.models import pretrained

    n_images = pick(quick=2000, standard=10_000, paper=10_000, profile=profile)
    x, y = load_mnist("test", verbose=False)
    x, y = x[:n_images], y[:n_images]
    predicted = predict(pretrained("mnist"), x)
    confusion = torch.zeros(10, 10, dtype=torch.int64)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    config = {"model": "mnist", "split": "test", "n_images": n_images}
    data = {"accuracy": (predicted == y).float().mean().item(), "confusion": confusion.tolist()}
    return config, data


@experiment("cw-table-iii")
def cw_table_iii(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """C&W's Table III: every objective f1-f7 with every box encoding, best and average case."""
    from ead_tutorial.attacks import cw_l2
    from ead_tutorial.box import BOXES
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained
    from ead_tutorial.objectives import OBJECTIVES

    config = {"model": "mnist", "seed": 0,
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile),
              "search_steps": pick(quick=3, standard=9, paper=20, profile=profile),
              "steps": pick(quick=150, standard=1000, paper=10_000, profile=profile),
              "initial_c": pick(quick=1.0, standard=1e-3, paper=1e-3, profile=profile),
              "lr": 1e-2, "kappa": 0.0}
    model = pretrained("mnist")
    x, y = sample_correct(model, config["n_images"], seed=config["seed"])
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    finished = Checkpoint("cw-table-iii", profile, config, enabled=profile != "quick")
    cells = [(objective, box) for box in BOXES for objective in OBJECTIVES]
    for objective, box in tqdm(cells, desc="Table III cells", disable=profile == "quick"):
        key = f"{objective}/{box}"
        if key in finished:
            continue
        result = cw_l2(model, images, targets, objective=objective, box=box, kappa=config["kappa"],
                       search_steps=config["search_steps"], steps=config["steps"], lr=config["lr"],
                       initial_c=config["initial_c"], true_labels=y.to(device())[index])
        cases = result.case_table(by="L2", seed=config["seed"])
        finished[key] = {case: {"success": float(cases.loc[case, "ASR"]), "mean_l2": float(cases.loc[case, "L2"])}
                         for case in ("best", "average")}
    table = {key: finished[key] for key in (f"{o}/{b}" for o, b in cells)}
    finished.clear()
    return config, {"cells": table}


# Budgets under which C&W's L0 and L-infinity attacks finish in seconds on a CPU (see their chapters).
FAST_L0 = dict(steps=300, lr=0.05, initial_c=1.0, largest_c=100.0, box="projected")
FAST_LINF = dict(steps=300, lr=0.01, initial_c=0.1, largest_c=20.0, box="projected")


@experiment("cw-batch-speedup")
def cw_batch_speedup(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """C&W L0 and L-infinity on many rows at once against one row at a time."""
    from ead_tutorial.attacks import cw_l0, cw_linf
    from ead_tutorial.bench import batch_speedup
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 3, "n_images": pick(quick=1, standard=10, paper=10, profile=profile),
              "cw_l0": FAST_L0, "cw_linf": FAST_LINF}
    model = pretrained("mnist")
    x, y = sample_correct(model, config["n_images"], seed=config["seed"])
    images, targets, _ = with_all_targets(x.to(device()), y.to(device()))
    data = {name: batch_speedup(attack, model, images, targets, **config[name])
            for name, attack in (("cw_l0", cw_l0), ("cw_linf", cw_linf))}
    return config, data


def _case_dict(result, by: str, seed: int) -> dict[str, dict[str, float]]:
    """Best, average and worst case of ``result``, and the mean over all rows, as plain floats.

    Returns case -> {ASR, L0, L1, L2, Linf}, with cases "best", "average", "worst" and "all rows".
    """
    table = result.case_table(by=by, seed=seed)
    cases = {case: {column: float(table.loc[case, column]) for column in table.columns} for case in table.index}
    cases["all rows"] = {"ASR": result.success_rate, **result.mean_norms()}
    return cases


def _ead_budget(profile: str) -> dict[str, Any]:
    """The EAD paper's budget (9 rounds of 1,000 iterations, c from 1e-3) at the larger profiles."""
    return {"search_steps": pick(quick=4, standard=9, paper=9, profile=profile),
            "steps": pick(quick=300, standard=1000, paper=1000, profile=profile),
            "initial_c": pick(quick=1.0, standard=1e-3, paper=1e-3, profile=profile)}


@experiment("ead-table-2")
def ead_table_2(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 2 on MNIST: C&W L2, EAD (EN rule) and EAD (L1 rule), best, average and worst case."""
    from ead_tutorial.attacks import cw_l2, ead
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "beta": 1e-3, "kappa": 0.0,
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **_ead_budget(profile),
              # The change of variables needs thousands of steps to move pixels at 0 or 1; at the quick
              # budget C&W runs with projection instead (see the box-constraints chapter).
              "cw_box": pick(quick="projected", standard="tanh", paper="tanh", profile=profile)}
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    model = pretrained("mnist")
    x, y = sample_correct(model, config["n_images"], seed=config["seed"])
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    attacks = {"C&W (L2)": lambda: cw_l2(model, images, targets, box=config["cw_box"], kappa=config["kappa"], **budget),
               "EAD (EN rule)": lambda: ead(model, images, targets, beta=config["beta"], rule="en", **budget),
               "EAD (L1 rule)": lambda: ead(model, images, targets, beta=config["beta"], rule="l1", **budget)}
    ranked_by = {"C&W (L2)": "L2", "EAD (EN rule)": "L1", "EAD (L1 rule)": "L1"}
    finished = Checkpoint("ead-table-2", profile, config, enabled=profile != "quick")
    for name in tqdm(attacks, desc="Table 2 attacks", disable=profile == "quick"):
        if name not in finished:
            started = time.perf_counter()
            result = attacks[name]()
            finished[name] = {"cases": _case_dict(result, ranked_by[name], config["seed"]),
                              "gradients per row": result.gradient_evaluations.double().mean().item(),
                              "seconds": time.perf_counter() - started}
    data = {"attacks": {name: finished[name] for name in attacks}, "ranked_by": ranked_by}
    finished.clear()
    return config, data


BETAS = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1)


@experiment("ead-beta-sweep")
def ead_beta_sweep(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 6 on MNIST: both decision rules over the L1 weight beta, best, average and worst case."""
    from ead_tutorial.attacks import ead
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "kappa": 0.0,
              "betas": list(pick(quick=(1e-5, 1e-4, 1e-3, 1e-2, 5e-2, 1e-1), standard=BETAS, paper=BETAS,
                                 profile=profile)),
              "n_images": pick(quick=1, standard=10, paper=1000, profile=profile), **_ead_budget(profile)}
    if profile == "quick":  # twelve attacks: a shorter budget than the other quick experiments
        config.update(search_steps=3, steps=200)
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    model = pretrained("mnist")
    x, y = sample_correct(model, config["n_images"], seed=config["seed"])
    images, targets, _ = with_all_targets(x.to(device()), y.to(device()))
    finished = Checkpoint("ead-beta-sweep", profile, config, enabled=profile != "quick")
    runs = [(rule, beta) for rule in ("en", "l1") for beta in config["betas"]]
    for rule, beta in tqdm(runs, desc="beta sweep", disable=profile == "quick"):
        key = f"{rule}/{beta:g}"
        if key not in finished:
            result = ead(model, images, targets, beta=beta, rule=rule, **budget)
            finished[key] = _case_dict(result, "L1", config["seed"])
    data = {"cells": {f"{rule}/{beta:g}": finished[f"{rule}/{beta:g}"] for rule, beta in runs}}
    finished.clear()
    return config, data


def run_experiment(name: str, profile: str, *, save: bool = True) -> StoredResult:
    """Run experiment ``name`` at ``profile``, timing it, and store the result unless ``save=False``."""
    if name not in EXPERIMENTS:
        raise KeyError(f"no experiment called {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    started = time.perf_counter()
    config, data = EXPERIMENTS[name](check_profile(profile))
    result = StoredResult(name=name, profile=profile, data=data, config=config, package_version=__version__,
                          torch_version=torch.__version__, hardware=describe_hardware(),
                          wall_time_s=round(time.perf_counter() - started, 1))
    if save:
        save_result(result)
    return result
