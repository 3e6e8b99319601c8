"""Find the exercises in the chapters: each solution cell and the check cell that follows it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext

from ead_tutorial.student_edition import SOLUTION_TAG
from tools import sync_book

CHECK_CALL = re.compile(r"\bcheck_(\w+)\(")


@dataclass(frozen=True)
class ExerciseCells:
    chapter: str   # path under book/ without suffix, e.g. "ead/shrinkage"
    solution: str  # the solution cell's source
    check: str     # the check cell's source
    names: tuple[str, ...]  # the exercises the check cell checks

    def __str__(self) -> str:
        return f"{self.chapter}:{'+'.join(self.names)}"


def chapter_name(source: Path) -> str:
    return str(source.relative_to(sync_book.BOOK).with_suffix(""))


def exercise_cells(cells: list[dict], chapter: str = "", tag: str = SOLUTION_TAG) -> list[ExerciseCells]:
    """Each code cell tagged ``tag`` paired with the next code cell, which must call a check."""
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    found = []
    for cell, following in zip(code, code[1:] + [None]):
        if tag not in cell["metadata"].get("tags", []):
            continue
        check = "".join(following["source"]) if following is not None else ""
        found.append(ExerciseCells(chapter, "".join(cell["source"]), check, tuple(CHECK_CALL.findall(check))))
    return found


def chapter_exercises(source: Path) -> list[ExerciseCells]:
    notebook = jupytext.read(source)
    return exercise_cells([dict(cell) for cell in notebook.cells], chapter_name(source))


def run_exercise(solution: str, check: str):
    """Run a solution cell, then its check cell, in a fresh namespace; return the check's value."""
    namespace: dict = {}
    exec(compile(solution, "<solution cell>", "exec"), namespace)
    tree = ast.parse(check)
    *body, last = tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), "<check cell>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<check cell>", "eval"), namespace)
