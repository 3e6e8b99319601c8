"""The book's structure: twins in step with their sources, Colab cells, the table of
contents, and the CI script. The website itself is tested in test_website.py.
"""

import tomllib

import jupytext
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


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    listed = set(_toc_files())
    for name in listed:
        assert (ROOT / f"{name}.md").exists(), f"_toc.yml lists {name}, which has no .md"
    for source in CHAPTERS:
        assert str(source.relative_to(ROOT).with_suffix("")) in listed, f"{source} is not in _toc.yml"


def test_toc_has_the_books_parts():
    parts = [part["caption"] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]]
    assert parts[:5] == ["Foundations", "Carlini & Wagner", "EAD", "Baselines and defences", "For instructors"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.endswith("&& pytest")
    assert f"```bash\n{command}\n```" in readme


def test_the_instructors_page_says_truly_which_results_are_stored():
    """Its table of stored results says "yes" exactly where every result a row names is stored at the standard
    profile, and a "checkpoint" exactly where an unfinished run's checkpoint is stored."""
    import re

    from ead_tutorial.store import PACKAGE_RESULTS

    text = (sync_book.BOOK / "instructors.md").read_text()
    table = text[text.index("| chapter | stored result it shows |"):].split("\n\n")[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| {doc}")]
    assert len(rows) >= 10
    for chapter, shows, stored in rows:
        names = re.findall(r"`([a-z0-9-]+)`", shows)
        assert names, chapter
        complete = all((PACKAGE_RESULTS / name / "standard.json").exists() for name in names)
        partial = any((PACKAGE_RESULTS / name / "standard.partial.json").exists() for name in names)
        assert stored.strip().startswith("yes") == complete, (chapter, stored)
        assert ("checkpoint" in stored) == (partial and not complete), (chapter, stored)
