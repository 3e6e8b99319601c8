import json
import time

import pytest

import ead_tutorial
from ead_tutorial import experiments, reproduce, store
from ead_tutorial.devices import describe_hardware
from ead_tutorial.profiles import PROFILES


def _result(**changes):
    fields = dict(name="demo", profile="quick", data={"accuracy": 0.5, "matrix": [[1, 2], [3, 4]]},
                  config={"n": 2}, package_version="0", torch_version="0", hardware="CPU", wall_time_s=1.0)
    return store.StoredResult(**(fields | changes))


def test_save_and_load_round_trip(tmp_path):
    path = store.save_result(_result(), tmp_path)
    assert path == tmp_path / "demo" / "quick.json"
    loaded = store.load_result("demo", "quick", tmp_path)
    assert loaded == _result(created=loaded.created)
    assert "CPU" in loaded.provenance() and "quick" in loaded.provenance()


def test_missing_result_says_how_to_compute_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ead_tutorial.reproduce demo --profile paper"):
        store.load_result("demo", "paper", tmp_path)


def test_invalid_profile_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown profile"):
        store.save_result(_result(profile="huge"), tmp_path)


def test_run_experiment_records_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    started = time.perf_counter()
    result = experiments.run_experiment("mnist-accuracy", "quick")
    elapsed = time.perf_counter() - started
    stored = store.load_result("mnist-accuracy", "quick")
    assert stored.data == result.data and stored.config["n_images"] == 2000
    assert sum(map(sum, stored.data["confusion"])) == 2000
    # The recorded wall time is the experiment's own (rounded to 0.1 s), not a placeholder.
    assert 0 < stored.wall_time_s <= elapsed + 0.05
    assert stored.hardware == describe_hardware() and stored.package_version == ead_tutorial.__version__


def test_reproduce_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    reproduce.main(["--list"])
    assert "mnist-accuracy" in capsys.readouterr().out
    reproduce.main(["mnist-accuracy", "--profile", "quick"])
    assert (tmp_path / "mnist-accuracy" / "quick.json").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        reproduce.main(["no-such-experiment"])
    assert stopped.value.code == 2  # argparse's usage error, not a crash or a silent exit
    assert "invalid choice: 'no-such-experiment'" in capsys.readouterr().err


def test_every_shipped_result_is_complete_and_known():
    # Finished results only: the checkpoints of a run still under way (NAME/PROFILE.partial.json) are not results.
    files = sorted(path for path in store.PACKAGE_RESULTS.glob("*/*.json") if not path.name.endswith(".partial.json"))
    assert files, "the package ships no stored results"
    for path in files:
        record = json.loads(path.read_text())
        assert record["name"] == path.parent.name in experiments.EXPERIMENTS
        assert record["profile"] == path.stem in PROFILES
        for field in ("config", "data", "package_version", "torch_version", "hardware", "wall_time_s", "created"):
            assert record[field] not in (None, "", {}), f"{path}: {field} is empty"


def test_checkpoint_keeps_finished_parts_for_a_rerun_with_the_same_configuration(tmp_path):
    from ead_tutorial.store import Checkpoint

    first = Checkpoint("demo", "standard", {"n": 1}, directory=tmp_path)
    first["a"] = {"value": 1.5}
    again = Checkpoint("demo", "standard", {"n": 1}, directory=tmp_path)
    assert "a" in again and again["a"] == {"value": 1.5}
    with pytest.warns(UserWarning, match="another configuration"):
        changed = Checkpoint("demo", "standard", {"n": 2}, directory=tmp_path)
    assert "a" not in changed
    again.clear()
    assert not Checkpoint("demo", "standard", {"n": 1}, directory=tmp_path).parts
    in_memory = Checkpoint("demo", "quick", {"n": 1}, directory=tmp_path, enabled=False)
    in_memory["b"] = 2
    assert in_memory["b"] == 2 and not list(tmp_path.rglob("*.partial.json"))


def test_a_cut_off_or_foreign_checkpoint_starts_afresh_with_a_warning(tmp_path):
    from ead_tutorial.store import Checkpoint

    finished = Checkpoint("demo", "standard", {"n": 1}, tmp_path)
    finished["a"] = 1.0
    text = finished.path.read_text()
    finished.path.write_text(text[: len(text) // 2])  # cut off mid-write
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        assert "a" not in Checkpoint("demo", "standard", {"n": 1}, tmp_path)
    finished["a"] = 1.0  # written whole again
    with pytest.warns(UserWarning, match="another configuration"):
        assert "a" not in Checkpoint("demo", "standard", {"n": 2}, tmp_path)
    assert Checkpoint("demo", "standard", {"n": 1}, tmp_path)["a"] == 1.0


def test_reproduce_takes_its_default_profile_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EAD_TUTORIAL_RESULTS", str(tmp_path))
    monkeypatch.setenv("EAD_TUTORIAL_PROFILE", "quick")
    reproduce.main(["mnist-accuracy"])
    assert [path.name for path in (tmp_path / "mnist-accuracy").iterdir()] == ["quick.json"]
