"""The self-checking exercises: every chapter has them, every check accepts the chapter's
reference solution, rejects plausible wrong answers, and answers an unfinished one with a
message instead of a crash.

Wrong answers live in ``tests/exercise_answers_<part>.py``, as ``WRONG = {name: [answer, ...]}``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from ead_tutorial.exercises import EXERCISES, Outcome
from exercise_cells import chapter_exercises, chapter_name, run_exercise
from tools import sync_book

CHAPTERS = sync_book.chapters()
CELLS = [cells for source in CHAPTERS for cells in chapter_exercises(source) if cells.names]


def _wrong_answers() -> dict[str, list]:
    wrong: dict[str, list] = {}
    for path in sorted(Path(__file__).parent.glob("exercise_answers_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, answers in module.WRONG.items():
            wrong.setdefault(name, []).extend(answers)
    return wrong


WRONG = _wrong_answers()


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_at_least_two_checked_exercises(source):
    names = {name for cells in chapter_exercises(source) for name in cells.names}
    registered = {e.name for e in EXERCISES.values() if e.chapter == chapter_name(source)}
    assert len(names) >= 2, f"{source.name} has {len(names)} checked exercises; it needs two or more"
    assert names == registered, f"checks used in {source.name} {sorted(names)} != registered {sorted(registered)}"


def test_every_check_called_after_a_solution_exists():
    # A solution cell followed by no check is the worked answer to an open exercise.
    for cells in CELLS:
        assert all(name in EXERCISES for name in cells.names), f"{cells}: unknown check"


def test_every_exercise_appears_in_one_chapter_only():
    used = [name for cells in CELLS for name in cells.names]
    assert len(used) == len(set(used)), "an exercise is checked in more than one place"
    assert set(used) == set(EXERCISES), f"registered but never used: {sorted(set(EXERCISES) - set(used))}"


@pytest.mark.parametrize("cells", CELLS, ids=str)
def test_reference_solution_passes(cells, capsys):
    outcome = run_exercise(cells.solution, cells.check)
    printed = capsys.readouterr().out
    assert isinstance(outcome, Outcome), "the check cell must end with the check call"
    assert outcome.passed, printed
    assert "✓" in printed


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_check_rejects_wrong_answers(name, capsys):
    assert WRONG.get(name), f"give at least one plausible wrong answer to {name!r} in tests/exercise_answers_*.py"
    for answer in WRONG[name]:
        outcome = EXERCISES[name].check(answer)
        assert not outcome.passed, f"check_{name} accepted a wrong answer: {answer}"
        assert "Hint" in outcome.message or "raised" in outcome.message, outcome.message


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_unfinished_answer_gets_a_message_not_a_crash(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise: replace this line with your code")

    outcome = EXERCISES[name].check(stub)
    assert not outcome.passed and "not implemented yet" in outcome.message, outcome.message
    outcome = EXERCISES[name].check(...)
    assert not outcome.passed and "no answer yet" in outcome.message


def test_a_check_never_prints_more_than_one_line(capsys):
    EXERCISES["median_shrink"].check(lambda z, x0, beta: z)
    assert capsys.readouterr().out.count("\n") == 1


def test_the_instructors_page_lists_every_exercise():
    text = (sync_book.BOOK / "instructors.md").read_text()
    listed = {}
    for chapter, checks in re.findall(r"^\| \{doc\}`([^`]+)` \| (`check_.*) \|$", text, re.M):
        listed[chapter] = re.findall(r"`check_(\w+)`", checks)
    registered: dict[str, list[str]] = {}
    for exercise in EXERCISES.values():
        registered.setdefault(exercise.chapter, []).append(exercise.name)
    assert {c: sorted(n) for c, n in listed.items()} == {c: sorted(n) for c, n in registered.items()}, (
        "update the table of exercises in book/instructors.md")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_a_result_instead_of_a_function_gets_a_hint(name, capsys):
    outcome = EXERCISES[name].check(0.5)
    assert not outcome.passed and f"pass your function itself, e.g. check_{name}(" in outcome.message
