"""The book's structure: twins in step with their sources, Colab cells, the table of
contents, and a website build with warnings as errors.

The build here skips execution: nbval (``pytest book``) executes every chapter once
already, and the README's website command executes them all again for the real site.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from tools import sync_book

ROOT = sync_book.ROOT
CHAPTERS = sync_book.chapters()


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_there_are_chapters():
    assert {"intro", "data_and_model"} <= {path.stem for path in CHAPTERS}


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_twin_is_in_step_with_its_source(source):
    assert sync_book.twin_is_current(source), (
        f"{source.with_suffix('.ipynb').name} is out of date: run `python tools/sync_book.py`")


def test_every_twin_has_a_source():
    for twin in (ROOT / "book").rglob("*.ipynb"):
        assert twin.with_suffix(".md").exists(), f"{twin} has no .md source"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_colab_install_cell(source):
    code = [cell for cell in jupytext.read(source).cells if cell.cell_type == "code"]
    assert code[0].source == sync_book.colab_cell_source(), f"run `python tools/sync_book.py` to fix {source.name}"
    assert sync_book.COLAB_TAG in code[0].metadata.get("tags", [])


def test_colab_cell_installs_this_project_without_touching_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = sync_book.install_target()
    assert target.startswith(project["name"] + " @ git+https://")
    assert "torch" not in sync_book.colab_cell_source().split("%pip", 1)[1]
    torch_requirements = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch_requirements and all(">=" in d for d in torch_requirements)  # ranges, never pins


def test_colab_cell_does_nothing_outside_colab():
    namespace = {}
    exec(compile("import sys\nran = 'google.colab' in sys.modules", "<cell>", "exec"), namespace)
    assert "google.colab" not in sys.modules and namespace["ran"] is False
    # The cell's only action sits under that guard.
    body = sync_book.colab_cell_source().split('if "google.colab" in sys.modules:\n', 1)[1]
    assert body.strip().startswith("%pip install") and "\n" not in body.strip()


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    listed = set(_toc_files())
    for name in listed:
        assert (ROOT / f"{name}.md").exists(), f"_toc.yml lists {name}, which has no .md"
    for source in CHAPTERS:
        assert str(source.relative_to(ROOT).with_suffix("")) in listed, f"{source} is not in _toc.yml"


def test_toc_has_the_books_parts():
    parts = [part["caption"] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]]
    assert parts[:5] == ["Foundations", "Carlini & Wagner", "EAD", "Baselines and defences", "For instructors"]


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (out / "_config.yml").write_text(yaml.safe_dump(config))
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    command = [jupyter_book, "build", str(ROOT), "--config", str(out / "_config.yml"),
               "--path-output", str(out), "-W", "-n", "--keep-going"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"the website build failed or warned:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return out / "_build" / "html"


def test_site_builds_without_warnings(built_site):
    for name in _toc_files():
        assert (built_site / f"{name}.html").exists()


def test_colab_buttons_open_existing_twins(built_site):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    prefix = f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/"
    for source in CHAPTERS:
        page = built_site / source.relative_to(ROOT).with_suffix(".html")
        links = set(re.findall(r'https://colab\.research\.google\.com/[^"\']+', page.read_text()))
        assert links == {prefix + str(source.relative_to(ROOT).with_suffix(".ipynb"))}, links
        twin = ROOT / links.pop().removeprefix(prefix)
        assert twin.exists()
        nbformat.validate(nbformat.read(twin, as_version=4))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.endswith("&& pytest")
    assert f"```bash\n{command}\n```" in readme
