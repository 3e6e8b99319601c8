"""The student edition: solutions out, checks in, and a stub answered with a hint, not a crash."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ead_tutorial.exercises import Outcome
from ead_tutorial.student_edition import EXERCISE_TAG, SOLUTION_TAG, stub_source, strip_written_solutions, write_student_edition
from exercise_cells import exercise_cells, run_exercise
from tools import sync_book


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    written = write_student_edition(out, sync_book.BOOK)
    assert len(written) == len(list(sync_book.BOOK.rglob("*.ipynb")))
    return out


def _notebooks(root: Path) -> dict[str, dict]:
    return {str(p.relative_to(root)): json.loads(p.read_text()) for p in sorted(root.rglob("*.ipynb"))}


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _solution_lines(source: str) -> set[str]:
    """The lines of a solution that do the work: not imports, signatures, docstrings, comments or blanks."""
    tree = ast.parse(source)
    keep = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            for statement in body:
                for line in ast.get_source_segment(source, statement).splitlines():
                    if line.strip() and not line.strip().startswith("#") and len(line.strip()) > 12:
                        keep.add(line.strip())
    return keep


def test_the_edition_has_no_solution_code(edition):
    originals = _notebooks(sync_book.BOOK)
    for name, notebook in _notebooks(edition).items():
        text = "\n".join(_source(cell) for cell in notebook["cells"])
        assert "Solution to exercise" not in text, f"{name} still shows a written solution"
        for cell in notebook["cells"]:
            assert SOLUTION_TAG not in cell["metadata"].get("tags", []), f"{name} still has a solution cell"
        # Lines the chapter teaches in its own cells are no leak; lines only a solution has are.
        taught = "\n".join(_source(cell) for cell in originals[name]["cells"]
                           if SOLUTION_TAG not in cell["metadata"].get("tags", []))
        for cell in originals[name]["cells"]:
            if SOLUTION_TAG in cell["metadata"].get("tags", []):
                for line in _solution_lines(_source(cell)):
                    assert line in taught or line not in text, f"{name} still contains the solution line {line!r}"


def test_every_code_cell_of_the_edition_still_parses(edition):
    for name, notebook in _notebooks(edition).items():
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                # IPython magics are not Python: parse them as `pass` at the same indentation.
                code = "\n".join(line[: len(line) - len(line.lstrip())] + "pass"
                                 if line.lstrip().startswith(("%", "!")) else line for line in _source(cell).splitlines())
                ast.parse(code, filename=name)


def test_the_edition_keeps_every_check_and_every_other_cell(edition):
    originals = _notebooks(sync_book.BOOK)
    for name, notebook in _notebooks(edition).items():
        assert len(notebook["cells"]) == len(originals[name]["cells"]), name
        checks = [c for c in exercise_cells(originals[name]["cells"]) if c.names]
        kept = "\n".join(_source(cell) for cell in notebook["cells"])
        assert all(c.check in kept for c in checks), name


def test_a_stubbed_exercise_gets_a_hint_not_a_crash(edition, capsys):
    stubs = [cells for notebook in _notebooks(edition).values()
             for cells in exercise_cells(notebook["cells"], tag=EXERCISE_TAG) if cells.names]
    assert stubs, "the book has no exercises"
    for cells in stubs:
        outcome = run_exercise(cells.solution, cells.check)  # imports the package and runs the stub: no crash
        printed = capsys.readouterr().out
        assert isinstance(outcome, Outcome) and not outcome.passed, cells
        assert "not implemented yet" in printed or "no answer yet" in printed, printed


def test_stub_keeps_signature_and_docstring():
    source = ('import torch\n\n\ndef f(z, x0,\n      beta=0.1):\n    """Task: shrink z."""\n'
              '    secret = torch.maximum(z - beta, x0)\n    return secret\n\n\nanswer = 42\n')
    stub = stub_source(source)
    assert "def f(z, x0,\n      beta=0.1):" in stub and '"""Task: shrink z."""' in stub
    assert "secret" not in stub and "42" not in stub
    assert "raise NotImplementedError" in stub and "answer = ..." in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1, 2)


def test_stub_drops_comments_that_open_the_body():
    # A comment between the docstring (or the signature) and the first statement is part of
    # the solution, and may answer the exercise's question.
    for source in ('def f(z):\n    """Task."""\n    # the hint that gives it away\n    return z\n',
                   'def f(z):\n    # the hint that gives it away\n\n    return z\n'):
        stub = stub_source(source)
        assert "gives it away" not in stub and "def f(z):" in stub
        exec(stub, {})


def test_written_solutions_are_removed_whatever_the_fence():
    text = ("before\n:::{admonition} Solution to exercise 2\n:class: dropdown\n\nthe proof\n:::\nmiddle\n"
            "````{dropdown} Solution\nanother proof\n````\nafter\n:::{admonition} Hint\nkeep me\n:::\n")
    stripped = strip_written_solutions(text)
    assert "the proof" not in stripped and "another proof" not in stripped
    assert "before" in stripped and "middle" in stripped and "after" in stripped and "keep me" in stripped


def test_the_command_writes_the_edition(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ead_tutorial.student_edition", str(tmp_path / "out"),
                           "--book", str(sync_book.BOOK)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "student notebooks" in done.stdout
    assert (tmp_path / "out" / "ead" / "shrinkage.ipynb").exists()


def test_the_command_says_what_it_tried_without_a_book(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ead_tutorial.student_edition", str(tmp_path / "out"),
                           "--book", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode != 0 and "no chapter notebooks" in done.stderr


@pytest.mark.parametrize("chapter", ["ead/shrinkage.ipynb", "ead/elastic_net.ipynb"])
def test_the_edition_runs_top_to_bottom_in_a_kernel(edition, chapter):
    """As a student first meets it: every check says its exercise is not done yet, and no cell
    raises anything but a stub's own NotImplementedError."""
    import nbformat
    from nbclient import NotebookClient

    from ead_tutorial.student_edition import STUB_MESSAGE

    path = edition / chapter
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = 0
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "error":
                assert output.ename == "NotImplementedError" and STUB_MESSAGE in output.evalue, (
                    f"{chapter}, cell {number} raised {output.ename}: {output.evalue}")
        if "from ead_tutorial.exercises import check_" in cell.source:
            checks += 1
            printed = "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
            assert "not implemented yet" in printed, f"{chapter}, cell {number}: the check printed {printed!r}"
    exercises = sum(EXERCISE_TAG in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert exercises >= 1 and checks >= 1
