"""The results store: experiments too slow to rerun on every build, saved with their provenance.

Each result is one JSON file, ``results/<name>/<profile>.json`` inside the package,
holding the data together with the configuration, package and torch versions,
hardware, wall time and date that produced it. ``python -m ead_tutorial.reproduce``
recomputes any of them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from ead_tutorial.profiles import check_profile

PACKAGE_RESULTS = Path(__file__).parent / "results"


def results_dir() -> Path:
    """Where results are read and written: ``$EAD_TUTORIAL_RESULTS`` or the package's own folder."""
    return Path(os.environ.get("EAD_TUTORIAL_RESULTS") or PACKAGE_RESULTS)


@dataclasses.dataclass
class StoredResult:
    """One experiment's output and how it was made."""

    name: str
    profile: str
    data: dict[str, Any]
    config: dict[str, Any]
    package_version: str
    torch_version: str
    hardware: str
    wall_time_s: float
    created: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    code_digest: str = ""  # see code_digest(); empty in results stored before it was recorded
    # part -> how it was made (see Checkpoint.ledger); empty in results stored before it was kept
    parts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def provenance(self) -> str:
        """One sentence saying what produced this result, for the book to print beside it.

        A result assembled over several runs (resumed from a checkpoint, or reusing a part of
        another stored result) says so, with the hardware and code of every part.
        """
        code = f"package code {self.code_digest}" if self.code_digest else "package code digest not recorded"
        sentence = (f"'{self.name}' at the {self.profile} profile: computed {self.created} on {self.hardware} "
                    f"in {self.wall_time_s:.0f} s, ead_tutorial {self.package_version} ({code}), "
                    f"torch {self.torch_version}")
        cpu = [entry.get("cpu seconds") for entry in self.parts.values()]
        if cpu and None not in cpu:  # where every part has it: a paused or shared run's wall time says more
            sentence += f" ({sum(cpu) / 3600:.2f} CPU core-hours in its parts)"
        earlier = [entry for entry in self.parts.values() if entry.get("run") != "final"]
        reused = [entry["reused from"] for entry in earlier if "reused from" in entry]
        untimed = sum(entry.get("seconds") is None for entry in earlier)
        continued = sum("earlier seconds" in entry for entry in self.parts.values() if entry.get("run") == "final")
        details = []
        if len(earlier) > len(reused):
            details.append(f"{len(earlier) - len(reused)} of {len(self.parts)} parts resumed from earlier runs")
        if continued:
            details.append(f"{continued} of {len(self.parts)} parts continued from pieces that earlier runs finished")
        if reused:
            details.append(f"{len(reused)} of {len(self.parts)} parts reused from {', '.join(sorted(set(reused)))}")
        if untimed:
            details.append(f"{untimed} of those untimed, which the wall time leaves out")
        hardware = sorted({entry["hardware"] for entry in self.parts.values() if entry.get("hardware")})
        codes = sorted({entry["code"] for entry in self.parts.values() if entry.get("code")})
        if hardware and hardware != [self.hardware]:
            details.append(f"parts computed on {' and '.join(hardware)}")
        if codes and codes != [self.code_digest]:
            details.append(f"parts from package code {', '.join(codes)}")
        return "; ".join([sentence, *details])


def code_digest(length: int = 12, package: Path | None = None) -> str:
    """A digest of the package's Python source: the first ``length`` hex digits of a SHA-256.

    It covers every ``.py`` file of ``ead_tutorial`` (path and content, in sorted order),
    so two results with the same digest were computed by the same code, whatever the version
    number says. Stored results, shipped weights and data are not part of it. ``package``
    names another source folder to digest (default: this package's).
    """
    package = package or Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:length]


def result_path(name: str, profile: str, directory: Path | None = None) -> Path:
    return (directory or results_dir()) / name / f"{check_profile(profile)}.json"


def save_result(result: StoredResult, directory: Path | None = None) -> Path:
    """Write ``result`` as JSON (atomically) and return its path."""
    path = result_path(result.name, result.profile, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(dataclasses.asdict(result), indent=1) + "\n")
    partial.replace(path)
    return path


def load_result(name: str, profile: str, directory: Path | None = None) -> StoredResult:
    """The stored result ``name`` at ``profile``; FileNotFoundError says how to compute it."""
    path = result_path(name, profile, directory)
    if not path.exists():
        # Name the place relative to the results folder, so that the message means the same on every machine.
        where = "the package's results" if directory is None and results_dir() == PACKAGE_RESULTS else "$EAD_TUTORIAL_RESULTS"
        raise FileNotFoundError(f"no stored result {name!r} at the {profile} profile ({name}/{profile}.json in {where}); "
                                f"compute it with `python -m ead_tutorial.reproduce {name} --profile {profile}`")
    return StoredResult(**json.loads(path.read_text()))


class Checkpoint:
    """The finished parts of a long experiment, kept on disk so an interrupted run loses nothing.

    Parts are stored under ``results/<name>/<profile>.partial.json`` together with the
    configuration; a rerun with the same configuration skips the finished parts, and a
    different configuration starts afresh, except for the parts ``holds(old_config, key)``
    says it leaves unchanged (e.g. the rows of a network whose weights are the same in both).
    ``clear()`` removes the file once the whole result is saved. With ``enabled=False``
    (short runs) the parts are kept in memory only.

    ``also`` names the checkpoints of other runs of the same experiment (e.g. one on some of
    the networks, run at the same time in its own ``$EAD_TUTORIAL_RESULTS``): each of their
    parts that this one lacks is taken by the same rule, and written to this checkpoint at once.
    """

    def __init__(self, name: str, profile: str, config: dict[str, Any], directory: Path | None = None,
                 enabled: bool = True, holds: Callable[[dict[str, Any], str], bool] | None = None,
                 also: Sequence[str | Path] = ()):
        self.path = result_path(name, profile, directory).with_suffix(".partial.json")
        self.config = json.loads(json.dumps(config))
        self.parts: dict[str, Any] = {}
        self.ledger: dict[str, dict[str, Any]] = {}
        self.enabled = enabled
        if enabled and self.path.exists():
            try:
                stored = json.loads(self.path.read_text())
                parts, config = stored["parts"], stored["config"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                warnings.warn(f"ignoring the unreadable checkpoint {self.path} ({type(error).__name__}: {error}); "
                              "starting afresh", stacklevel=2)
            else:
                if config == self.config:
                    self.parts = parts
                    self.ledger = stored.get("ledger", {})
                else:
                    kept = [key for key in parts if holds is not None and holds(config, key)]
                    self.parts = {key: parts[key] for key in kept}
                    self.ledger = {key: how for key, how in stored.get("ledger", {}).items() if key in kept}
                    warnings.warn(
                        f"the checkpoint {self.path} was written with another configuration; keeping the "
                        f"{len(kept)} of its {len(parts)} parts that this one leaves unchanged" if kept else
                        f"ignoring the checkpoint {self.path}: it was written with another configuration; "
                        "starting afresh", stacklevel=2)
        taken = sum(self._take(Path(other), holds) for other in also)
        if taken and enabled:
            self._write()

    def _take(self, other: Path, holds: Callable[[dict[str, Any], str], bool] | None) -> int:
        """Add the parts of the checkpoint ``other`` that this one lacks and that hold here; return how many."""
        try:
            stored = json.loads(other.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no checkpoint at {other}: give the .partial.json file another run of "
                                    f"{self.path.parent.name} left") from None
        if not isinstance(stored, dict) or "data" in stored or not {"config", "parts"} <= set(stored):
            raise ValueError(f"{other} is not a checkpoint (a .partial.json file with 'config' and 'parts')"
                             + (", but a finished result" if isinstance(stored, dict) and "data" in stored else ""))
        config, parts = stored["config"], stored["parts"]
        taken = [key for key in parts if key not in self.parts
                 and (config == self.config or (holds is not None and holds(config, key)))]
        self.parts.update({key: parts[key] for key in taken})
        self.ledger.update({key: how for key, how in stored.get("ledger", {}).items() if key in taken})
        warnings.warn(f"took {len(taken)} of the {len(parts)} parts of the checkpoint {other}", stacklevel=3)
        return len(taken)

    def __contains__(self, key: str) -> bool:
        return key in self.parts

    def __getitem__(self, key: str) -> Any:
        return self.parts[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.record(key, value, {})

    def record(self, key: str, value: Any, how: dict[str, Any]) -> None:
        """Keep part ``key`` with ``how`` it was made (JSON types), and write the checkpoint."""
        self.parts[key] = value
        self.ledger[key] = json.loads(json.dumps(how))
        if self.enabled:
            self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"config": self.config, "parts": self.parts, "ledger": self.ledger},
                                        indent=1) + "\n")
        temporary.replace(self.path)

    def clear(self) -> None:
        if self.enabled:
            self.path.unlink(missing_ok=True)
