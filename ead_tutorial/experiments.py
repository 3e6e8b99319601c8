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


def attack_rows(model, n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_images`` test images ``model`` classifies correctly, each toward every other class, on the device.

    Returns images (B x 1 x 28 x 28), targets (int64 B) and the true label of each row (int64 B).
    """
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device

    x, y = sample_correct(model, n_images, seed=seed)
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    return images, targets, y.to(device())[index]


def run_parts(name: str, profile: str, config: dict[str, Any], keys: list[str], compute: Callable[[str], Any],
              desc: str) -> dict[str, Any]:
    """``compute(key)`` for every key, in order, keeping each finished part in a :class:`Checkpoint`.

    An interrupted run at a larger profile resumes after its last finished part; at the
    quick profile parts stay in memory. Returns key -> part, and clears the checkpoint.
    """
    finished = Checkpoint(name, profile, config, enabled=profile != "quick")
    for key in tqdm([key for key in keys if key not in finished], desc=desc, disable=profile == "quick"):
        finished[key] = compute(key)
    parts = {key: finished[key] for key in keys}
    finished.clear()
    return parts


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
    from ead_tutorial.models import pretrained
    from ead_tutorial.objectives import OBJECTIVES

    config = {"model": "mnist", "seed": 0,
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile),
              "search_steps": pick(quick=3, standard=9, paper=20, profile=profile),
              "steps": pick(quick=150, standard=1000, paper=10_000, profile=profile),
              "initial_c": pick(quick=1.0, standard=1e-3, paper=1e-3, profile=profile),
              "lr": 1e-2, "kappa": 0.0}
    model = pretrained("mnist")
    images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])

    def cell(key: str) -> dict[str, dict[str, float]]:
        objective, box = key.split("/")
        result = cw_l2(model, images, targets, objective=objective, box=box, kappa=config["kappa"],
                       search_steps=config["search_steps"], steps=config["steps"], lr=config["lr"],
                       initial_c=config["initial_c"], true_labels=true_labels)
        cases = result.case_table(by="L2", seed=config["seed"])
        return {case: {"success": float(cases.loc[case, "ASR"]), "mean_l2": float(cases.loc[case, "L2"])}
                for case in ("best", "average")}

    cells = [f"{objective}/{box}" for box in BOXES for objective in OBJECTIVES]
    table = run_parts("cw-table-iii", profile, config, cells, cell, "Table III cells")
    return config, {"cells": table}


# Budgets under which C&W's L0 and L-infinity attacks finish in seconds on a CPU (see their chapters).
FAST_L0 = dict(steps=300, lr=0.05, initial_c=1.0, largest_c=100.0, box="projected")
FAST_LINF = dict(steps=300, lr=0.01, initial_c=0.1, largest_c=20.0, box="projected")


@experiment("cw-batch-speedup")
def cw_batch_speedup(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """C&W L0 and L-infinity on many rows at once against one row at a time."""
    from ead_tutorial.attacks import cw_l0, cw_linf
    from ead_tutorial.bench import batch_speedup
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 3, "n_images": pick(quick=1, standard=10, paper=10, profile=profile),
              "cw_l0": FAST_L0, "cw_linf": FAST_LINF}
    model = pretrained("mnist")
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
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


def timed_summary(run: Callable, by: str, seed: int = 0) -> dict[str, Any]:
    """Run an attack and summarise it for the results store: its cases, gradients per row and seconds."""
    started = time.perf_counter()
    result = run()
    return {"cases": case_summary(result, by, seed), "gradients per row": result.gradient_evaluations.double().mean().item(),
            "seconds": time.perf_counter() - started}


def ead_budget(profile: str) -> dict[str, Any]:
    """The EAD paper's budget (9 rounds of 1,000 iterations, c from 1e-3) at the larger profiles."""
    return {"search_steps": pick(quick=4, standard=9, paper=9, profile=profile),
            "steps": pick(quick=300, standard=1000, paper=1000, profile=profile),
            "initial_c": pick(quick=1.0, standard=1e-3, paper=1e-3, profile=profile)}


def cw_and_ead(model, images: torch.Tensor, targets: torch.Tensor, profile: str, *, beta: float = 1e-3,
               kappa: float = 0.0, true_labels: torch.Tensor | None = None) -> dict[str, tuple[Callable, str]]:
    """The EAD paper's three main attacks on the same rows: name -> (run, norm that ranks targets).

    C&W (L2), EAD (EN rule) and EAD (L1 rule), with the paper's budget (:func:`ead_budget`)
    and confidence ``kappa``. C&W uses the change of variables, except at the quick profile,
    where it projects: with only 300 steps per round the change of variables cannot move
    pixels at 0 or 1 (see the box-constraints chapter).
    """
    from ead_tutorial.attacks import cw_l2, ead

    budget = ead_budget(profile)
    rows = dict(model=model, images=images, targets=targets, kappa=kappa, true_labels=true_labels, **budget)
    cw_box = pick(quick="projected", standard="tanh", paper="tanh", profile=profile)
    return {"C&W (L2)": (lambda: cw_l2(**rows, box=cw_box), "L2"),
            "EAD (EN rule)": (lambda: ead(**rows, beta=beta, rule="en"), "L1"),
            "EAD (L1 rule)": (lambda: ead(**rows, beta=beta, rule="l1"), "L1")}


@experiment("ead-table-2")
def ead_table_2(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 2 on MNIST: C&W L2, EAD (EN rule) and EAD (L1 rule), best, average and worst case."""
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "beta": 1e-3, "kappa": 0.0,
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
              "cw_box": pick(quick="projected", standard="tanh", paper="tanh", profile=profile)}
    model = pretrained("mnist")
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
    attacks = cw_and_ead(model, images, targets, profile, beta=config["beta"], kappa=config["kappa"])
    ranked_by = {name: by for name, (_, by) in attacks.items()}
    summaries = run_parts("ead-table-2", profile, config, list(attacks),
                          lambda name: timed_summary(attacks[name][0], ranked_by[name], config["seed"]),
                          "Table 2 attacks")
    return config, {"attacks": summaries, "ranked_by": ranked_by}


BETAS = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1)


@experiment("ead-beta-sweep")
def ead_beta_sweep(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 6 on MNIST: both decision rules over the L1 weight beta, best, average and worst case."""
    from ead_tutorial.attacks import ead
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "kappa": 0.0,
              "betas": list(pick(quick=(1e-5, 1e-4, 1e-3, 1e-2, 5e-2, 1e-1), standard=BETAS, paper=BETAS,
                                 profile=profile)),
              "n_images": pick(quick=1, standard=10, paper=1000, profile=profile), **ead_budget(profile)}
    if profile == "quick":  # twelve attacks: a shorter budget than the other quick experiments
        config.update(search_steps=3, steps=200)
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    model = pretrained("mnist")
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])

    def cell(key: str) -> dict[str, dict[str, float]]:
        rule, beta = key.split("/")
        return case_summary(ead(model, images, targets, beta=float(beta), rule=rule, **budget), "L1", config["seed"])

    keys = [f"{rule}/{beta:g}" for rule in ("en", "l1") for beta in config["betas"]]
    return config, {"cells": run_parts("ead-beta-sweep", profile, config, keys, cell, "beta sweep")}


# The fast gradient baselines' eps grids: the paper's (Table 4) at the larger profiles; at the
# quick profile a coarser resolution, which can only raise the eps found, by under one step.
QUICK_RESOLUTION = {"linf": 5e-3, "l2": 5e-2, "l1": 2.0}
NORM_NAMES = {"l1": "L1", "l2": "L2", "linf": "Linf"}


def fast_gradient_grid(norm: str, profile: str) -> torch.Tensor:
    """The eps grid for FGM and I-FGM in ``norm`` at ``profile`` (float64, increasing)."""
    from ead_tutorial.attacks import eps_grid
    from ead_tutorial.attacks.fast_gradient import GRID_SIZE, PAPER_RESOLUTION

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
    from ead_tutorial.attacks import cw_l0, cw_linf, smallest_eps

    rows = dict(model=model, images=images, targets=targets)
    attacks: dict[str, tuple[Callable, str]] = {}
    for method, label in (("fgm", "FGM"), ("ifgm", "I-FGM")):
        for norm in ("l1", "l2", "linf"):
            attacks[f"{label}-{NORM_NAMES[norm]}"] = (
                lambda method=method, norm=norm: smallest_eps(
                    **rows, attack=method, norm=norm, grid=fast_gradient_grid(norm, profile), true_labels=true_labels),
                NORM_NAMES[norm])
    attacks.update(cw_and_ead(model, images, targets, profile, beta=beta, true_labels=true_labels))
    l0_budget = pick(quick=FAST_L0, standard={}, paper={}, profile=profile)
    linf_budget = pick(quick=FAST_LINF, standard={}, paper={}, profile=profile)
    attacks["C&W (L0)"] = (lambda: cw_l0(**rows, true_labels=true_labels, **l0_budget), "L0")
    attacks["C&W (Linf)"] = (lambda: cw_linf(**rows, true_labels=true_labels, **linf_budget), "Linf")
    return attacks


@experiment("ead-table-8")
def ead_table_8(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 8 on MNIST, extended: FGM, I-FGM, C&W L2, EAD (both rules), C&W L0 and L-infinity."""
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "beta": 1e-3, "n_images": pick(quick=1, standard=20, paper=1000,
                                                                           profile=profile),
              **ead_budget(profile),
              "eps_resolution": pick(quick=QUICK_RESOLUTION, standard="paper", paper="paper", profile=profile)}
    model = pretrained("mnist")
    images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
    attacks = every_attack(model, images, targets, profile, beta=config["beta"], true_labels=true_labels)
    summaries = run_parts("ead-table-8", profile, config, list(attacks),
                          lambda name: timed_summary(*attacks[name], config["seed"]), "Table 8 attacks")
    return config, {"attacks": summaries,
                    "ranked_by": {name: ranked_by for name, (_, ranked_by) in attacks.items()}}


@experiment("ead-table-11")
def ead_table_11(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 11 on MNIST: C&W and EAD against the undefended network and every shipped distilled student.

    Each network is attacked on its own correctly classified test images (drawn with the
    same seed), toward every wrong class, with the paper's budget.
    """
    from ead_tutorial.models import distilled_temperatures, pretrained
    from ead_tutorial.models.distill import weights_name

    networks = {"undefended": "mnist"} | {f"T={t:g}": weights_name(t) for t in distilled_temperatures()}
    config = {"networks": networks, "seed": 0, "beta": 1e-3, "kappa": 0.0,
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
              "cw_box": pick(quick="projected", standard="tanh", paper="tanh", profile=profile)}
    attacks = ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")

    def part(key: str) -> dict[str, Any]:
        network, attack = key.split(" / ")
        model = pretrained(networks[network])
        images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
        run, by = cw_and_ead(model, images, targets, profile, beta=config["beta"], kappa=config["kappa"],
                             true_labels=true_labels)[attack]
        return timed_summary(run, by, config["seed"])

    keys = [f"{network} / {attack}" for network in networks for attack in attacks]
    parts = run_parts("ead-table-11", profile, config, keys, part, "Table 11 attacks")
    return config, {"results": {network: {attack: parts[f"{network} / {attack}"] for attack in attacks}
                                for network in networks}}


TRANSFER_KAPPAS = {"quick": [0, 20, 40], "standard": [0, 10, 20, 30, 40, 50, 60], "paper": list(range(0, 61, 5))}


@experiment("ead-table-13")
def ead_table_13(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 13 on MNIST: examples made on the undefended network, judged on the T = 100 student.

    C&W (L2) and EAD (both rules) at each kappa, and I-FGM in three norms (no kappa) with the
    paper's eps search. A transfer succeeds when the student predicts the target.
    """
    from ead_tutorial.attacks import smallest_eps
    from ead_tutorial.data import predict, sample_correct, with_all_targets
    from ead_tutorial.devices import device
    from ead_tutorial.metrics import case_table, success_rate
    from ead_tutorial.models import pretrained
    from ead_tutorial.models.distill import weights_name
    from ead_tutorial.transfer import transfer_success

    config = {"source": "mnist", "judge": weights_name(100), "seed": 0, "beta": 1e-3,
              "kappas": TRANSFER_KAPPAS[check_profile(profile)],
              "n_images": pick(quick=2, standard=20, paper=1000, profile=profile), **ead_budget(profile),
              "cw_box": pick(quick="projected", standard="tanh", paper="tanh", profile=profile),
              "eps_resolution": pick(quick=QUICK_RESOLUTION, standard="paper", paper="paper", profile=profile)}
    source, judge = pretrained(config["source"]), pretrained(config["judge"])
    # The rows: images both networks classify correctly, so that a transfer is a change of the student's mind.
    x, y = sample_correct(source, 4 * config["n_images"] + 16, seed=config["seed"])
    agree = predict(judge, x) == y
    x, y = x[agree][: config["n_images"]], y[agree][: config["n_images"]]
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    true_labels = y.to(device())[index]

    parts: dict[str, tuple[Callable, str]] = {}
    for norm in ("l1", "l2", "linf"):
        parts[f"I-FGM-{NORM_NAMES[norm]}"] = (
            lambda norm=norm: smallest_eps(source, images, targets, attack="ifgm", norm=norm,
                                           grid=fast_gradient_grid(norm, profile), true_labels=true_labels),
            NORM_NAMES[norm])
    for kappa in config["kappas"]:
        for name, (run, by) in cw_and_ead(source, images, targets, profile, beta=config["beta"], kappa=float(kappa),
                                           true_labels=true_labels).items():
            parts[f"{name} / kappa={kappa:g}"] = (run, by)

    def part(key: str) -> dict[str, Any]:
        run, by = parts[key]
        started = time.perf_counter()
        result = run()
        transferred = transfer_success(result, judge)
        cases = case_table(transferred, result.norms, by=by, seed=config["seed"])
        return {"transfer": {case: {metric: float(cases.loc[case, metric]) for metric in cases.columns}
                             for case in cases.index},
                "transfer ASR, all rows": success_rate(transferred),
                "source ASR": result.success_rate, "seconds": time.perf_counter() - started}

    results = run_parts("ead-table-13", profile, config, list(parts), part, "Table 13 attacks")
    return config, {"results": results, "n_rows": len(targets)}


ADVERSARIAL_TRAININGS = {"None": [], "EAD (L1 rule)": ["EAD (L1 rule)"], "C&W (L2)": ["C&W (L2)"],
                         "EAD + C&W": ["EAD (L1 rule)", "C&W (L2)"], "EAD (EN rule)": ["EAD (EN rule)"]}


@experiment("ead-table-14")
def ead_table_14(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's Table 14 on MNIST: adversarial training with C&W and EAD examples, then every attack on every network.

    Training examples are crafted on the undefended network from ``n_train_images``
    training images toward all other classes, label-corrected, and added to the training
    set; each network, the null one included, is then trained with the same recipe. At
    the larger profiles every network is trained afresh on the full set for C&W's 50
    epochs. At the quick profile, so that the whole experiment runs in minutes on a CPU,
    each network instead continues from the shipped undefended one for one epoch on a
    subset of the training set. Crafted chunks and training checkpoints are kept (except
    at quick), so an interrupted run resumes.
    """
    from ead_tutorial.data import data_dir, load_mnist
    from ead_tutorial.devices import device
    from ead_tutorial.models import CWMnistNet, TrainConfig, accuracy, pretrained
    from ead_tutorial.models.adversarial import craft_training_examples, train_adversarial

    config = {"attacker": "mnist", "seed": 0, "beta": 1e-3,
              "n_train_images": pick(quick=5, standard=100, paper=1000, profile=profile),
              "train_subset": pick(quick=5000, standard=60000, paper=60000, profile=profile),
              "epochs": pick(quick=1, standard=50, paper=50, profile=profile),
              "start": pick(quick="the undefended network", standard="afresh", paper="afresh", profile=profile),
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
              "cw_box": pick(quick="projected", standard="tanh", paper="tanh", profile=profile),
              "trainings": ADVERSARIAL_TRAININGS}
    keep = profile != "quick"
    work = data_dir() / "work" / "ead-table-14" / profile if keep else None
    finished = Checkpoint("ead-table-14", profile, config, enabled=keep)
    x_train, y_train = load_mnist("train", verbose=False)
    x_test, y_test = load_mnist("test", verbose=False)
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(config["seed"]))
    subset = order[: config["train_subset"]]
    x_train, y_train = x_train[subset], y_train[subset]

    # 1. Label-corrected examples, crafted on the undefended network from the first n_train_images of the subset.
    attacker = pretrained(config["attacker"])
    crafted = {}
    for name in ("EAD (L1 rule)", "C&W (L2)", "EAD (EN rule)"):
        def attack(model, images, targets, true_labels, name=name):
            run, _ = cw_and_ead(model, images, targets, profile, beta=config["beta"], true_labels=true_labels)[name]
            return run()

        crafted[name] = craft_training_examples(
            attacker, x_train[: config["n_train_images"]], y_train[: config["n_train_images"]], attack,
            chunk=50, checkpoint_dir=work / "examples" / name if keep else None, progress=keep)

    # 2. One network per training set, trained afresh; 3. every attack on every network.
    recipe = TrainConfig(epochs=config["epochs"], seed=config["seed"])
    make_model = CWMnistNet if config["start"] == "afresh" else (lambda: pretrained(config["attacker"], device="cpu"))
    for training, sources in tqdm(config["trainings"].items(), desc="Table 14 networks", disable=not keep):
        if f"{training} / accuracy" not in finished:
            model, _ = train_adversarial(make_model, x_train, y_train, [crafted[source] for source in sources], recipe,
                                         checkpoint_dir=work / "networks" / training if keep else None,
                                         progress=keep)
            finished[f"{training} / accuracy"] = {"test accuracy": accuracy(model, x_test, y_test),
                                                  "added examples": sum(len(crafted[s][1]) for s in sources)}
        else:
            model = None
        for attack in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)"):
            key = f"{training} / {attack}"
            if key in finished:
                continue
            if model is None:  # resumed after training finished: reload the trained network from its checkpoint
                model, _ = train_adversarial(make_model, x_train, y_train, [crafted[s] for s in sources], recipe,
                                             checkpoint_dir=work / "networks" / training, progress=False)
            model = model.to(device()).eval()
            images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
            run, by = cw_and_ead(model, images, targets, profile, beta=config["beta"], true_labels=true_labels)[attack]
            finished[key] = timed_summary(run, by, config["seed"])
    data = {"networks": {training: finished[f"{training} / accuracy"] for training in config["trainings"]},
            "results": {training: {attack: finished[f"{training} / {attack}"]
                                   for attack in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")}
                        for training in config["trainings"]}}
    finished.clear()
    return config, data


@experiment("attack-benchmark")
def attack_benchmark(profile: str, progress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our C&W L2 and EAD against foolbox's, adv-lib's and torchattacks' on the same rows: time, passes, ASR, norms."""
    from ead_tutorial.benchmark import race
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained

    config = {"model": "mnist", "seed": 0, "beta": 1e-3,
              "n_images": pick(quick=1, standard=5, paper=100, profile=profile), **ead_budget(profile),
              "cw_box": pick(quick="projected", standard="tanh", paper="tanh", profile=profile),
              "threads": torch.get_num_threads() if device().type == "cpu" else None}
    model = pretrained("mnist")
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
    data = {"attacks": race(model, images, targets, config, progress=progress,
                            run_all=lambda names, measure: run_parts("attack-benchmark", profile, config, names,
                                                                     measure, "benchmark")),
            "hardware": describe_hardware()}
    return config, data


STOPPING_RULES = ("until-success", "loss", "off")


@experiment("ead-stopping-rules")
def ead_stopping_rules(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """EAD's abort-early rules against no early stop: on MNIST, and on a linear model against the exact minimum L1."""
    from ead_tutorial.attacks import ead
    from ead_tutorial.models import pretrained
    from ead_tutorial.models.linear import RandomLinear, minimum_l1

    config = {"model": "mnist", "seed": 11, "beta": 1e-3, "rules": list(STOPPING_RULES),
              "n_images": pick(quick=1, standard=2, paper=10, profile=profile), **ead_budget(profile),
              "linear": {"dim": 784, "classes": 10, "scale": 10.0, "seed": 0, "images": 4, "targets_per_image": 3}}
    mnist = pretrained("mnist")
    images, targets, _ = attack_rows(mnist, config["n_images"], config["seed"])
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}

    # The linear model: 4 random images (pixels in [0.2, 0.8]) toward 3 other classes each.
    linear = RandomLinear(**{key: config["linear"][key] for key in ("dim", "classes", "scale", "seed")})
    pixels = torch.rand(config["linear"]["images"], config["linear"]["dim"],
                        generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2
    predicted = linear(pixels).argmax(1)
    pairs = []
    for image, label in enumerate(predicted.tolist()):
        others = [target for target in range(config["linear"]["classes"]) if target != label]
        pairs += [(image, target) for target in others[:config["linear"]["targets_per_image"]]]
    linear_images = pixels[[i for i, _ in pairs]]
    linear_targets = torch.tensor([t for _, t in pairs])
    exact = torch.tensor([minimum_l1(linear, linear_images[row], int(linear_targets[row])) for row in range(len(pairs))],
                         dtype=torch.float64)

    def part(key: str) -> dict[str, Any]:
        network, rule, stop = key.split(" / ")
        on_mnist = network == "mnist"
        model, x, t = (mnist, images, targets) if on_mnist else (linear, linear_images.to(images.device),
                                                                   linear_targets.to(images.device))
        started = time.perf_counter()
        result = ead(model, x, t, beta=config["beta"], rule=rule, abort_early=False if stop == "off" else stop,
                     **budget)
        summary = {"ASR": result.success_rate, **result.mean_norms(), "seconds": time.perf_counter() - started,
                   "gradient passes per row": result.gradient_evaluations.double().mean().item(),
                   "forward passes per row": result.forward_passes.double().mean().item()}
        if not on_mnist:
            solved = result.success.cpu()
            summary["L1 / exact minimum"] = (result.norms["L1"].cpu().double()[solved] / exact[solved]).mean().item()
        return summary

    keys = [f"{network} / {rule} / {stop}" for network in ("mnist", "linear") for rule in ("l1", "en")
            for stop in STOPPING_RULES]
    runs = run_parts("ead-stopping-rules", profile, config, keys, part, "stopping rules")
    return config, {"runs": runs, "exact mean L1 (linear)": exact.mean().item(), "rows": {"mnist": len(targets),
                                                                                          "linear": len(pairs)}}


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
