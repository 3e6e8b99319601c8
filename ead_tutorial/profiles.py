"""The scale an experiment runs at, chosen by the EAD_TUTORIAL_PROFILE environment variable.

- ``quick``: tests and CI; every chapter in about two minutes on 2 CPU cores.
- ``standard`` (the default): tens of images; a chapter in minutes on a Colab T4.
- ``paper``: the papers' scale (1000 images x 9 targets, their iteration counts); needs a GPU.
"""

from __future__ import annotations

import os
from typing import TypeVar

PROFILES = ("quick", "standard", "paper")
DEFAULT_PROFILE = "standard"
ENV_VARIABLE = "EAD_TUTORIAL_PROFILE"

T = TypeVar("T")


def check_profile(name: str) -> str:
    """``name`` if it is a known profile, else a ValueError that lists the choices."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)} "
                         f"(set {ENV_VARIABLE}, e.g. `export {ENV_VARIABLE}=quick`)")
    return name


def current_profile() -> str:
    """The active profile: ``$EAD_TUTORIAL_PROFILE`` if set, else ``standard``."""
    return check_profile(os.environ.get(ENV_VARIABLE, "").strip().lower() or DEFAULT_PROFILE)


def pick(*, quick: T, standard: T, paper: T, profile: str | None = None) -> T:
    """The value for the active (or given) profile, e.g. ``pick(quick=20, standard=100, paper=1000)``."""
    return {"quick": quick, "standard": standard, "paper": paper}[check_profile(profile or current_profile())]
