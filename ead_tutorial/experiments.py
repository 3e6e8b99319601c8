"""The book's experiments by name: each takes a profile and returns ``(config, data)``.

Later chapters register their tables and figures here, so that
``python -m ead_tutorial.reproduce NAME --profile P`` can recompute any stored result.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ead_tutorial import __version__
from ead_tutorial.devices import describe_hardware
from ead_tutorial.metrics import row_record
from ead_tutorial.profiles import check_profile, pick
from ead_tutorial.report import part_key, split_part_key
from ead_tutorial.store import Checkpoint, StoredResult, code_digest, load_result, result_path, save_result

Configure = Callable[[str], dict[str, Any]]
Compute = Callable[[dict[str, Any], "Run"], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Run:
    """How one run of an experiment goes: its name, profile, and whether it keeps checkpoints.

    ``keep`` is on at the larger profiles, so that an interrupted run resumes; at the quick
    profile (tests, chapters) parts stay in memory unless asked otherwise.
    """

    name: str
    profile: str
    keep: bool
    # part -> how it was made, filled by run_parts (see Checkpoint.ledger)
    ledger: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict, compare=False)
    # checkpoints of other runs of this experiment whose finished parts this one takes (see Checkpoint's ``also``)
    resume_from: tuple[str, ...] = ()
    # when it started, to the microsecond: it names the run in the ledger, so two runs never share it
    started: str = dataclasses.field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S.%f UTC"))

    def work_dir(self, config: dict[str, Any]) -> Path:
        """A folder for bulky checkpoints (networks, crafted examples), one per configuration.

        It lies under ``$EAD_TUTORIAL_WORK`` if set (e.g. a folder that is backed up or
        committed, for a run that outlives its machine), else under the data cache's ``work/``.
        """
        from ead_tutorial.data import data_dir

        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        kept = os.environ.get("EAD_TUTORIAL_WORK")
        root = Path(kept).expanduser() if kept else data_dir() / "work"
        return root / self.name / f"{self.profile}-{digest}"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: ``configure(profile)`` gives its configuration, ``compute(config, run)`` its data.

    Calling it, ``experiment(profile, **overrides)``, returns ``(config, data)``; an override
    replaces one entry of the profile's configuration (e.g. ``n_images=2``) and must name one.
    """

    name: str
    configure: Configure
    compute: Compute

    def config(self, profile: str, **overrides: Any) -> dict[str, Any]:
        """The configuration this experiment runs at ``profile``, without running it (JSON types only)."""
        config = json.loads(json.dumps(self.configure(check_profile(profile))))
        unknown = sorted(set(overrides) - set(config))
        if unknown:
            raise ValueError(f"{self.name} has no setting {', '.join(map(repr, unknown))}; "
                             f"its settings are {', '.join(config)}")
        return config | json.loads(json.dumps(overrides))

    def __call__(self, profile: str, *, keep: bool | None = None, run: Run | None = None, **overrides: Any
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        config = self.config(profile, **overrides)
        run = run or Run(self.name, profile, keep=profile != "quick" if keep is None else keep)
        return config, self.compute(config, run)


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, configure: Configure) -> Callable[[Compute], Compute]:
    """Register ``compute(config, run) -> data`` under ``name``, with ``configure(profile) -> config``."""

    def register(compute: Compute) -> Compute:
        EXPERIMENTS[name] = Experiment(name, configure, compute)
        return compute

    return register


class Stopwatch:
    """The wall and CPU seconds since it was made, written into a ledger entry by :meth:`made_by`.

    The ledger keeps both: a run that was paused, or that shared its cores, took more wall
    time than its work needed, and its CPU seconds (of every thread of the process) say how
    much work that was.
    """

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> float:
        return time.perf_counter() - self.wall

    def made_by(self, run_started: str | None, **more: Any) -> dict[str, Any]:
        """How a part was made: its seconds, CPU seconds, hardware, code, and the run (its start) that made it.

        Seconds are kept to the millisecond: a tiny part (a test's) takes a few hundredths of a second,
        which rounding to tenths would record as no time at all.
        """
        return {"seconds": round(self.seconds(), 3), "cpu seconds": round(time.process_time() - self.cpu, 3),
                "hardware": describe_hardware(), "code": code_digest(), "run": run_started} | more


def attack_rows(model, n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_images`` test images ``model`` classifies correctly, each toward every other class, on the device.

    Returns images (B x 1 x 28 x 28), targets (int64 B) and the true label of each row (int64 B).
    """
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.devices import device

    x, y = sample_correct(model, n_images, seed=seed)
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    return images, targets, y.to(device())[index]


def transfer_rows(source, judge, n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_images`` test images both networks classify correctly, each toward every other class, on the device.

    Both must be right, so that a transfer is a change of the judge's mind. Returns images
    (B x 1 x 28 x 28), targets (int64 B) and the true label of each row (int64 B).
    """
    from ead_tutorial.data import predict, sample_correct, with_all_targets
    from ead_tutorial.devices import device

    x, y = sample_correct(source, 4 * n_images + 16, seed=seed)
    agree = predict(judge, x) == y
    x, y = x[agree][:n_images], y[agree][:n_images]
    images, targets, index = with_all_targets(x.to(device()), y.to(device()))
    return images, targets, y.to(device())[index]


@dataclasses.dataclass(frozen=True)
class Reuse:
    """A part that another stored experiment computed with the same settings on the same rows.

    ``path`` says where the part sits in that experiment's data (e.g. ``("attacks", "C&W (L2)")``);
    ``settings`` names the configuration entries both experiments must agree on. A part that
    experiment keeps spread over sections (the beta sweep keeps ``data["cells"][key]`` and
    ``data["rows"][key]``) is gathered by ``sections``, (entry, section) pairs, with ``path``
    the key alone.
    """

    experiment: str
    path: tuple[str, ...]
    settings: tuple[str, ...]
    requires: tuple[tuple[str, Any], ...] = ()  # (entry, value) the other configuration must hold
    sections: tuple[tuple[str, str], ...] = ()

    def find(self, profile: str, config: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        """The part and how it was made, if the stored result at ``profile`` has it with equal settings.

        While that experiment is still running, its checkpoint's finished parts count too.
        """
        try:
            stored = _load_once(self.experiment, profile)
        except FileNotFoundError:
            return self._find_in_checkpoint(profile, config)
        if not self._agrees(stored.config, config):
            return None
        part = self._gather(stored.data)
        if part is None:
            return None
        made = stored.parts.get(self.path[-1], {})
        seconds = made.get("seconds", part.get("seconds") if isinstance(part, dict) else None)
        return part, {"reused from": f"{self.experiment} ({stored.created})", "seconds": seconds,
                      "cpu seconds": made.get("cpu seconds"),
                      "hardware": made.get("hardware", stored.hardware),
                      "code": made.get("code", stored.code_digest),
                      "run": stored.created if made.get("run", "final") == "final" else made["run"]}

    def _find_in_checkpoint(self, profile: str, config: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        path = result_path(self.experiment, profile).with_suffix(".partial.json")
        try:
            checkpoint = json.loads(path.read_text())
            part, how = checkpoint["parts"][self.path[-1]], checkpoint.get("ledger", {}).get(self.path[-1], {})
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
            return None
        if not self._agrees(checkpoint["config"], config):
            return None
        return part, {"reused from": f"{self.experiment} (a checkpoint of its unfinished run)",
                      "seconds": how.get("seconds"), "cpu seconds": how.get("cpu seconds"),
                      "hardware": how.get("hardware"), "code": how.get("code"), "run": how.get("run")}

    def _agrees(self, other: dict[str, Any], config: dict[str, Any]) -> bool:
        return (all(key in config and other.get(key) == config[key] for key in self.settings)
                and all(other.get(key) == value for key, value in self.requires))

    def _gather(self, data: dict[str, Any]) -> Any:
        if self.sections:
            key, = self.path
            if any(key not in data.get(section, {}) for _, section in self.sections):
                return None
            return {entry: data[section][key] for entry, section in self.sections}
        part: Any = data
        for step in self.path:
            if not isinstance(part, dict) or step not in part:
                return None
            part = part[step]
        return part


def _load_once(name: str, profile: str) -> StoredResult:
    """:func:`~ead_tutorial.store.load_result`, read from disk once per version of the file.

    A run asks :meth:`Reuse.find` once per part, and a stored result can be large.
    Callers must not change what it returns.
    """
    path = result_path(name, profile)
    try:
        status = path.stat()
    except FileNotFoundError:
        return load_result(name, profile)  # raises, saying how to compute it
    # A result is saved by replacing its file, so a new version has a new inode as well as a new time.
    return _load_version(name, profile, str(path), (status.st_ino, status.st_mtime_ns, status.st_size))


@functools.lru_cache(maxsize=8)
def _load_version(name: str, profile: str, path: str, version: tuple[int, int, int]) -> StoredResult:
    return load_result(name, profile)


def run_parts(run: Run, config: dict[str, Any], keys: list[str], compute: Callable[..., Any],
              desc: str, reuse: dict[str, Reuse] | None = None, pass_finished: bool = False,
              holds: Callable[[dict[str, Any], str], bool] | None = None) -> dict[str, Any]:
    """``compute(key)`` for every key, in order, keeping each finished part in a :class:`Checkpoint`.

    With ``run.keep`` an interrupted run resumes after its last finished part (and says how
    many it found); otherwise parts stay in memory. A key in ``reuse`` takes the part that
    stored experiment holds, when its settings agree, instead of computing it (only with
    ``run.keep``, so that quick runs always compute). Every part's seconds, hardware and
    code go into ``run.ledger``. With ``pass_finished`` a part that needs earlier ones is
    computed as ``compute(key, finished)``, ``finished`` holding every part done so far
    (resumed ones included). ``holds(old_config, key)``, if given, keeps the parts of a
    checkpoint written with another configuration that this one leaves unchanged (see
    :class:`~ead_tutorial.store.Checkpoint`). Returns key -> part, and clears the checkpoint.
    """
    finished = Checkpoint(run.name, run.profile, config, enabled=run.keep, holds=holds, also=run.resume_from)
    remaining = [key for key in keys if key not in finished]
    if len(remaining) < len(keys):
        tqdm.write(f"{run.name}: resuming with {len(keys) - len(remaining)} of {len(keys)} parts already finished",
                   file=sys.stderr)
    with tqdm(total=len(keys), initial=len(keys) - len(remaining), desc=desc, unit="part",
              disable=not run.keep) as bar:
        for key in remaining:
            # Looked up only now, so that a part another run stores while this one works is found.
            found = reuse[key].find(run.profile, config) if run.keep and key in (reuse or {}) else None
            if found is not None:
                tqdm.write(f"{run.name}: {key!r} reused from the stored {reuse[key].experiment}", file=sys.stderr)
                finished.record(key, *found)
                bar.update()
                continue
            bar.set_postfix_str(key)  # the part in progress; tqdm's own estimate gives the time left
            stopwatch = Stopwatch()
            part = compute(key, finished) if pass_finished else compute(key)
            # A part made of pieces (summary_in_pieces) may hold some that earlier runs finished.
            earlier = sum(finished.ledger.get(piece, {}).get("seconds") or 0.0 for piece in pieces_of(finished, key)
                          if finished.ledger.get(piece, {}).get("run") != run.started)
            finished.record(key, part, stopwatch.made_by(run.started, **({"earlier seconds": round(earlier, 1)}
                                                                           if earlier else {})))
            bar.update()
    parts = {key: finished[key] for key in keys}
    for key in keys:  # a part from a checkpoint older than the ledger may still carry its own seconds
        how = finished.ledger.get(key) or {}
        if "seconds" not in how and isinstance(parts[key], dict) and "seconds" in parts[key]:
            how = how | {"seconds": parts[key]["seconds"]}
        run.ledger[key] = how
    finished.clear()
    return parts


def mnist_accuracy_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "split": "test", "n_images": pick(quick=2000, standard=10_000, paper=10_000,
                                                                  profile=profile)}


@experiment("mnist-accuracy", mnist_accuracy_config)
def mnist_accuracy(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Test accuracy and confusion matrix of the shipped MNIST model."""
    from ead_tutorial.data import load_mnist, predict
    from ead_tutorial.models import pretrained

    x, y = load_mnist(config["split"], verbose=False)
    x, y = x[:config["n_images"]], y[:config["n_images"]]
    predicted = predict(pretrained(config["model"]), x)
    confusion = torch.zeros(10, 10, dtype=torch.int64)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    return {"accuracy": (predicted == y).float().mean().item(), "confusion": confusion.tolist()}


def cw_table_iii_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 0,
            "n_images": pick(quick=1, standard=20, paper=1000, profile=profile),
            "search_steps": pick(quick=3, standard=9, paper=20, profile=profile),
            "steps": pick(quick=150, standard=1000, paper=10_000, profile=profile),
            "initial_c": pick(quick=1.0, standard=1e-3, paper=1e-3, profile=profile),
            "lr": 1e-2, "kappa": 0.0}


@experiment("cw-table-iii", cw_table_iii_config)
def cw_table_iii(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """C&W's Table III: every objective f1-f7 with every box encoding, best and average case."""
    from ead_tutorial.attacks import cw_l2
    from ead_tutorial.box import BOXES
    from ead_tutorial.models import pretrained
    from ead_tutorial.objectives import OBJECTIVES

    model = pretrained(config["model"])
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
    return {"cells": run_parts(run, config, cells, cell, "Table III cells")}


# Budgets under which C&W's L0 and L-infinity attacks finish in seconds on a CPU (see their chapters).
FAST_L0 = dict(steps=300, lr=0.05, initial_c=1.0, largest_c=100.0, box="projected")
FAST_LINF = dict(steps=300, lr=0.01, initial_c=0.1, largest_c=20.0, box="projected")


def cw_batch_speedup_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 3, "n_images": pick(quick=1, standard=10, paper=10, profile=profile),
            "cw_l0": FAST_L0, "cw_linf": FAST_LINF}


@experiment("cw-batch-speedup", cw_batch_speedup_config)
def cw_batch_speedup(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """C&W L0 and L-infinity on many rows at once against one row at a time."""
    from ead_tutorial.attacks import cw_l0, cw_linf
    from ead_tutorial.bench import batch_speedup
    from ead_tutorial.models import pretrained

    model = pretrained(config["model"])
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
    return {name: batch_speedup(attack, model, images, targets, **config[name])
            for name, attack in (("cw_l0", cw_l0), ("cw_linf", cw_linf))}


def case_summary(result, by: str, seed: int = 0) -> dict[str, dict[str, float]]:
    """Best, average and worst case of ``result``, and the mean over all rows, as plain floats.

    Returns case -> {ASR, L0, L1, L2, Linf}, with cases "best", "average", "worst" and "all rows".
    """
    return rows_summary(result.success, result.norms, by, seed)


def rows_summary(success: torch.Tensor, norms: dict[str, torch.Tensor], by: str, seed: int = 0
                 ) -> dict[str, dict[str, float]]:
    """:func:`case_summary` from each row's success (bool B) and norms (name -> float B)."""
    from ead_tutorial.metrics import case_table, mean_over, success_rate

    table = case_table(success, norms, by=by, seed=seed)
    cases = {case: {column: float(table.loc[case, column]) for column in table.columns} for case in table.index}
    cases["all rows"] = {"ASR": success_rate(success)} | {name: mean_over(value, success) for name, value in norms.items()}
    return cases


def timed_summary(run: Callable, by: str, seed: int = 0) -> dict[str, Any]:
    """Run an attack and summarise it for the results store.

    Returns its cases (:func:`case_summary`), gradients per row, seconds, and each row's
    success and norms (:func:`~ead_tutorial.metrics.row_record`), from which the book
    draws its bootstrap intervals.
    """
    started = time.perf_counter()
    result = run()
    return {"cases": case_summary(result, by, seed), "gradients per row": result.gradient_evaluations.double().mean().item(),
            "seconds": time.perf_counter() - started, "rows": row_record(result.success, result.norms)}


# Rows per piece of an attack that is checkpointed piece by piece: five images of nine targets.
PIECE_ROWS = 45


def piece_key(key: str, rows: slice) -> str:
    """The checkpoint key of the piece of part ``key`` on ``rows``."""
    return f"{key} [rows {rows.start}:{rows.stop}]"


def pieces_of(finished: Checkpoint, key: str) -> list[str]:
    """The keys of the finished pieces of part ``key`` (none for a part made in one go)."""
    return [name for name in finished.parts if name.startswith(f"{key} [rows ")]


def summary_in_pieces(finished: Checkpoint, key: str, attack: Callable[[slice], Any], n_rows: int, by: str,
                      seed: int = 0, rows_per_piece: int = PIECE_ROWS, *, run_started: str) -> dict[str, Any]:
    """:func:`timed_summary` of an attack on ``n_rows`` rows, run and checkpointed piece by piece.

    For the attacks whose one part takes hours (C&W L0 and L-infinity at C&W's own budget):
    ``attack(rows)`` runs on the rows of a slice, and each finished piece goes into
    ``finished`` as the part :func:`piece_key`, so an interrupted run loses at most one
    piece. Every attack of the package treats its rows independently, so the pieces
    together are the attack on all rows (up to the rounding of batched arithmetic). The
    summary is made from the pieces' stored rows; its seconds are the pieces' sum. Each
    piece's ledger entry names ``run_started``, the start of the run that made it (``run.started``):
    :func:`run_parts` counts a piece whose run differs from its own as an earlier run's work.
    """
    from ead_tutorial.metrics import rows_from_record

    pieces = []
    for start in range(0, n_rows, rows_per_piece):
        rows = slice(start, min(start + rows_per_piece, n_rows))
        name = piece_key(key, rows)
        if name not in finished:
            stopwatch = Stopwatch()
            result = attack(rows)
            finished.record(name, {"rows": row_record(result.success, result.norms),
                                   "gradients": result.gradient_evaluations.tolist(), "seconds": stopwatch.seconds()},
                            stopwatch.made_by(run_started))
        pieces.append(finished[name])
    record = {column: [value for piece in pieces for value in piece["rows"][column]] for column in pieces[0]["rows"]}
    success, norms = rows_from_record(record)
    gradients = torch.tensor([value for piece in pieces for value in piece["gradients"]], dtype=torch.float64)
    return {"cases": rows_summary(success, norms, by, seed), "gradients per row": gradients.mean().item(),
            "seconds": sum(piece["seconds"] for piece in pieces), "rows": record}


def ead_budget(profile: str) -> dict[str, Any]:
    """The EAD paper's budget (9 rounds of 1,000 iterations, c from 1e-3) at the larger profiles."""
    return {"search_steps": pick(quick=4, standard=9, paper=9, profile=profile),
            "steps": pick(quick=300, standard=1000, paper=1000, profile=profile),
            "initial_c": pick(quick=1.0, standard=1e-3, paper=1e-3, profile=profile)}


def cw_box(profile: str) -> str:
    """C&W's box at ``profile``: the change of variables, except at quick, where it projects.

    With only 300 steps per round the change of variables cannot move pixels at 0 or 1
    (see the box-constraints chapter).
    """
    return pick(quick="projected", standard="tanh", paper="tanh", profile=profile)


def cw_and_ead(model, images: torch.Tensor, targets: torch.Tensor, config: dict[str, Any], *,
               kappa: float | None = None, true_labels: torch.Tensor | None = None,
               one_ead_run: bool = False) -> dict[str, tuple[Callable, str]]:
    """The EAD paper's three main attacks on the same rows: name -> (run, norm that ranks targets).

    C&W (L2), EAD (EN rule) and EAD (L1 rule), with the budget of ``config`` (its
    ``search_steps``, ``steps``, ``initial_c``, ``beta`` and ``cw_box``; see
    :func:`ead_budget` and :func:`cw_box`) and confidence ``kappa`` (default: ``config["kappa"]``).
    With ``one_ead_run``, both EAD rules come from one run (see :func:`~ead_tutorial.attacks.ead`),
    made by whichever of the two is called first: it then carries the run's time, and the
    other only its own (next to nothing). Without it, each rule is timed on a run of its own.
    """
    from ead_tutorial.attacks import cw_l2, ead

    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    kappa = config.get("kappa", 0.0) if kappa is None else kappa
    rows = dict(model=model, images=images, targets=targets, kappa=kappa, true_labels=true_labels, **budget)
    if one_ead_run:
        both_rules = functools.cache(lambda: ead(**rows, beta=config["beta"], rule=("en", "l1")))
        en, l1 = (lambda: both_rules()["en"]), (lambda: both_rules()["l1"])
    else:
        en, l1 = (lambda: ead(**rows, beta=config["beta"], rule="en")), (lambda: ead(**rows, beta=config["beta"], rule="l1"))
    return {"C&W (L2)": (lambda: cw_l2(**rows, box=config["cw_box"]), "L2"), "EAD (EN rule)": (en, "L1"),
            "EAD (L1 rule)": (l1, "L1")}


def ead_table_2_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 0, "beta": 1e-3, "kappa": 0.0,
            "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
            "cw_box": cw_box(profile)}


# The settings that decide Table 2's three attacks on their rows (the rest of a configuration
# can differ): another experiment that agrees on them reuses the stored parts instead of recomputing.
TABLE_2_SETTINGS = ("model", "seed", "kappa", "n_images", "search_steps", "steps", "initial_c")
# Table 2's attack settings on another network: what a defence table shares with Table 2 besides the model.
TABLE_2_ATTACK_SETTINGS = tuple(setting for setting in TABLE_2_SETTINGS if setting != "model") + ("beta", "cw_box")


@experiment("ead-table-2", ead_table_2_config)
def ead_table_2(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 2 on MNIST: C&W L2, EAD (EN rule) and EAD (L1 rule), best, average and worst case."""
    from ead_tutorial.models import pretrained

    model = pretrained(config["model"])
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
    attacks = cw_and_ead(model, images, targets, config)
    ranked_by = {name: by for name, (_, by) in attacks.items()}
    summaries = run_parts(run, config, list(attacks),
                          lambda name: timed_summary(attacks[name][0], ranked_by[name], config["seed"]),
                          "Table 2 attacks")
    return {"attacks": summaries, "ranked_by": ranked_by}


BETAS = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1)


def ead_beta_sweep_config(profile: str) -> dict[str, Any]:
    config = {"model": "mnist", "seed": 0, "kappa": 0.0,
              "betas": list(pick(quick=(1e-5, 1e-4, 1e-3, 1e-2, 5e-2, 1e-1), standard=BETAS, paper=BETAS,
                                 profile=profile)),
              "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile)}
    if profile == "quick":  # twelve attacks: a shorter budget than the other quick experiments
        config.update(search_steps=3, steps=200)
    return config


@experiment("ead-beta-sweep", ead_beta_sweep_config)
def ead_beta_sweep(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 6 on MNIST: both decision rules over the L1 weight beta, best, average and worst case."""
    from ead_tutorial.attacks import ead
    from ead_tutorial.models import pretrained

    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    model = pretrained(config["model"])
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])

    def cell(key: str) -> dict[str, Any]:
        rule, beta = key.split("/")
        result = ead(model, images, targets, beta=float(beta), rule=rule, kappa=config["kappa"], **budget)
        return {"cases": case_summary(result, "L1", config["seed"]), "rows": row_record(result.success, result.norms)}

    # Both rules at each beta in turn, so that a run cut short still compares the rules.
    keys = [f"{rule}/{beta:g}" for beta in config["betas"] for rule in ("en", "l1")]
    parts = run_parts(run, config, keys, cell, "beta sweep")
    return {"cells": {key: part["cases"] for key, part in parts.items()},
            "rows": {key: part["rows"] for key, part in parts.items()}}


TABLE_1_METHODS = ("COV (Adam)", "EAD (EN rule)", "EAD (EN rule), exact proximal step")
TABLE_1_BETAS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)


def ead_table_1_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 0, "kappa": 0.0, "methods": list(TABLE_1_METHODS),
            "betas": list(pick(quick=(0.0, 1e-4, 1e-2), standard=TABLE_1_BETAS, paper=TABLE_1_BETAS, profile=profile)),
            "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile)}


def table_1_reuse(config: dict[str, Any]) -> dict[str, Reuse]:
    """Table 2's EAD (EN rule) is Table 1's cell at beta = 1e-3; the beta sweep's EN cells are its other EAD cells."""
    reuse = {part_key("EAD (EN rule)", "beta", beta): Reuse("ead-beta-sweep", (f"en/{beta:g}",), TABLE_2_SETTINGS,
                                                            sections=(("cases", "cells"), ("rows", "rows")))
             for beta in config["betas"] if beta > 0}
    reuse[part_key("EAD (EN rule)", "beta", 1e-3)] = Reuse("ead-table-2", ("attacks", "EAD (EN rule)"),
                                                           TABLE_2_SETTINGS, requires=(("beta", 1e-3),))
    return reuse


@experiment("ead-table-1", ead_table_1_config)
def ead_table_1(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 1 on MNIST: COV (Adam under the change of variables) against EAD, over beta, every case.

    The rows of ``ead-table-2`` (correctly classified test images toward every other class),
    with the paper's budget. COV is :func:`~ead_tutorial.attacks.cov`, whose targets are
    ranked by L2 as C&W's are (at beta = 0 it is C&W's L2 attack); EAD is Algorithm 1 with
    the EN rule, ranked by L1 as in Table 2. The third method, EAD with the exact proximal
    step (threshold alpha_k beta), is ours: the ista_fista chapter shows why it matters.
    """
    from ead_tutorial.attacks import cov, ead
    from ead_tutorial.models import pretrained

    model = pretrained(config["model"])
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c", "kappa")}
    methods = {"COV (Adam)": (lambda beta: cov(model, images, targets, beta=beta, **budget), "L2"),
               "EAD (EN rule)": (lambda beta: ead(model, images, targets, beta=beta, rule="en", **budget), "L1"),
               "EAD (EN rule), exact proximal step": (
                   lambda beta: ead(model, images, targets, beta=beta, rule="en", exact_prox=True, **budget), "L1")}

    def part(key: str) -> dict[str, Any]:
        method, beta = split_part_key(key, "beta")
        attack, by = methods[method]
        return timed_summary(lambda: attack(beta), by, config["seed"])

    keys = [part_key(method, "beta", beta) for beta in config["betas"] for method in config["methods"]]
    return {"cells": run_parts(run, config, keys, part, "Table 1 cells", reuse=table_1_reuse(config)),
            "ranked_by": {method: by for method, (_, by) in methods.items()}}


# The fast gradient baselines' eps grids: the paper's (Table 4) at the larger profiles; at the
# quick profile a coarser resolution, which can only raise the eps found, by under one step.
QUICK_RESOLUTION = {"linf": 5e-3, "l2": 5e-2, "l1": 2.0}
NORM_NAMES = {"l1": "L1", "l2": "L2", "linf": "Linf"}


def eps_resolution(profile: str) -> dict[str, float] | str:
    """The eps resolution of the fast gradient grids at ``profile``: QUICK_RESOLUTION, or "paper"."""
    return pick(quick=QUICK_RESOLUTION, standard="paper", paper="paper", profile=profile)


def fast_gradient_grid(norm: str, resolution: dict[str, float] | str) -> torch.Tensor:
    """The eps grid for FGM and I-FGM in ``norm``, at ``resolution`` ("paper", or norm -> step) (float64, increasing)."""
    from ead_tutorial.attacks import eps_grid
    from ead_tutorial.attacks.fast_gradient import GRID_SIZE, PAPER_RESOLUTION

    step = None if resolution == "paper" else resolution[norm]
    return eps_grid(norm, step, largest=PAPER_RESOLUTION[norm] * GRID_SIZE)


def every_attack(model, images: torch.Tensor, targets: torch.Tensor, config: dict[str, Any], *,
                 true_labels: torch.Tensor | None = None) -> dict[str, tuple[Callable, str]]:
    """Every attack of the book on the same rows: name -> (run, norm that ranks targets).

    ``run()`` returns the attack's :class:`~ead_tutorial.attacks.AttackResult`; C&W L0's and
    L-infinity's ``run(rows)`` also runs on a slice of the rows (:func:`summary_in_pieces`). The
    optimisation attacks get ``config``'s budget (:func:`cw_and_ead`); the fast gradient
    ones the eps grids of ``config["eps_resolution"]`` (:func:`fast_gradient_grid`); C&W L0
    and L-infinity the budgets ``config["cw_l0"]`` and ``config["cw_linf"]`` (empty: C&W's own).
    """
    from ead_tutorial.attacks import cw_l0, cw_linf, smallest_eps

    rows = dict(model=model, images=images, targets=targets)
    attacks: dict[str, tuple[Callable, str]] = {}
    for method, label in (("fgm", "FGM"), ("ifgm", "I-FGM")):
        for norm in ("l1", "l2", "linf"):
            attacks[f"{label}-{NORM_NAMES[norm]}"] = (
                lambda method=method, norm=norm: smallest_eps(
                    **rows, attack=method, norm=norm, grid=fast_gradient_grid(norm, config["eps_resolution"]),
                    true_labels=true_labels),
                NORM_NAMES[norm])
    attacks.update(cw_and_ead(model, images, targets, config, true_labels=true_labels))
    for name, attack, norm, budget in (("C&W (L0)", cw_l0, "L0", "cw_l0"), ("C&W (Linf)", cw_linf, "Linf", "cw_linf")):
        # These two take hours at C&W's budget, so they also run on a slice of rows (see summary_in_pieces).
        attacks[name] = (lambda part=slice(None), attack=attack, budget=budget: attack(
            model, images[part], targets[part], true_labels=None if true_labels is None else true_labels[part],
            **config[budget]), norm)
    return attacks


# The attacks of Table 8 that are checkpointed piece by piece (see summary_in_pieces).
PIECEWISE = ("C&W (L0)", "C&W (Linf)")


def ead_table_8_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 0, "beta": 1e-3, "kappa": 0.0,
            "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
            "cw_box": cw_box(profile), "eps_resolution": eps_resolution(profile),
            "cw_l0": pick(quick=FAST_L0, standard={}, paper={}, profile=profile),
            "cw_linf": pick(quick=FAST_LINF, standard={}, paper={}, profile=profile)}


def table_8_reuse(config: dict[str, Any]) -> dict[str, Reuse]:
    """Table 2's three attacks are three of Table 8's, on the same rows."""
    return {name: Reuse("ead-table-2", ("attacks", name), TABLE_2_SETTINGS + ("beta", "cw_box"))
            for name in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")}


@experiment("ead-table-8", ead_table_8_config)
def ead_table_8(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 8 on MNIST, extended: FGM, I-FGM, C&W L2, EAD (both rules), C&W L0 and L-infinity."""
    from ead_tutorial.models import pretrained

    model = pretrained(config["model"])
    images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
    attacks = every_attack(model, images, targets, config, true_labels=true_labels)

    def part(name: str, finished: Checkpoint) -> dict[str, Any]:
        attack, by = attacks[name]
        if name in PIECEWISE:
            return summary_in_pieces(finished, name, attack, len(images), by, config["seed"], run_started=run.started)
        return timed_summary(attack, by, config["seed"])

    summaries = run_parts(run, config, list(attacks), part, "Table 8 attacks", reuse=table_8_reuse(config),
                          pass_finished=True)
    return {"attacks": summaries, "ranked_by": {name: ranked_by for name, (_, ranked_by) in attacks.items()}}


# The temperatures of the EAD paper's Table 11, and the three the quick profile attacks.
PAPER_TEMPERATURES = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
QUICK_TEMPERATURES = (1, 10, 100)


def ead_table_11_config(profile: str) -> dict[str, Any]:
    """Every temperature of the paper at the larger profiles, three at quick, and each network's sha256.

    The sha256 (None for a student not shipped yet) makes a result computed on other weights,
    such as a retrained student, count as stale.
    """
    from ead_tutorial.models import WEIGHTS
    from ead_tutorial.models.distill import weights_name

    temperatures = pick(quick=QUICK_TEMPERATURES, standard=PAPER_TEMPERATURES, paper=PAPER_TEMPERATURES,
                        profile=profile)
    networks = {"undefended": "mnist"} | {f"T={t:g}": weights_name(t) for t in temperatures}
    return {"networks": networks, "seed": 0, "beta": 1e-3, "kappa": 0.0,
            "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
            "cw_box": cw_box(profile),
            "sha256": {network: WEIGHTS[name].sha256 if name in WEIGHTS else None for network, name in networks.items()}}


def table_11_reuse(config: dict[str, Any]) -> dict[str, Reuse]:
    """The undefended network's rows are Table 2's, attacked with the same settings."""
    if "undefended" not in config["networks"]:
        return {}
    return {f"undefended / {attack}": Reuse("ead-table-2", ("attacks", attack), TABLE_2_ATTACK_SETTINGS,
                                            requires=(("model", config["networks"]["undefended"]),))
            for attack in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")}


def table_11_part_holds(config: dict[str, Any]) -> Callable[[dict[str, Any], str], bool]:
    """Whether a part (``"network / attack"``) of a Table 11 run with another configuration holds under ``config``.

    It does when every shared setting is equal and its network is the same file with the same
    sha256 in both: a retrained student makes only its own rows stale, and a run on some of
    the networks counts toward the run on all of them.
    """
    def shared(settings: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in settings.items() if key not in ("networks", "sha256")}

    def holds(old: dict[str, Any], key: str) -> bool:
        network = key.split(" / ")[0]
        return (shared(old) == shared(config) and network in config["networks"]
                and old.get("networks", {}).get(network) == config["networks"][network]
                and old.get("sha256", {}).get(network) == config["sha256"].get(network) is not None)

    return holds


@experiment("ead-table-11", ead_table_11_config)
def ead_table_11(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 11 on MNIST: C&W and EAD against the undefended network and the distilled students.

    Each network is attacked on its own correctly classified test images (drawn with the
    same seed), toward every wrong class, with the paper's budget; both EAD rules come from
    one run per network. Every network must be shipped before the run starts, so that no
    part is computed on weights that change later.
    """
    from ead_tutorial.models import WEIGHTS, pretrained

    networks = config["networks"]
    missing = [network for network, name in networks.items() if name not in WEIGHTS]
    if missing:
        raise RuntimeError(
            f"ead-table-11 attacks {', '.join(networks)}, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not shipped yet; train each with "
            "`python -m ead_tutorial.models.distill --temperature T` and register it in "
            "ead_tutorial.models.pretrained.WEIGHTS")
    # The sha256 of each network names the weights its rows were computed on (a setting given by hand must agree).
    wrong = [network for network, name in networks.items() if config["sha256"].get(network) != WEIGHTS[name].sha256]
    if wrong:
        raise ValueError(f"ead-table-11's sha256 setting does not match the shipped weights of {', '.join(wrong)}; "
                         "give each network the sha256 of ead_tutorial.models.pretrained.WEIGHTS, "
                         "or leave the setting out")
    attacks = ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")

    @functools.lru_cache(maxsize=1)  # the parts of one network come one after another
    def attacks_on(network: str) -> dict[str, tuple[Callable, str]]:
        model = pretrained(networks[network])
        images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
        return cw_and_ead(model, images, targets, config, true_labels=true_labels, one_ead_run=True)

    def part(key: str) -> dict[str, Any]:
        network, attack = key.split(" / ")
        attack_run, by = attacks_on(network)[attack]
        return timed_summary(attack_run, by, config["seed"])

    keys = [f"{network} / {attack}" for network in networks for attack in attacks]
    parts = run_parts(run, config, keys, part, "Table 11 attacks", reuse=table_11_reuse(config),
                      holds=table_11_part_holds(config))
    return {"results": {network: {attack: parts[f"{network} / {attack}"] for attack in attacks}
                        for network in networks}}


TRANSFER_KAPPAS = {"quick": [0, 20, 40], "standard": [0, 10, 20, 30, 40, 50, 60], "paper": list(range(0, 61, 5))}


def ead_table_13_config(profile: str) -> dict[str, Any]:
    from ead_tutorial.models.distill import weights_name

    return {"source": "mnist", "judge": weights_name(100), "seed": 0, "beta": 1e-3,
            "kappas": TRANSFER_KAPPAS[profile],
            "n_images": pick(quick=2, standard=20, paper=1000, profile=profile), **ead_budget(profile),
            "cw_box": cw_box(profile), "eps_resolution": eps_resolution(profile)}


@experiment("ead-table-13", ead_table_13_config)
def ead_table_13(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 13 on MNIST: examples made on the undefended network, judged on the T = 100 student.

    C&W (L2) and EAD (both rules) at each kappa, and I-FGM in three norms (no kappa) with the
    paper's eps search. A transfer succeeds when the student predicts the target.
    """
    from ead_tutorial.attacks import smallest_eps
    from ead_tutorial.metrics import case_table, success_rate
    from ead_tutorial.models import pretrained
    from ead_tutorial.transfer import transfer_success

    source, judge = pretrained(config["source"]), pretrained(config["judge"])
    images, targets, true_labels = transfer_rows(source, judge, config["n_images"], config["seed"])

    parts: dict[str, tuple[Callable, str]] = {}
    for norm in ("l1", "l2", "linf"):
        parts[f"I-FGM-{NORM_NAMES[norm]}"] = (
            lambda norm=norm: smallest_eps(source, images, targets, attack="ifgm", norm=norm,
                                           grid=fast_gradient_grid(norm, config["eps_resolution"]),
                                           true_labels=true_labels),
            NORM_NAMES[norm])
    for kappa in config["kappas"]:
        for name, (attack_run, by) in cw_and_ead(source, images, targets, config, kappa=float(kappa),
                                                  true_labels=true_labels).items():
            parts[part_key(name, "kappa", kappa)] = (attack_run, by)

    def part(key: str) -> dict[str, Any]:
        attack_run, by = parts[key]
        started = time.perf_counter()
        result = attack_run()
        transferred = transfer_success(result, judge)
        cases = case_table(transferred, result.norms, by=by, seed=config["seed"])
        return {"transfer": {case: {metric: float(cases.loc[case, metric]) for metric in cases.columns}
                             for case in cases.index},
                "transfer ASR, all rows": success_rate(transferred),
                "source ASR": result.success_rate, "seconds": time.perf_counter() - started,
                "rows": row_record(transferred, result.norms)}

    results = run_parts(run, config, list(parts), part, "Table 13 attacks")
    return {"results": results, "n_rows": len(targets)}


ADVERSARIAL_TRAININGS = {"None": [], "EAD (L1 rule)": ["EAD (L1 rule)"], "C&W (L2)": ["C&W (L2)"],
                         "EAD + C&W": ["EAD (L1 rule)", "C&W (L2)"], "EAD (EN rule)": ["EAD (EN rule)"]}


def ead_table_14_config(profile: str) -> dict[str, Any]:
    return {"attacker": "mnist", "seed": 0, "beta": 1e-3,
            "n_train_images": pick(quick=5, standard=100, paper=1000, profile=profile),
            "train_subset": pick(quick=5000, standard=60000, paper=60000, profile=profile),
            "epochs": pick(quick=1, standard=50, paper=50, profile=profile),
            "start": pick(quick="the undefended network", standard="afresh", paper="afresh", profile=profile),
            # The paper's null model is its undefended network (its Table 14 rows for it are Table 2's).
            "null_model": pick(quick="trained like the others", standard="the shipped network",
                               paper="the shipped network", profile=profile),
            "kappa": 0.0, "n_images": pick(quick=1, standard=20, paper=1000, profile=profile), **ead_budget(profile),
            "cw_box": cw_box(profile), "trainings": ADVERSARIAL_TRAININGS}


def table_14_reuse(config: dict[str, Any]) -> dict[str, Reuse]:
    """The shipped null model's rows are Table 2's, attacked with the same settings."""
    if config["null_model"] != "the shipped network":
        return {}
    return {f"None / {attack}": Reuse("ead-table-2", ("attacks", attack), TABLE_2_ATTACK_SETTINGS,
                                      requires=(("model", config["attacker"]),))
            for attack in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")}


# Which parts each experiment takes from another one's stored result: experiment -> config -> part key -> Reuse.
REUSES: dict[str, Callable[[dict[str, Any]], dict[str, Reuse]]] = {
    "ead-table-1": table_1_reuse, "ead-table-8": table_8_reuse, "ead-table-11": table_11_reuse,
    "ead-table-14": table_14_reuse}


@experiment("ead-table-14", ead_table_14_config)
def ead_table_14(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's Table 14 on MNIST: adversarial training with C&W and EAD examples, then every attack on every network.

    Training examples are crafted on the undefended network from ``n_train_images``
    training images toward all other classes, label-corrected, and added to the training
    set; each network, the null one included, is then trained with the same recipe. At
    the larger profiles every network is trained afresh on the full set for C&W's 50
    epochs. At the quick profile, so that the whole experiment runs in minutes on a CPU,
    each network instead continues from the shipped undefended one for one epoch on a
    subset of the training set. At the larger profiles the null model is the shipped
    undefended network itself, as in the paper (whose null rows are its Table 2), and its
    rows are taken from the stored ``ead-table-2`` when the settings agree. Crafted chunks
    and training checkpoints are kept (except at quick), so an interrupted run resumes.
    """
    from ead_tutorial.data import load_mnist
    from ead_tutorial.devices import device
    from ead_tutorial.models import CWMnistNet, TrainConfig, accuracy, pretrained
    from ead_tutorial.models.adversarial import craft_training_examples, train_adversarial

    keep = run.keep
    work = run.work_dir(config) if keep else None
    finished = Checkpoint(run.name, run.profile, config, enabled=keep, also=run.resume_from)
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
            attack_run, _ = cw_and_ead(model, images, targets, config, kappa=0.0, true_labels=true_labels)[name]
            return attack_run()

        crafted[name] = craft_training_examples(
            attacker, x_train[: config["n_train_images"]], y_train[: config["n_train_images"]], attack,
            chunk=50, checkpoint_dir=work / "examples" / name if keep else None, progress=keep)

    # 2. One network per training set, trained afresh; 3. every attack on every network.
    recipe = TrainConfig(epochs=config["epochs"], seed=config["seed"])
    make_model = CWMnistNet if config["start"] == "afresh" else (lambda: pretrained(config["attacker"], device="cpu"))
    reuse = table_14_reuse(config) if keep else {}

    def network(training: str, sources: list[str]) -> torch.nn.Module:
        """The network of one training: the shipped one for a shipped null model, else trained (or resumed)."""
        if not sources and config["null_model"] == "the shipped network":
            return pretrained(config["attacker"])
        model, _ = train_adversarial(make_model, x_train, y_train, [crafted[source] for source in sources], recipe,
                                     checkpoint_dir=work / "networks" / training if keep else None, progress=keep)
        return model

    for training, sources in tqdm(config["trainings"].items(), desc="Table 14 networks", disable=not keep):
        model = None
        if f"{training} / accuracy" not in finished:
            stopwatch = Stopwatch()
            model = network(training, sources)
            finished.record(f"{training} / accuracy", {"test accuracy": accuracy(model, x_test, y_test),
                                                       "added examples": sum(len(crafted[s][1]) for s in sources)},
                            stopwatch.made_by(run.started))
        attacks = None  # made for the first attack this network still needs; both EAD rules share one run
        for attack in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)"):
            key = f"{training} / {attack}"
            if key in finished:
                continue
            found = reuse[key].find(run.profile, config) if key in reuse else None
            if found is not None:
                tqdm.write(f"{run.name}: {key!r} reused from the stored {reuse[key].experiment}", file=sys.stderr)
                finished.record(key, *found)
                continue
            stopwatch = Stopwatch()
            if attacks is None:
                if model is None:  # resumed after training finished: the trained network reloads from its checkpoint
                    model = network(training, sources)
                model = model.to(device()).eval()
                images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
                attacks = cw_and_ead(model, images, targets, config, kappa=config["kappa"], true_labels=true_labels,
                                     one_ead_run=True)
            attack_run, by = attacks[attack]
            finished.record(key, timed_summary(attack_run, by, config["seed"]), stopwatch.made_by(run.started))
    run.ledger.update(finished.ledger)
    data = {"networks": {training: finished[f"{training} / accuracy"] for training in config["trainings"]},
            "results": {training: {attack: finished[f"{training} / {attack}"]
                                   for attack in ("C&W (L2)", "EAD (EN rule)", "EAD (L1 rule)")}
                        for training in config["trainings"]}}
    finished.clear()
    return data


def attack_benchmark_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 0, "beta": 1e-3,
            "n_images": pick(quick=1, standard=5, paper=100, profile=profile), **ead_budget(profile),
            "cw_box": cw_box(profile)}


@experiment("attack-benchmark", attack_benchmark_config)
def attack_benchmark(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Our C&W L2 and EAD against foolbox's, adv-lib's and torchattacks' on the same rows: time, passes, ASR, norms."""
    from ead_tutorial.benchmark import race
    from ead_tutorial.devices import device
    from ead_tutorial.models import pretrained

    model = pretrained(config["model"])
    images, targets, _ = attack_rows(model, config["n_images"], config["seed"])
    return {"attacks": race(model, images, targets, config, progress=run.keep,
                            run_all=lambda names, measure: run_parts(run, config, names, measure, "benchmark")),
            "hardware": describe_hardware(),
            "threads": torch.get_num_threads() if device().type == "cpu" else None}


def cw_hard_targets_config(profile: str) -> dict[str, Any]:
    return {"source": "ead-table-2", "source_profile": "standard", "beta": 1e-3, "kappa": 0.0, **ead_budget(profile),
            "cw_box": cw_box(profile), "max_rows": pick(quick=1, standard=None, paper=None, profile=profile),
            "long_steps": pick(quick=600, standard=10_000, paper=10_000, profile=profile)}


@experiment("cw-hard-targets", cw_hard_targets_config)
def cw_hard_targets(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Why C&W (L2) fails on some rows of the stored Table 2 where the paper's succeeds: each suspect changed alone.

    The rows are those on which C&W failed in the stored ``source`` result (at ``source_profile``;
    the first ``max_rows`` of them). On those rows: C&W as in that table (``cw_box``, the budget),
    then with the box projected instead, with the search over c started at 1e-2 (the paper's
    text) instead of 1e-3, and with ``long_steps`` iterations per round (C&W's own default is
    10,000; the EAD paper gives 1,000); and EAD (EN rule) with the table's budget.
    """
    from ead_tutorial.models import pretrained

    source = load_result(config["source"], config["source_profile"])
    model = pretrained(source.config["model"])
    return {"source created": source.created,
            **cw_suspects(model, source.data["attacks"]["C&W (L2)"], source.config, config, run,
                          f"the stored {config['source']}")}


def cw_suspects(model: torch.nn.Module, cw_part: dict[str, Any], source_config: dict[str, Any],
                config: dict[str, Any], run: Run, where: str) -> dict[str, Any]:
    """C&W again on the rows a stored C&W part failed on, each suspect for the failure changed alone.

    ``cw_part`` is the stored part (its ``rows``' success per row); the rows are rebuilt with
    :func:`attack_rows` from ``source_config``'s ``n_images`` and ``seed``, as the source made them.
    The variants are those of :func:`cw_hard_targets`; the returned record holds the rows, their
    labels and targets, the target's logit margin at x0 and each variant's success, L2, gradients
    and seconds.
    """
    from ead_tutorial.attacks import cw_l2, ead

    failed = [row for row, ok in enumerate(cw_part["rows"]["success"]) if not ok]
    failed = failed[: config["max_rows"]] if config["max_rows"] is not None else failed
    if not failed:
        raise ValueError(f"C&W (L2) failed on no row of {where}: nothing to investigate")
    images, targets, true_labels = attack_rows(model, source_config["n_images"], source_config["seed"])
    pick_rows = torch.tensor(failed, device=images.device)
    rows = dict(model=model, images=images[pick_rows], targets=targets[pick_rows], true_labels=true_labels[pick_rows],
                kappa=config["kappa"])
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    variants = {
        "C&W, as in the table": lambda: cw_l2(**rows, **budget, box=config["cw_box"]),
        "C&W, box projected": lambda: cw_l2(**rows, **budget, box="projected"),
        "C&W, c from 1e-2": lambda: cw_l2(**rows, **budget | {"initial_c": 1e-2}, box=config["cw_box"]),
        f"C&W, {config['long_steps']:,} steps per round": lambda: cw_l2(
            **rows, **budget | {"steps": config["long_steps"]}, box=config["cw_box"]),
        "EAD (EN rule), as in the table": lambda: ead(**rows, **budget, beta=config["beta"], rule="en"),
    }

    def part(name: str) -> dict[str, Any]:
        started = time.perf_counter()
        result = variants[name]()
        return {"success": result.success.tolist(), "L2": [round(v, 5) for v in result.norms["L2"].tolist()],
                "gradients per row": result.gradient_evaluations.double().mean().item(),
                "seconds": time.perf_counter() - started}

    with torch.no_grad():
        logits = model(rows["images"])
        target_logit = logits.gather(1, rows["targets"][:, None]).squeeze(1)
        margin = target_logit - logits.scatter(1, rows["targets"][:, None], float("-inf")).amax(1)
    return {"rows": failed, "true labels": rows["true_labels"].tolist(),
            "targets": rows["targets"].tolist(), "target margin at x0": [round(v, 3) for v in margin.tolist()],
            "variants": run_parts(run, config, list(variants), part, "C&W on its hard targets")}


def distilled_cw_misses_config(profile: str) -> dict[str, Any]:
    return cw_hard_targets_config(profile) | {"source": "ead-table-11"}


@experiment("distilled-cw-misses", distilled_cw_misses_config)
def distilled_cw_misses(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Why C&W (L2) misses rows of the stored Table 11: the suspects of ``cw-hard-targets`` on the worst student.

    The student is the one on which C&W failed on the most rows in the stored ``source``
    result (the first such in the table's order, at ``source_profile``); its failed rows (the
    first ``max_rows``) are attacked again as in :func:`cw_hard_targets`.
    """
    from ead_tutorial.models import pretrained

    source = load_result(config["source"], config["source_profile"])
    results = source.data["results"]
    students = [network for network in results if network.startswith("T=")]
    if not students:
        raise ValueError(f"the stored {config['source']} attacks no distilled student")
    misses = {network: len(results[network]["C&W (L2)"]["rows"]["success"])
              - sum(results[network]["C&W (L2)"]["rows"]["success"]) for network in students}
    worst = max(students, key=misses.get)
    model = pretrained(source.config["networks"][worst])
    return {"source created": source.created, "network": worst, "misses per network": misses,
            **cw_suspects(model, results[worst]["C&W (L2)"], source.config, config, run,
                          f"the stored {config['source']} on {worst}")}


def transfer_cw_misses_config(profile: str) -> dict[str, Any]:
    return {"source": "ead-table-13", "source_profile": "standard", "kappas": [40, 50, 60], **ead_budget(profile),
            "max_rows": pick(quick=1, standard=None, paper=None, profile=profile)}


@experiment("transfer-cw-misses", transfer_cw_misses_config)
def transfer_cw_misses(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """The rows of the stored Table 13 that C&W (L2) missed on the source, attacked again with the box projected.

    At each of ``kappas`` that the stored ``source`` result (at ``source_profile``) holds, the
    rows on which C&W failed on the undefended network (the first ``max_rows`` of them) are
    attacked by C&W with the same kappa and budget, but with the box projected after each
    step instead of the change of variables, and its examples are judged on the same
    student. EAD's outcome on those rows is the stored one, read from the source by row.
    """
    from ead_tutorial.attacks import cw_l2
    from ead_tutorial.models import pretrained
    from ead_tutorial.transfer import solved_on_source, transfer_success

    source = load_result(config["source"], config["source_profile"])
    model, judge = pretrained(source.config["source"]), pretrained(source.config["judge"])
    images, targets, true_labels = transfer_rows(model, judge, source.config["n_images"], source.config["seed"])
    budget = {key: config[key] for key in ("search_steps", "steps", "initial_c")}
    keys = [part_key("C&W, box projected", "kappa", kappa) for kappa in config["kappas"]
            if part_key("C&W (L2)", "kappa", kappa) in source.data["results"]]
    if not keys:
        raise ValueError(f"the stored {config['source']} has C&W at none of kappa {config['kappas']}")

    def part(key: str) -> dict[str, Any]:
        kappa = split_part_key(key, "kappa")[1]
        stored = source.data["results"][part_key("C&W (L2)", "kappa", kappa)]["rows"]
        missed = [int(row) for row in (~solved_on_source(stored)).nonzero()[0]][: config["max_rows"]]
        if not missed:
            return {"rows": [], "source success": [], "transfer": [], "L2": [], "seconds": 0.0}
        pick_rows = torch.tensor(missed, device=images.device)
        started = time.perf_counter()
        result = cw_l2(model, images[pick_rows], targets[pick_rows], kappa=kappa, true_labels=true_labels[pick_rows],
                       **budget, box="projected")
        return {"rows": missed, "source success": result.success.tolist(),
                "transfer": transfer_success(result, judge).tolist(),
                "L2": [round(value, 5) for value in result.norms["L2"].tolist()],
                "seconds": time.perf_counter() - started}

    return {"source created": source.created, "n_rows": len(targets),
            "results": run_parts(run, config, keys, part, "C&W on the rows it missed")}


STOPPING_RULES = ("until-success", "loss", "off")


def ead_stopping_rules_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist", "seed": 11, "beta": 1e-3, "rules": list(STOPPING_RULES),
            "n_images": pick(quick=1, standard=2, paper=10, profile=profile), **ead_budget(profile),
            "linear": {"dim": 784, "classes": 10, "scale": 10.0, "seed": 0, "images": 4, "targets_per_image": 3}}


@experiment("ead-stopping-rules", ead_stopping_rules_config)
def ead_stopping_rules(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """EAD's abort-early rules against no early stop: on MNIST, and on a linear model against the exact minimum L1."""
    from ead_tutorial.attacks import ead
    from ead_tutorial.models import pretrained
    from ead_tutorial.models.linear import RandomLinear, minimum_l1

    mnist = pretrained(config["model"])
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
            for stop in config["rules"]]
    runs = run_parts(run, config, keys, part, "stopping rules")
    return {"runs": runs, "exact mean L1 (linear)": exact.mean().item(), "rows": {"mnist": len(targets),
                                                                                  "linear": len(pairs)}}


def run_experiment(name: str, profile: str, *, save: bool = True, keep: bool | None = None,
                   resume_from: tuple[str, ...] = (), **overrides: Any) -> StoredResult:
    """Run experiment ``name`` at ``profile``, timing it, and store the result unless ``save=False``.

    ``overrides`` replace entries of the profile's configuration (see :class:`Experiment`);
    ``keep`` turns checkpoints on or off (default: on except at the quick profile);
    ``resume_from`` names checkpoints of other runs whose finished parts this one takes.
    """
    if name not in EXPERIMENTS:
        raise KeyError(f"no experiment called {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    started = time.perf_counter()
    digest = code_digest()  # of the code as it starts (parts resumed from a checkpoint may be older)
    profile = check_profile(profile)
    run = Run(name, profile, keep=profile != "quick" if keep is None else keep, resume_from=tuple(map(str, resume_from)))
    if run.resume_from and not run.keep:
        raise ValueError("resume_from needs checkpoints on: drop keep=False (at the quick profile, pass keep=True)")
    config, data = EXPERIMENTS[name](profile, run=run, **overrides)
    # Parts finished by earlier runs (or reused from another result), and the pieces earlier runs finished of
    # this run's parts, add the seconds they took.
    ledger = {key: how | {"run": "final"} if how.get("run") == run.started and "reused from" not in how else how
              for key, how in run.ledger.items()}
    earlier = sum((how.get("seconds") or 0.0) if how.get("run") != "final" else how.get("earlier seconds", 0.0)
                  for how in ledger.values())
    result = StoredResult(name=name, profile=profile, data=data, config=config, package_version=__version__,
                          torch_version=torch.__version__, hardware=describe_hardware(),
                          wall_time_s=round(time.perf_counter() - started + earlier, 3), code_digest=digest,
                          parts=ledger)
    if save:
        save_result(result)
    return result


# The exact-minimum experiment lives beside its solver; importing it registers it.
from ead_tutorial.exact import experiment as _exact_experiment  # noqa: E402,F401
