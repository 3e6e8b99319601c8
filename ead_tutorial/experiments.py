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


def case_summary(result, by: str, seed: int = 0) -> dict[str, dict[str, float]]:
    """Best, average and worst case of ``result``, and the mean over all rows, as plain floats.

    Returns case -> {ASR, L0, L1, L2, Linf}, with cases "best", "average", "worst" and "all rows".
    """
    table = result.case_table(by=by, seed=seed)
    cases = {case: {column: float(table.loc[case, column]) for column in table.columns} for case in table.index}
    cases["all rows"] = {"ASR": result.success_rate, **result.mean_norms()}
    return cases


def ead_budget(profile: str) -> dict[str, Any]:
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
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
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
            finished[name] = {"cases": case_summary(result, ranked_by[name], config["seed"]),
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
              "n_images": pick(quick=1, standard=10, paper=1000, profile=profile), **ead_budget(profile)}
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
            finished[key] = case_summary(result, "L1", config["seed"])
    data = {"cells": {f"{rule}/{beta:g}": finished[f"{rule}/{beta:g}"] for rule, beta in runs}}
    finished.clear()
    return config, data


# The fast gradient baselines' eps grids: the paper's (Table 4) at the larger profiles; at the
# quick profile a coarser resolution, which can only raise the eps found, by under one step.
QUICK_RESOLUTION = {"linf": 5e-3, "l2": 5e-2, "l1": 2.0}
NORM_NAMES = {"l1": "L1", "l2": "L2", "linf": "Linf"}


def fast_gradient_grid(norm: str, profile: str) -> torch.Tensor:
    """The eps grid for FGM and I-FGM in ``norm`` at ``profile`` (float64, increasing)."""
    from ead_tutorial.attacks import eps_grid
    from ead_tutorial.attacks.fgm import GRID_SIZE, PAPER_RESOLUTION

    resolution = pick(quick=QUICK_RESOLUTION[norm], standard=None, paper=None, profile=profile)
    return eps_grid(norm, resolution, largest=PAPER_RESOLUTION[norm] * GRID_SIZE)


def every_attack(model, images: torch.Tensor, targets: torch.Tensor, profile: str, *, beta: float = 1e-3,
                 true_labels: torch.Tensor | None = None) -> dict[str, tuple[Callable, str]]:
    """Every attack of the book on the same rows, at ``profile``'s budget: name -> (run, norm that ranks targets).

    ``run()`` returns the attack's :class:`~ead_tutorial.attacks.AttackResult`. The
    optimisation attacks get the EAD paper's budget (:func:`ead_budget`); the fast
    gradient ones the paper's eps grids (:func:`fast_gradient_grid`); C&W L0 and
    L-infinity the short budgets of their chapters at the quick profile, C&W's own otherwise.
    """
    from ead_tutorial.attacks import cw_l0, cw_l2, cw_linf, ead, smallest_eps

    budget = ead_budget(profile)
    rows = dict(model=model, images=images, targets=targets)
    attacks: dict[str, tuple[Callable, str]] = {}
    for method, label in (("fgm", "FGM"), ("ifgm", "I-FGM")):
        for norm in ("l1", "l2", "linf"):
            attacks[f"{label}-{NORM_NAMES[norm]}"] = (
                lambda method=method, norm=norm: smallest_eps(
                    **rows, attack=method, norm=norm, grid=fast_gradient_grid(norm, profile), true_labels=true_labels),
                NORM_NAMES[norm])
    cw_box = pick(quick="projected", standard="tanh", paper="tanh", profile=profile)
    attacks["C&W (L2)"] = (lambda: cw_l2(**rows, box=cw_box, true_labels=true_labels, **budget), "L2")
    for rule, label in (("en", "EAD (EN rule)"), ("l1", "EAD (L1 rule)")):
        attacks[label] = (lambda rule=rule: ead(**rows, beta=beta, rule=rule, true_labels=true_labels, **budget), "L1")
    l0_budget = pick(quick=FAST_L0, standard={}, paper={}, profile=profile)
    linf_budget = pick(quick=FAST_LINF, standard={}, paper={}, profile=profile)
    attacks["C&W (L0)"] = (lambda: cw_l0(**rows, true_labels=true_labels, **l0_budget), "L0")
    attacks["C&W (Linf)"] = (lambda: cw_linf(**rows, true_labels=true_labels, **linf_budget), "Linf")
    return attacks


@experiment("ead-table-8")
def ead_table_8(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 8 on MNIST, extended: FGM, I-FGM, C&W L2, EAD (both rules), C&W L0 and L-infinity."""
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "beta": 1e-3, "n_images": pick(quick=1, standard=20, paper=1000,
                                                                           profile=profile),
              **ead_budget(profile),
              "eps_resolution": pick(quick=QUICK_RESOLUTION, standard="paper", paper="paper", profile=profile)}
    model = pretrained("mnist")
    x, y = sample_correct(model, config["n_images"], seed=config["seed"])
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    attacks = every_attack(model, images, targets, profile, beta=config["beta"], true_labels=y.to(device())[index])
    finished = Checkpoint("ead-table-8", profile, config, enabled=profile != "quick")
    for name in tqdm(attacks, desc="Table 8 attacks", disable=profile == "quick"):
        if name not in finished:
            run, ranked_by = attacks[name]
            started = time.perf_counter()
            result = run()
            finished[name] = {"cases": case_summary(result, ranked_by, config["seed"]),
                              "gradients per row": result.gradient_evaluations.double().mean().item(),
                              "seconds": time.perf_counter() - started}
    data = {"attacks": {name: finished[name] for name in attacks},
            "ranked_by": {name: ranked_by for name, (_, ranked_by) in attacks.items()}}
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
