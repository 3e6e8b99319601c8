"""The nbgrader edition: every chapter's checked exercises as an nbgrader assignment, graded by nbgrader itself.

nbgrader releases every assignment here; autograding runs kernels, so it grades a
subset, one chapter from each part of the book (``AUTOGRADED``), to keep this file to a
minute or two on two cores. The other assignments' stubs run in this process instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ead_tutorial.exercises.checking import NotPassed, Outcome
from ead_tutorial.nbgrader_edition import (BEGIN, CONFIG, END, as_python, assignment_name, free_names,
                                           mark_solution, needed_cells, strict_check, write_nbgrader_edition)
from ead_tutorial.student_edition import STUB_MESSAGE
from exercise_cells import exercise_cells
from tools import sync_book

AUTOGRADED = ["cw-objectives", "ead-shrinkage", "defences-distillation"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _chapters() -> dict[str, dict]:
    """Every chapter notebook that has checked exercises, by assignment name."""
    chapters = {}
    for path in sorted(sync_book.BOOK.rglob("*.ipynb")):
        notebook = json.loads(path.read_text())
        if any(cells.names for cells in exercise_cells(notebook["cells"])):
            chapters[assignment_name(path.relative_to(sync_book.BOOK).with_suffix("").as_posix())] = notebook
    return chapters


def _notebooks(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/*.ipynb"))}


def _nbgrader_meta(cell: dict) -> dict:
    return cell["metadata"].get("nbgrader", {})


def _require_nbgrader() -> None:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("nbgrader is not installed; CI must test the nbgrader edition "
                        "(pip install -r requirements.txt)")
        pytest.skip("nbgrader is not installed (pip install -r requirements.txt)")


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run nbgrader in ``course``; its database step calls `alembic`, which sits beside this Python."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The edition, written by the package, with every assignment released by `nbgrader generate_assignment`."""
    course = tmp_path_factory.mktemp("course")
    write_nbgrader_edition(course, sync_book.BOOK)
    return course


@pytest.fixture(scope="module")
def released(course) -> Path:
    _require_nbgrader()
    _nbgrader(course, "generate_assignment", "*")
    return course


def test_every_chapter_with_checks_has_an_assignment_worth_its_checks(course):
    chapters = _chapters()
    assignments = _notebooks(course / "source")
    assert set(assignments) == set(chapters) and len(chapters) >= 20
    for name, notebook in assignments.items():
        expected = [c.names for c in exercise_cells(chapters[name]["cells"]) if c.names]
        answers = [c for c in notebook["cells"] if _nbgrader_meta(c).get("solution")]
        checks = [c for c in notebook["cells"] if _nbgrader_meta(c).get("grade")]
        assert len(answers) == len(checks) == len(expected), name
        for answer, check, names in zip(answers, checks, expected):
            assert answer["cell_type"] == "code" and not _nbgrader_meta(answer)["locked"], name
            assert BEGIN in _source(answer) and END in _source(answer), f"{name}: {_source(answer)}"
            meta = _nbgrader_meta(check)
            assert meta["locked"] and not meta["solution"] and meta["points"] == len(names), (name, meta)
            for exercise in names:
                assert f"check_{exercise}(" in _source(check) and "strict=True)" in _source(check), _source(check)
        # Everything else is read-only: the statements, the install cell and any setup the exercises need.
        others = [c for c in notebook["cells"] if c not in answers and c not in checks]
        assert all(_nbgrader_meta(c)["locked"] for c in others), name
        statements = [c for c in others if c["cell_type"] == "markdown" and c["id"].endswith("-statement")]
        assert len(statements) == len(expected) and all(_source(c).startswith("**Exercise ") for c in statements)
        assert not any("Solution to exercise" in _source(c) for c in others), f"{name} shows a written solution"
        grade_ids = [_nbgrader_meta(c)["grade_id"] for c in notebook["cells"]]
        assert len(grade_ids) == len(set(grade_ids)), name


def test_an_assignment_takes_no_experiment_from_its_chapter(course):
    """Today every checked exercise stands alone, so an assignment runs in seconds: the install cell, then the
    exercises. An exercise that reads a chapter's results would bring the cells that make them (see below):
    keep those cheap."""
    for name, notebook in _notebooks(course / "source").items():
        setup = [c for c in notebook["cells"] if c["cell_type"] == "code" and c["id"].startswith("setup-")]
        assert len(setup) == 1 and "google.colab" in _source(setup[0]), f"{name} takes cells from its chapter"
        assert not any(c["metadata"].get("tags") for c in notebook["cells"]), f"{name} keeps the chapter's tags"


def test_setup_cells_follow_the_names_an_exercise_reads():
    def code(source, *tags):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source}

    cells = [code("import torch\nscale = 2.0"), code("model = torch.nn.Linear(2, 2)"),
             code("result = model(torch.ones(2))  # an experiment"), code("scale = 3.0"),
             code("def f(x):\n    return scale * model(x)", "solution"),
             code("from ead_tutorial.exercises import check_f\ncheck_f(f)")]
    assert needed_cells(cells, [(4, 5)]) == [0, 1, 3]  # the last scale before the exercise; not the experiment
    assert free_names("%matplotlib inline\ndef g(y):\n    z = y + w\n    return [v for v in z]") == {"w"}
    with pytest.raises(ValueError, match="'nowhere'"):
        needed_cells([code("def f():\n    return nowhere", "solution"), cells[-1]], [(0, 1)])


def test_a_solution_keeps_its_signature_docstring_and_imports():
    source = ('import torch\n\n\ndef f(z, x0,\n      beta=0.1):\n    """Task: shrink z."""\n'
              '    # the median of three\n    secret = torch.maximum(z - beta, x0)\n    return secret\n\n\n'
              'def g(x):\n    # no docstring\n    return x\n')
    marked = mark_solution(source)
    assert marked.count(BEGIN) == marked.count(END) == 2
    head, _, rest = marked.partition(BEGIN)
    assert "def f(z, x0,\n      beta=0.1):" in head and '"""Task: shrink z."""' in head and "import torch" in head
    assert "# the median of three" in rest.split(END)[0]  # comments in a body are part of the answer
    namespace = {}
    exec(marked, namespace)  # the markers are comments: the instructor's version still runs
    assert namespace["g"](5) == 5
    assert mark_solution("x = 1\n") == f"{BEGIN}\nx = 1\n{END}\n"


def test_strict_makes_a_check_raise_after_printing_the_same_line(capsys):
    from ead_tutorial.exercises import check_median_shrink

    def stub(*args):
        raise NotImplementedError(STUB_MESSAGE)

    outcome = check_median_shrink(stub)  # what a student of the normal edition sees: a line, no exception
    plain = capsys.readouterr().out
    assert isinstance(outcome, Outcome) and not outcome.passed and "not implemented yet" in plain
    with pytest.raises(NotPassed) as raised:
        check_median_shrink(stub, strict=True)
    assert capsys.readouterr().out == plain and str(raised.value) == outcome.message
    assert check_median_shrink(lambda z, x0, beta: z, strict=False).passed is False
    source, calls = strict_check("from x import check_a, check_b\n\ncheck_a(a)\ncheck_b(f(1), tol=2)  # é\n")
    assert calls == 2 and "check_a(a, strict=True)" in source and "check_b(f(1), tol=2, strict=True)  # é" in source


def test_every_released_stub_fails_only_its_checks(released):
    """Every assignment as nbgrader releases it, run cell by cell: each check raises NotPassed, nothing else raises."""
    for name, notebook in _notebooks(released / "release").items():
        text = json.dumps(notebook)
        assert BEGIN not in text and STUB_MESSAGE in text, name
        namespace: dict = {}
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            meta = _nbgrader_meta(cell)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                if meta.get("grade"):
                    with pytest.raises(NotPassed, match="not implemented yet"):
                        exec(compile(as_python(_source(cell)), meta["grade_id"], "exec"), namespace)
                else:
                    exec(compile(as_python(_source(cell)), meta["grade_id"], "exec"), namespace)
            assert not meta.get("grade") or "not implemented yet" in printed.getvalue(), (name, meta["grade_id"])


def test_nbgrader_gives_the_solutions_full_marks_and_the_stubs_none(released):
    from nbgrader.api import Gradebook

    submitted = {"reference": released / "source", "stubs": released / "release"}
    for student, versions in submitted.items():
        for assignment in AUTOGRADED:
            target = released / "submitted" / student / assignment
            target.mkdir(parents=True)
            for notebook in (versions / assignment).glob("*.ipynb"):
                target.joinpath(notebook.name).write_bytes(notebook.read_bytes())
    _nbgrader(released, "autograde", "*")
    with Gradebook(f"sqlite:///{released / 'gradebook.db'}") as gradebook:
        for assignment in AUTOGRADED:
            source = _notebooks(released / "source")[assignment]
            checks = sum(_nbgrader_meta(c).get("points", 0) for c in source["cells"])
            reference = gradebook.find_submission(assignment, "reference")
            stubs = gradebook.find_submission(assignment, "stubs")
            assert reference.max_score == stubs.max_score == checks >= 2, assignment
            assert reference.score == checks, f"{assignment}: the solutions scored {reference.score} of {checks}"
            assert stubs.score == 0, f"{assignment}: the stubs scored {stubs.score}"
    for student in submitted:
        for assignment, notebook in _notebooks(released / "autograded" / student).items():
            for cell in notebook["cells"]:
                errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
                printed = "".join(_source({"source": o["text"]}) for o in cell.get("outputs", [])
                                  if o["output_type"] == "stream")
                where = f"{student}, {assignment}, {_nbgrader_meta(cell).get('grade_id')}"
                if student == "reference" or not _nbgrader_meta(cell).get("grade"):
                    assert not errors, f"{where}: {[(e['ename'], e['evalue']) for e in errors]}"
                    assert not _nbgrader_meta(cell).get("grade") or "✓" in printed, where
                else:  # a stub's check: the hint printed, then the cell failed with it
                    assert [e["ename"] for e in errors] == ["NotPassed"], where
                    assert "not implemented yet" in printed and "not implemented yet" in errors[0]["evalue"], where


def test_the_command_writes_the_course_and_keeps_an_existing_config(tmp_path):
    course = tmp_path / "course"
    done = subprocess.run([sys.executable, "-m", "ead_tutorial.nbgrader_edition", str(course),
                           "--book", str(sync_book.BOOK)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "assignments under" in done.stdout and (course / "nbgrader_config.py").read_text() == CONFIG
    assert (course / "source" / "ead-shrinkage" / "shrinkage.ipynb").exists()
    (course / "nbgrader_config.py").write_text("c = get_config()  # the instructor's own\n")
    write_nbgrader_edition(course, sync_book.BOOK)
    assert "instructor's own" in (course / "nbgrader_config.py").read_text()
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        write_nbgrader_edition(course, tmp_path / "nowhere")
