"""The results store: experiments too slow to rerun on every build, saved with their provenance.

Each result is one JSON file, ``results/<name>/<profile>.json`` inside the package,
holding the data together with the configuration, package and torch versions,
hardware, wall time and date that produced it. ``python -m ead_tutorial.reproduce``
recomputes any of them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

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

    def provenance(self) -> str:
        """One sentence saying what produced this result, for the book to print beside it."""
        return (f"'{self.name}' at the {self.profile} profile: computed {self.created} on {self.hardware} "
                f"in {self.wall_time_s:.0f} s, ead_tutorial {self.package_version}, torch {self.torch_version}")


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
        raise FileNotFoundError(f"no stored result {name!r} at the {profile} profile ({path}); compute it with "
                                f"`python -m ead_tutorial.reproduce {name} --profile {profile}`")
    return StoredResult(**json.loads(path.read_text()))
