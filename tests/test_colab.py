"""The Colab install cell, run for real in an IPython shell: it installs only inside Colab,
installs this project from its repository, and never touches torch."""

from __future__ import annotations

import sys
import tomllib
import types

import pytest
from IPython.core.interactiveshell import InteractiveShell
from packaging.requirements import Requirement

from tools import sync_book

ROOT = sync_book.ROOT


@pytest.fixture
def shell_recording_pip():
    """An IPython shell whose %pip magic records its arguments instead of installing."""
    shell = InteractiveShell.instance()
    calls = []
    shell.register_magic_function(lambda line: calls.append(line), magic_kind="line", magic_name="pip")
    yield shell, calls
    InteractiveShell.clear_instance()


def test_the_cell_does_nothing_outside_colab(shell_recording_pip):
    shell, calls = shell_recording_pip
    assert "google.colab" not in sys.modules
    result = shell.run_cell(sync_book.colab_cell_source())
    assert result.success and calls == []


def test_inside_colab_the_cell_installs_this_project_and_nothing_else(shell_recording_pip, monkeypatch):
    shell, calls = shell_recording_pip
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    result = shell.run_cell(sync_book.colab_cell_source())
    assert result.success and len(calls) == 1
    arguments = calls[0].split(maxsplit=1)
    assert arguments[0] == "install" and "--quiet" in arguments[1]
    quoted = arguments[1].replace("--quiet", "").strip()
    assert quoted[0] == quoted[-1] == '"', "the requirement must be quoted, or the shell reads its spaces and @"
    requirement = Requirement(quoted.strip('"'))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert requirement.name == project["name"]
    url, branch = sync_book.repository()
    assert requirement.url == f"git+{url}@{branch}"
    assert "torch" not in calls[0] and "--upgrade" not in calls[0] and "--force" not in calls[0]

