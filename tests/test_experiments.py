"""The experiments' machinery: configurations known without running, results that survive
JSON, runs that resume after being killed, and stored results that cannot go stale."""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ead_tutorial import experiments, reproduce, store
from ead_tutorial.experiments import EXPERIMENTS
from ead_tutorial.profiles import PROFILES

# The smallest settings under which each experiment still runs every one of its parts.
TINY_EAD = {"n_images": 1, "search_steps": 1, "steps": 10}
TINY_CW_L0 = {"steps": 10, "lr": 0.05, "initial_c": 1.0, "largest_c": 2.0, "box": "projected"}
TINY_CW_LINF = {"steps": 10, "lr": 0.01, "initial_c": 0.1, "largest_c": 0.2, "box": "projected"}
COARSE_EPS = {"linf": 0.05, "l2": 0.5, "l1": 20.0}
TINY = {
    "mnist-accuracy": {"n_images": 200},
    "cw-table-iii": TINY_EAD,
    "cw-batch-speedup": {"n_images": 1, "cw_l0": TINY_CW_L0, "cw_linf": TINY_CW_LINF},
    "ead-table-1": TINY_EAD,
    "ead-table-2": TINY_EAD,
    "ead-beta-sweep": TINY_EAD | {"betas": [1e-3, 1e-2]},
    "ead-table-8": TINY_EAD | {"eps_resolution": COARSE_EPS, "cw_l0": TINY_CW_L0, "cw_linf": TINY_CW_LINF},
    "ead-table-11": TINY_EAD | {"networks": {"undefended": "mnist"}},
    "ead-table-13": TINY_EAD | {"kappas": [0], "eps_resolution": COARSE_EPS},
    "ead-table-14": TINY_EAD | {"n_train_images": 1, "train_subset": 300,
                                "trainings": {"None": [], "EAD (L1 rule)": ["EAD (L1 rule)"]}},
    "attack-benchmark": TINY_EAD,
    "cw-hard-targets": {"search_steps": 1, "steps": 10, "long_steps": 20},
    "transfer-cw-misses": {"search_steps": 1, "steps": 10, "kappas": [50]},
    "distilled-cw-misses": {"search_steps": 1, "steps": 10, "long_steps": 20},
    "exact-minimum": TINY_EAD | {"targets_per_image": 1, "eps_resolution": COARSE_EPS, "cw_linf": TINY_CW_LINF,
                                 "time_limit": 10.0, "peer_steps": 10},
    "ead-stopping-rules": TINY_EAD | {"linear": {"dim": 784, "classes": 10, "scale": 10.0, "seed": 0, "images": 1,
                                                 "targets_per_image": 1}},
}


def test_every_experiment_has_tiny_settings_for_these_tests():
    assert sorted(TINY) == sorted(EXPERIMENTS), "give each new experiment its tiny settings here"
    for name, overrides in TINY.items():
        EXPERIMENTS[name].config("quick", **overrides)  # every override names a real setting


def test_a_configuration_is_known_without_running_and_overrides_must_name_a_setting():
    config = EXPERIMENTS["ead-table-2"].config("standard")
    assert config["n_images"] == 20 and config["steps"] == 1000 and config["initial_c"] == 1e-3
    assert EXPERIMENTS["ead-table-2"].config("standard", n_images=3)["n_images"] == 3
    with pytest.raises(ValueError, match="no setting 'n_image'.*n_images"):
        EXPERIMENTS["ead-table-2"].config("standard", n_image=3)


def _same(stored, computed, where="data"):
    """Equal in value and in JSON type, NaN equal to NaN; dict keys must already be strings."""
    if isinstance(computed, dict):
        assert isinstance(stored, dict), where
        for key in computed:
            assert isinstance(key, str), f"{where}: key {key!r} is a {type(key).__name__}, which JSON turns into a string"
        assert list(stored) == list(computed), where
        for key in computed:
            _same(stored[key], computed[key], f"{where}[{key!r}]")
    elif isinstance(computed, (list, tuple)):
        assert isinstance(computed, list), f"{where}: a tuple, which JSON turns into a list"
        assert isinstance(stored, list) and len(stored) == len(computed), where
        for index, (a, b) in enumerate(zip(stored, computed)):
            _same(a, b, f"{where}[{index}]")
    elif isinstance(computed, float) and math.isnan(computed):
        assert isinstance(stored, float) and math.isnan(stored), f"{where}: NaN came back as {stored!r}"
    else:
        assert type(stored) is type(computed) and stored == computed, f"{where}: {computed!r} came back as {stored!r}"


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_experiment_survives_a_round_trip_through_json(name, tmp_path):
    if name == "attack-benchmark":
        pytest.importorskip("foolbox")
    result = experiments.run_experiment(name, "quick", save=False, **TINY[name])
    store.save_result(result, tmp_path)
    loaded = store.load_result(name, "quick", tmp_path)
    _same(loaded.data, result.data)
    _same(loaded.config, result.config, "config")
    assert loaded.code_digest == store.code_digest() and loaded.code_digest in loaded.provenance()


def test_the_digest_follows_the_code(tmp_path):
    package = tmp_path / "package"
    shutil.copytree(Path(experiments.__file__).parent, package, ignore=shutil.ignore_patterns("results", "*.pt", "__pycache__"))
    before = store.code_digest(package=package)
    assert before == store.code_digest()
    (package / "attacks" / "ead_attack.py").write_text((package / "attacks" / "ead_attack.py").read_text() + "\n# x\n")
    assert store.code_digest(package=package) != before


def _stored_files():
    return sorted(path for path in store.PACKAGE_RESULTS.glob("*/*.json"))


@pytest.mark.parametrize("path", _stored_files(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_stored_result_or_checkpoint_is_stale(path):
    """A stored result (or a run's checkpoint) holds the configuration the experiment would run now."""
    record = json.loads(path.read_text())
    profile = path.name.split(".")[0]
    assert profile in PROFILES
    now = EXPERIMENTS[path.parent.name].config(profile)
    assert record["config"] == now, (
        f"{path.parent.name} at {profile} was computed with another configuration than the one it runs now; "
        f"recompute it with `python -m ead_tutorial.reproduce {path.parent.name} --profile {profile}`")


# ---- runs killed and resumed, in a subprocess, as a user would run them -------------------------------------

def _command(name, overrides, keep=True):
    command = [sys.executable, "-m", "ead_tutorial.reproduce", name, "--profile", "quick", "--keep" if keep else "--no-keep"]
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    return command


def _environment(results):
    return os.environ | {"EAD_TUTORIAL_RESULTS": str(results), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(name, overrides, results, keep=True):
    finished = subprocess.run(_command(name, overrides, keep), env=_environment(results), capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def _kill_once(name, overrides, results, ready):
    """Start the run, SIGKILL it as soon as ``ready(parts)`` holds for its checkpoint; return the parts then."""
    partial = results / name / "quick.partial.json"
    process = subprocess.Popen(_command(name, overrides), env=_environment(results), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if partial.exists():
                parts = json.loads(partial.read_text())["parts"]
                if ready(parts):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return parts
            assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()[-3000:]}"
            time.sleep(0.01)
        raise AssertionError("no checkpoint appeared in time")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _without_seconds(value):
    if isinstance(value, dict):
        return {key: _without_seconds(item) for key, item in value.items() if key != "seconds"}
    return value


def _resumes_after_sigkill(name, overrides, tmp_path, ready, after_kill=None):
    reference = tmp_path / "uninterrupted"
    _run(name, overrides, reference, keep=False)  # without checkpoints, so that it leaves nothing to resume from
    expected = store.load_result(name, "quick", reference)

    results = tmp_path / "killed"
    before_kill = _kill_once(name, overrides, results, ready)
    if after_kill is not None:
        before_kill = after_kill(results / name / "quick.partial.json")
    assert not (results / name / "quick.json").exists()
    resumed = _run(name, overrides, results)
    assert f"resuming with {len(before_kill)} of" in resumed.stderr or name == "ead-table-14"
    if name == "ead-table-13":  # a progress bar over the parts, naming the part in progress, with the time left
        assert "Table 13 attacks" in resumed.stderr and "kappa=0]" in resumed.stderr and "<" in resumed.stderr
    final = store.load_result(name, "quick", results)
    assert final.config == expected.config
    assert _without_seconds(final.data) == _without_seconds(expected.data)
    assert not (results / name / "quick.partial.json").exists()
    return before_kill, final


def test_a_killed_run_with_parts_resumes_without_recomputing_them(tmp_path):
    """Table 13's kind: independent parts, each checkpointed as it finishes."""
    name, overrides = "ead-table-13", TINY["ead-table-13"]
    before_kill, final = _resumes_after_sigkill(name, overrides, tmp_path, ready=lambda parts: len(parts) >= 1)
    total = len(final.data["results"])
    assert 1 <= len(before_kill) < total
    for key, part in before_kill.items():
        # Kept, not recomputed: the part's own wall time is the one measured before the kill.
        assert final.data["results"][key]["seconds"] == part["seconds"]
    # The stored result says which parts came from the killed run, and counts their time.
    assert sorted(final.parts) == sorted(final.data["results"])
    earlier = {key for key, how in final.parts.items() if how["run"] != "final"}
    assert earlier == set(before_kill)
    assert all(how["seconds"] > 0 and how["hardware"] and how["code"] == final.code_digest
               for how in final.parts.values())
    assert final.wall_time_s >= sum(how["seconds"] for how in final.parts.values()) - 0.5
    assert f"{len(earlier)} of {total} parts resumed from earlier runs" in final.provenance()


def test_a_part_another_stored_result_holds_with_the_same_settings_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    computed = []

    def compute(config, run):
        def part(key):
            computed.append(key)
            return {"value": config["n"] * len(key)}
        reuse = {"shared": experiments.Reuse("first-kind", ("parts", "shared"), ("n",), requires=(("kind", 1),))}
        return {"parts": experiments.run_parts(run, config, ["shared", "own"], part, "parts", reuse=reuse)}

    for name, kind in (("first-kind", 1), ("second-kind", 2)):
        monkeypatch.setitem(EXPERIMENTS, name, experiments.Experiment(name, lambda profile, kind=kind: {"n": 3, "kind": kind},
                                                                       compute))
    first = experiments.run_experiment("first-kind", "standard")
    assert computed == ["shared", "own"] and "resumed" not in first.provenance()
    computed.clear()
    second = experiments.run_experiment("second-kind", "standard")
    assert computed == ["own"], "the shared part was recomputed"
    assert second.data["parts"]["shared"] == first.data["parts"]["shared"]
    assert second.parts["shared"]["reused from"].startswith("first-kind") and second.parts["own"]["run"] == "final"
    assert "1 of 2 parts reused from first-kind" in second.provenance() and "resumed" not in second.provenance()
    # A quick run, or one whose settings differ, computes the part itself.
    computed.clear()
    experiments.run_experiment("second-kind", "quick")
    assert computed == ["shared", "own"]
    computed.clear()
    experiments.run_experiment("second-kind", "standard", n=4)
    assert computed == ["shared", "own"]


def test_a_part_is_reused_from_a_result_kept_in_sections_and_from_an_unfinished_run(tmp_path, monkeypatch):
    """The beta sweep's kind: parts kept as data["cells"][key] and data["rows"][key], and found while it runs."""
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    computed, killed = [], {"b"}

    def sweep(config, run):
        def part(key):
            computed.append(key)
            if key in killed:
                raise KeyboardInterrupt
            return {"cases": {"value": config["n"]}, "rows": [len(key)]}
        parts = experiments.run_parts(run, config, ["a", "b"], part, "sweep")
        return {"cells": {key: part["cases"] for key, part in parts.items()},
                "rows": {key: part["rows"] for key, part in parts.items()}}

    def table(config, run):
        reuse = {"a": experiments.Reuse("sweep-kind", ("a",), ("n",), sections=(("cases", "cells"), ("rows", "rows")))}
        return {"cells": experiments.run_parts(run, config, ["a", "own"], lambda key: computed.append(key) or {},
                                               "table", reuse=reuse)}

    monkeypatch.setitem(EXPERIMENTS, "sweep-kind", experiments.Experiment("sweep-kind", lambda profile: {"n": 3}, sweep))
    monkeypatch.setitem(EXPERIMENTS, "table-kind", experiments.Experiment("table-kind", lambda profile: {"n": 3}, table))
    # The sweep is killed after its first part: the table takes that part from its checkpoint.
    with pytest.raises(KeyboardInterrupt):
        experiments.run_experiment("sweep-kind", "standard")
    computed.clear()
    from_checkpoint = experiments.run_experiment("table-kind", "standard")
    assert computed == ["own"], "the sweep's finished part was recomputed"
    assert from_checkpoint.data["cells"]["a"] == {"cases": {"value": 3}, "rows": [1]}
    assert "unfinished run" in from_checkpoint.parts["a"]["reused from"] and from_checkpoint.parts["a"]["seconds"] is not None
    # Once the sweep is stored, its sections are gathered into the same part.
    killed.clear()
    experiments.run_experiment("sweep-kind", "standard")
    for stored in tmp_path.glob("table-kind/*.json"):
        stored.unlink()
    computed.clear()
    from_store = experiments.run_experiment("table-kind", "standard")
    assert computed == ["own"] and from_store.data["cells"]["a"] == from_checkpoint.data["cells"]["a"]
    assert from_store.parts["a"]["reused from"].startswith("sweep-kind (")


def test_a_killed_training_run_resumes_and_reloads_a_trained_network(tmp_path):
    """Table 14's kind: killed after a network is trained but before it is attacked, the rerun reloads it."""
    name, overrides = "ead-table-14", TINY["ead-table-14"]
    work = EXPERIMENTS[name].config("quick", **overrides)
    run = experiments.Run(name, "quick", keep=True)
    networks = run.work_dir(work) / "networks"
    shutil.rmtree(run.work_dir(work), ignore_errors=True)
    trained_at = {}

    def trained(parts):
        return "None / accuracy" in parts

    def as_if_killed_after_training(partial):
        """Keep only the trained networks' records: the checkpoint a kill just after training leaves.

        (Where the kill falls is a race; this makes the tested state the same on every run.)"""
        stored = json.loads(partial.read_text())
        stored["parts"] = {key: part for key, part in stored["parts"].items() if key.endswith(" / accuracy")}
        partial.write_text(json.dumps(stored))
        trained_at.update({path: path.stat().st_mtime_ns for path in (networks / "None").rglob("*") if path.is_file()})
        return stored["parts"]

    try:
        before_kill, final = _resumes_after_sigkill(name, overrides, tmp_path, ready=trained,
                                                    after_kill=as_if_killed_after_training)
        assert "None / accuracy" in before_kill and not any(" / accuracy" not in key for key in before_kill)
        assert final.data["networks"]["None"] == before_kill["None / accuracy"]
        # The network was reloaded from its checkpoint, not trained again.
        assert trained_at and all(path.stat().st_mtime_ns == stamp for path, stamp in trained_at.items())
    finally:
        shutil.rmtree(run.work_dir(work), ignore_errors=True)


@pytest.mark.parametrize("profile", ["standard", "paper"])
@pytest.mark.parametrize("name", sorted(experiments.REUSES))
def test_every_declared_reuse_agrees_with_its_source_at_the_larger_profiles(name, profile):
    """A change to one experiment's budget that its reuser does not share would silently stop the reuse: catch it."""
    config = EXPERIMENTS[name].config(profile)
    reuses = experiments.REUSES[name](config)
    assert reuses, f"{name} declares no reuse at the {profile} profile"
    for key, reuse in reuses.items():
        source = EXPERIMENTS[reuse.experiment].config(profile)
        assert reuse._agrees(source, config), (name, key, reuse.experiment,
                                               {s: (source.get(s), config.get(s)) for s in reuse.settings})


def test_bulky_checkpoints_go_where_ead_tutorial_work_says_else_to_the_data_cache(tmp_path, monkeypatch):
    run, config = experiments.Run("ead-table-14", "standard", keep=True), {"seed": 0}
    monkeypatch.setenv("EAD_TUTORIAL_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("EAD_TUTORIAL_WORK", raising=False)
    assert run.work_dir(config).parent == tmp_path / "data" / "work" / "ead-table-14"
    monkeypatch.setenv("EAD_TUTORIAL_WORK", str(tmp_path / "kept"))
    assert run.work_dir(config).parent == tmp_path / "kept" / "ead-table-14"
    assert run.work_dir(config) != run.work_dir({"seed": 1})  # one folder per configuration


def test_table_14s_null_model_at_the_larger_profiles_is_the_shipped_network_with_table_2s_rows(tmp_path, monkeypatch):
    """As in the paper, whose null rows in Table 14 are its Table 2: nothing is trained or attacked for it."""
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    overrides = TINY["ead-table-14"] | {"epochs": 1}
    table_2 = experiments.run_experiment("ead-table-2", "standard", **TINY_EAD)
    config = EXPERIMENTS["ead-table-14"].config("standard", **overrides)
    assert config["null_model"] == "the shipped network"
    work = experiments.Run("ead-table-14", "standard", keep=True).work_dir(config)
    try:
        table_14 = experiments.run_experiment("ead-table-14", "standard", **overrides)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = json.dumps(table_14.data["results"]["None"], sort_keys=True) == json.dumps(table_2.data["attacks"], sort_keys=True)
    assert same  # (compared as JSON, in which NaN equals NaN)
    assert all(table_14.parts[f"None / {attack}"]["reused from"].startswith("ead-table-2")
               for attack in table_2.data["attacks"])
    assert "reused from ead-table-2" in table_14.provenance()
    assert not (work / "networks" / "None").exists()
    shipped = EXPERIMENTS["mnist-accuracy"].config("standard")
    assert table_14.data["networks"]["None"]["added examples"] == 0
    assert table_14.data["networks"]["None"]["test accuracy"] > 0.99  # the shipped network's (99.39%)
    assert shipped["model"] == config["attacker"]


def _rows_attack(n_rows: int, calls: list, fail_at: int | None = None):
    """A stand-in attack on ``n_rows`` rows: row i succeeds unless i % 4 == 3, with L1 = i + 1."""
    from ead_tutorial.attacks import AttackResult

    index = torch.arange(n_rows, dtype=torch.float32)
    success = index.remainder(4) != 3
    norms = {"L0": index % 7, "L1": index + 1, "L2": (index + 1).sqrt(), "Linf": 1 / (index + 1)}

    def attack(rows=slice(None)):
        calls.append((rows.start, rows.stop))
        if fail_at is not None and rows.start == fail_at:
            raise KeyboardInterrupt
        return AttackResult(adversarial=torch.zeros(len(index[rows]), 1), success=success[rows],
                            norms={name: value[rows] for name, value in norms.items()}, c=torch.ones(len(index[rows])),
                            gradient_evaluations=(index[rows] * 10).long(), labels=torch.zeros(len(index[rows]), dtype=torch.long))
    return attack


def test_an_attack_run_in_pieces_summarises_as_one_run_on_every_row():
    from ead_tutorial.store import Checkpoint

    calls = []
    attack = _rows_attack(27, calls)
    whole = experiments.timed_summary(attack, "L1", seed=3)
    finished = Checkpoint("demo", "quick", {}, enabled=False)
    pieces = experiments.summary_in_pieces(finished, "C&W (Linf)", attack, 27, "L1", seed=3, rows_per_piece=9,
                                           run_started="a run")
    assert calls[1:] == [(0, 9), (9, 18), (18, 27)]
    assert pieces["rows"] == whole["rows"] and pieces["gradients per row"] == whole["gradients per row"]
    for case, values in whole["cases"].items():
        assert pieces["cases"][case] == pytest.approx(values, rel=1e-6, nan_ok=True), case
    assert "C&W (Linf) [rows 9:18]" in finished and finished.ledger["C&W (Linf) [rows 9:18]"]["hardware"]


def test_an_attack_run_in_pieces_resumes_after_its_last_finished_piece(tmp_path):
    from ead_tutorial.store import Checkpoint

    calls = []
    with pytest.raises(KeyboardInterrupt):  # killed in its third piece
        experiments.summary_in_pieces(Checkpoint("demo", "standard", {"n": 1}, tmp_path), "attack",
                                      _rows_attack(27, calls, fail_at=18), 27, "L1", rows_per_piece=9,
                                      run_started="the first run")
    calls.clear()
    again = experiments.summary_in_pieces(Checkpoint("demo", "standard", {"n": 1}, tmp_path), "attack",
                                          _rows_attack(27, calls), 27, "L1", rows_per_piece=9,
                                          run_started="the second run")
    assert calls == [(18, 27)], "finished pieces were recomputed"
    assert again["rows"] == experiments.timed_summary(_rows_attack(27, []), "L1")["rows"]


def test_a_part_continued_from_pieces_an_earlier_run_finished_counts_their_seconds(tmp_path, monkeypatch):
    """A piecewise part resumed mid-way: the stored wall time adds the earlier run's pieces, and says so."""
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    calls, fail = [], {"at": 18}

    def compute(config, run):
        def part(key, finished):
            attack = _rows_attack(27, calls, fail_at=fail["at"] if key == "pieces" else None)
            return experiments.summary_in_pieces(finished, key, attack, 27, "L1", rows_per_piece=9,
                                                 run_started=run.started)
        return {"parts": experiments.run_parts(run, config, ["whole", "pieces"], part, "parts", pass_finished=True)}

    monkeypatch.setitem(EXPERIMENTS, "in-pieces", experiments.Experiment("in-pieces", lambda profile: {"n": 1}, compute))
    with pytest.raises(KeyboardInterrupt):  # killed in the third piece of the second part
        experiments.run_experiment("in-pieces", "standard")
    path = tmp_path / "in-pieces" / "standard.partial.json"
    checkpoint = json.loads(path.read_text())
    earlier_pieces = experiments.pieces_of(store.Checkpoint("in-pieces", "standard", {"n": 1}), "pieces")
    assert sorted(earlier_pieces) == ["pieces [rows 0:9]", "pieces [rows 9:18]"]
    for piece in earlier_pieces:  # the stand-in takes no time: give the earlier pieces a known one
        checkpoint["ledger"][piece]["seconds"] = 100.0
    path.write_text(json.dumps(checkpoint))
    fail["at"], time_before = None, checkpoint["ledger"]["whole"]["seconds"]
    calls.clear()
    final = experiments.run_experiment("in-pieces", "standard")
    assert calls[-1:] == [(18, 27)], "finished pieces were recomputed"
    assert final.parts["pieces"]["run"] == "final" and final.parts["pieces"]["earlier seconds"] == 200.0
    assert "earlier seconds" not in final.parts["whole"] and final.parts["whole"]["run"] != "final"
    assert final.wall_time_s >= 200.0 + time_before
    assert all(how["cpu seconds"] >= 0.0 for how in final.parts.values())
    provenance = final.provenance()
    assert "1 of 2 parts continued from pieces that earlier runs finished" in provenance
    assert "1 of 2 parts resumed from earlier runs" in provenance and "CPU core-hours in its parts" in provenance


def test_table_11_attacks_the_papers_temperatures_and_refuses_to_start_before_every_student_ships(monkeypatch):
    from ead_tutorial.models import WEIGHTS

    for profile, temperatures in (("standard", experiments.PAPER_TEMPERATURES), ("quick", experiments.QUICK_TEMPERATURES)):
        config = EXPERIMENTS["ead-table-11"].config(profile)
        assert list(config["networks"]) == ["undefended"] + [f"T={t:g}" for t in temperatures]
        assert config["sha256"] == {network: WEIGHTS[name].sha256 if name in WEIGHTS else None
                                    for network, name in config["networks"].items()}
    # A retrained student changes the configuration, so a result computed on the old one is stale.
    monkeypatch.setitem(WEIGHTS, "mnist-distilled-T10", dataclasses.replace(WEIGHTS["mnist-distilled-T10"], sha256="0" * 64))
    assert EXPERIMENTS["ead-table-11"].config("quick")["sha256"]["T=10"] == "0" * 64
    monkeypatch.delitem(WEIGHTS, "mnist-distilled-T10")
    with pytest.raises(RuntimeError, match="T=10 is not shipped yet"):
        EXPERIMENTS["ead-table-11"]("quick", keep=False)


def test_a_retrained_student_makes_only_its_own_table_11_rows_stale(tmp_path):
    from ead_tutorial.store import Checkpoint

    config = EXPERIMENTS["ead-table-11"].config("standard")
    # A checkpoint of a run on all networks but T=10, one of whose students (T=20) was retrained since.
    earlier = json.loads(json.dumps(config))
    del earlier["networks"]["T=10"], earlier["sha256"]["T=10"]
    earlier["sha256"]["T=20"] = "0" * 64
    first = Checkpoint("ead-table-11", "standard", earlier, tmp_path)
    for key in ("T=1 / C&W (L2)", "T=1 / EAD (EN rule)", "T=20 / C&W (L2)"):
        first[key] = {"success_rate": 1.0}
    with pytest.warns(UserWarning, match="keeping the 2 of its 3 parts"):
        resumed = Checkpoint("ead-table-11", "standard", config, tmp_path,
                             holds=experiments.table_11_part_holds(config))
    assert list(resumed.parts) == ["T=1 / C&W (L2)", "T=1 / EAD (EN rule)"]
    assert set(resumed.ledger) <= set(resumed.parts)
    # Any other setting changed, nothing holds; without a rule, nothing holds either.
    fewer_images = config | {"n_images": 2}
    with pytest.warns(UserWarning, match="starting afresh"):
        assert not Checkpoint("ead-table-11", "standard", fewer_images, tmp_path,
                              holds=experiments.table_11_part_holds(fewer_images)).parts
    with pytest.warns(UserWarning, match="starting afresh"):
        assert not Checkpoint("ead-table-11", "standard", config, tmp_path).parts


def test_table_11_refuses_a_sha256_setting_that_is_not_the_shipped_weights():
    config = EXPERIMENTS["ead-table-11"].config("quick")
    with pytest.raises(ValueError, match="does not match the shipped weights of T=10"):
        EXPERIMENTS["ead-table-11"]("quick", keep=False, sha256=config["sha256"] | {"T=10": "0" * 64})


def test_a_run_on_some_networks_elsewhere_gives_its_finished_table_11_rows_to_the_whole_run(tmp_path):
    from ead_tutorial.store import Checkpoint

    config = EXPERIMENTS["ead-table-11"].config("standard")
    holds = experiments.table_11_part_holds(config)
    main = Checkpoint("ead-table-11", "standard", config, tmp_path / "main")
    main["T=1 / C&W (L2)"] = {"from": "main"}
    # A second run, at the same time, on two other students, with its own results folder.
    some = json.loads(json.dumps(config))
    some["networks"] = {n: config["networks"][n] for n in ("T=90", "T=100")}
    some["sha256"] = {n: config["sha256"][n] for n in ("T=90", "T=100")}
    other = Checkpoint("ead-table-11", "standard", some, tmp_path / "other")
    other.record("T=100 / C&W (L2)", {"from": "other"}, {"seconds": 60.0})
    other["T=10 / C&W (L2)"] = {"from": "nowhere"}  # not a network of its configuration: it does not hold
    with pytest.warns(UserWarning, match="took 1 of the 2 parts"):
        combined = Checkpoint("ead-table-11", "standard", config, tmp_path / "main", holds=holds, also=[other.path])
    assert combined.parts == {"T=1 / C&W (L2)": {"from": "main"}, "T=100 / C&W (L2)": {"from": "other"}}
    assert combined.ledger["T=100 / C&W (L2)"]["seconds"] == 60.0
    # The parts taken are written to this run's own checkpoint at once.
    assert json.loads(main.path.read_text())["parts"] == combined.parts
    # A finished result, or no file, is refused with what to give instead.
    finished = tmp_path / "standard.json"
    finished.write_text(json.dumps({"config": config, "parts": {}, "data": {}}))
    with pytest.raises(ValueError, match="not a checkpoint.*a finished result"):
        Checkpoint("ead-table-11", "standard", config, tmp_path / "main", holds=holds, also=[finished])
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        Checkpoint("ead-table-11", "standard", config, tmp_path / "main", holds=holds, also=[tmp_path / "none.json"])
    with pytest.raises(ValueError, match="needs checkpoints on"):
        experiments.run_experiment("mnist-accuracy", "quick", save=False, resume_from=(str(other.path),))
    with pytest.raises(ValueError, match="needs checkpoints on"):  # the command line passes it through
        reproduce.main(["mnist-accuracy", "--profile", "quick", "--resume-from", str(other.path)])
