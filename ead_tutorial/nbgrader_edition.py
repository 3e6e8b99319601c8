"""Write the book's self-checking exercises as an nbgrader course, in nbgrader's source format.

    python -m ead_tutorial.nbgrader_edition COURSE_DIR [--book BOOK_DIR]

Run it from the repository root (or pass ``--book``). It writes

- ``COURSE_DIR/source/<assignment>/<chapter>.ipynb``: one assignment per chapter with
  checked exercises, named after the chapter's path (``ead/shrinkage`` becomes the
  assignment ``ead-shrinkage`` with the notebook ``shrinkage.ipynb``). It holds the
  chapter's Colab install cell, any earlier cells of the chapter that the exercises use,
  and, for each exercise that has a check, its statement, its solution cell and its
  check cell. The chapter's experiments and its open exercises (proofs, questions about
  the chapter's own results) stay in the chapter, so an assignment runs in seconds.
- ``COURSE_DIR/nbgrader_config.py``, unless one is there already.

In each solution cell the function bodies (below the signature and docstring) sit
between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, so ``nbgrader generate_assignment``
releases the same stubs as the student edition. Each check cell becomes an autograded
test cell worth one point per check: it calls ``check_<name>(answer, strict=True)``,
which prints the usual pass or hint and then raises ``NotPassed`` unless the answer
passed. Every other cell is read-only.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import copy
import json
import re
import symtable
import sys
from pathlib import Path

from ead_tutorial.student_edition import SOLUTION_TAG, STUB_MESSAGE, default_book_dir, strip_written_solutions, write_notebook

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CALL = re.compile(r"\bcheck_(\w+)\(")
COLAB_INSTALL_TAG = "colab-install"
POINTS_PER_CHECK = 1
_EXERCISE_MARK = re.compile(r"^\*\*Exercise \d+\.\*\*", re.M)
_IPYTHON_NAMES = {"display", "get_ipython"}

CONFIG = f'''\
# nbgrader's settings for the exercises of the book, written by `python -m ead_tutorial.nbgrader_edition`.
# Run nbgrader from this folder: nbgrader generate_assignment ASSIGNMENT, then nbgrader autograde ASSIGNMENT.
c = get_config()  # noqa: F821

# What replaces each solution region in the release version: the student edition's stub.
c.ClearSolutions.code_stub = {{"python": '# YOUR CODE HERE\\nraise NotImplementedError("{STUB_MESSAGE}")'}}

# A few checks run small attacks; leave room for a busy grading machine (nbgrader's default is 30 s a cell).
c.Execute.timeout = 300
'''

INTRODUCTION = """\
# Exercises: {title}

This assignment holds the exercises with a check from the chapter "{title}"
(`{chapter}` in the book). For each one, write your answer in the cell below its
statement, in place of `raise NotImplementedError`, and run that cell; then run the
check below it. The check runs hidden tests on your answer and prints a pass, or a hint
that says what is wrong without giving the answer; here it also fails with an error
until your answer passes. Each check is worth {points}, and the grader runs the same
checks. The chapter's other exercises (proofs, and questions about the chapter's own
experiments) are answered in the chapter itself.
"""


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def as_python(source: str) -> str:
    """``source`` with IPython's magics and shell lines read as ``pass`` at the same indentation."""
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                     else line for line in source.splitlines())


def bound_names(source: str) -> set[str]:
    """The names a cell binds at the top level (assigned, imported, defined)."""
    table = symtable.symtable(as_python(source), "<cell>", "exec")
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}


def free_names(source: str) -> set[str]:
    """The global names a cell reads but does not bind: what it needs from earlier cells."""
    table = symtable.symtable(as_python(source), "<cell>", "exec")
    used: set[str] = set()

    def visit(scope: symtable.SymbolTable) -> None:
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (scope is table or symbol.is_global()):
                used.add(symbol.get_name())
        for child in scope.get_children():
            visit(child)

    visit(table)
    return used - bound_names(source) - set(dir(builtins)) - _IPYTHON_NAMES


def _header_end(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """The last line (1-based) of a function's signature and docstring: what the stub keeps."""
    if ast.get_docstring(node, clean=False) is not None:
        return node.body[0].end_lineno
    end = node.body[0].lineno - 1  # above the first statement, skipping comments and blank lines
    while end > node.lineno and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def mark_solution(source: str) -> str:
    """A solution cell's ``source`` with its solution regions between BEGIN and END SOLUTION.

    Imports stay; each function keeps its signature and docstring and its body becomes a
    region, as in the student edition's stubs. Any other top-level statement is a region
    of its own (nbgrader's stub raises there). A cell with none is one region.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    regions: list[tuple[int, int, str]] = []  # (first line, last line, indentation), 1-based
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            keep = _header_end(node, lines)
            if keep == node.lineno and node.body[0].lineno == node.lineno:
                raise ValueError(f"write the body of {node.name}() below its signature, not on the same line")
            if keep < node.end_lineno:
                regions.append((keep + 1, node.end_lineno, " " * (node.col_offset + 4)))
        else:
            first = node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno
            regions.append((first, node.end_lineno, " " * node.col_offset))
    if not regions:
        regions.append((1, len(lines), ""))
    for first, last, indent in reversed(regions):
        lines[first - 1:last] = [indent + BEGIN, *lines[first - 1:last], indent + END]
    return "\n".join(lines).rstrip() + "\n"


def strict_check(source: str) -> tuple[str, int]:
    """A check cell's ``source`` with ``strict=True`` in every ``check_<name>(...)`` call, and the number of calls."""
    tree = ast.parse(source)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id.startswith("check_")]
    lines = source.splitlines()
    for call in sorted(calls, key=lambda c: (c.end_lineno, c.end_col_offset), reverse=True):
        # end_col_offset counts UTF-8 bytes; the call ends with its closing parenthesis
        line = lines[call.end_lineno - 1].encode()
        close = call.end_col_offset - 1
        separator = ", " if call.args or call.keywords else ""
        lines[call.end_lineno - 1] = (line[:close] + f"{separator}strict=True".encode() + line[close:]).decode()
    return "\n".join(lines).rstrip() + "\n", len(calls)


def exercise_statement(markdown: str) -> str:
    """The statement of the exercise that a markdown cell ends with: its last ``**Exercise N.**`` paragraph on."""
    starts = [match.start() for match in _EXERCISE_MARK.finditer(markdown)]
    if not starts:  # no numbered statement: what follows the section's heading, if the cell has it
        starts = [match.end() for match in re.finditer(r"^## Exercises[^\n]*$", markdown, re.M)] or [0]
    statement = markdown[starts[-1]:]
    return strip_written_solutions(statement).strip() + "\n"


def chapter_title(notebook: dict) -> str:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^# (.+)$", _source(cell), re.M)
            if match:
                return match.group(1).strip()
    raise ValueError("the chapter has no title (a '# ' heading)")


def assignment_name(chapter: str) -> str:
    """nbgrader's name for a chapter's assignment: ``ead/shrinkage`` -> ``ead-shrinkage``."""
    return chapter.replace("/", "-")


def checked_exercises(cells: list[dict]) -> list[tuple[int, int]]:
    """(solution, check) cell indices: each code cell tagged ``solution`` whose next code cell calls a check."""
    code = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    return [(i, j) for i, j in zip(code, code[1:]) if SOLUTION_TAG in cells[i]["metadata"].get("tags", [])
            and CHECK_CALL.search(_source(cells[j]))]


def needed_cells(cells: list[dict], exercises: list[tuple[int, int]]) -> list[int]:
    """The earlier code cells of the chapter that the exercises read names from, directly or through each other.

    Each name comes from the last cell before its use that binds it; solution and check
    cells are never taken (an exercise's answer is no setup). Raises when no cell binds a name.
    """
    candidates = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"
                  and SOLUTION_TAG not in cell["metadata"].get("tags", []) and not CHECK_CALL.search(_source(cell))]
    kept = [index for pair in exercises for index in pair]
    needed: set[int] = set()
    todo = list(kept)
    while todo:
        index = todo.pop()
        source = _source(cells[index])
        bound_before = set().union(*(bound_names(_source(cells[k])) for k in kept if k < index))
        for name in sorted(free_names(source) - bound_before):
            sources = [k for k in candidates if k < index and name in bound_names(_source(cells[k]))]
            if not sources:
                raise ValueError(f"cell {index} reads {name!r}, which no earlier cell of the chapter defines")
            if sources[-1] not in needed:
                needed.add(sources[-1])
                todo.append(sources[-1])
    return sorted(needed)


def _nbgrader(grade_id: str, *, solution: bool = False, points: int | None = None) -> dict:
    meta = {"grade": points is not None, "grade_id": grade_id, "locked": not solution,
            "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def _cell(kind: str, source: str, grade_id: str, **nbgrader) -> dict:
    cell = {"cell_type": kind, "id": grade_id, "metadata": {"nbgrader": _nbgrader(grade_id, **nbgrader)},
            "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def nbgrader_notebook(notebook: dict, chapter: str) -> dict | None:
    """The source version of ``notebook``'s assignment (nbformat 4, as parsed JSON); None without checked exercises."""
    cells = notebook["cells"]
    exercises = checked_exercises(cells)
    if not exercises:
        return None
    title = chapter_title(notebook)
    points = f"{POINTS_PER_CHECK} point" + "s" * (POINTS_PER_CHECK != 1)
    introduction = INTRODUCTION.format(title=title, chapter=chapter, points=points)
    out = [_cell("markdown", introduction, "introduction")]
    install = [i for i, cell in enumerate(cells) if COLAB_INSTALL_TAG in cell["metadata"].get("tags", [])]
    setup = sorted(set(install[:1]) | set(needed_cells(cells, exercises)))
    out += [_cell("code", _source(cells[i]), f"setup-{number}") for number, i in enumerate(setup, 1)]
    for solution, check in exercises:
        names = CHECK_CALL.findall(_source(cells[check]))
        name = "-".join(names)
        before = cells[solution - 1]
        if before["cell_type"] == "markdown":
            out.append(_cell("markdown", exercise_statement(_source(before)), f"{name}-statement"))
        out.append(_cell("code", mark_solution(_source(cells[solution])), f"{name}-answer", solution=True))
        source, calls = strict_check(_source(cells[check]))
        out.append(_cell("code", source, f"{name}-check", points=POINTS_PER_CHECK * calls))
    metadata = {key: copy.deepcopy(notebook["metadata"][key])
                for key in ("kernelspec", "language_info") if key in notebook["metadata"]}
    return {"cells": out, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def write_nbgrader_edition(course_dir: Path, book_dir: Path | None = None) -> list[Path]:
    """Write the source version of every chapter's assignment, and nbgrader_config.py, into ``course_dir``.

    Returns the notebooks written.
    """
    book_dir = Path(book_dir) if book_dir is not None else default_book_dir()
    notebooks = sorted(p for p in book_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise FileNotFoundError(f"no chapter notebooks (*.ipynb) under {book_dir}")
    course_dir = Path(course_dir)
    written = []
    for path in notebooks:
        chapter = path.relative_to(book_dir).with_suffix("").as_posix()
        assignment = nbgrader_notebook(json.loads(path.read_text(encoding="utf-8")), chapter)
        if assignment is None:
            continue
        target = course_dir / "source" / assignment_name(chapter) / path.name
        write_notebook(target, assignment)
        written.append(target)
    config = course_dir / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG, encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("course_dir", type=Path, help="the nbgrader course folder to write into")
    parser.add_argument("--book", type=Path, default=None, help="the book's folder (default: ./book)")
    args = parser.parse_args(argv)
    written = write_nbgrader_edition(args.course_dir, args.book)
    print(f"wrote {len(written)} assignments under {args.course_dir / 'source'}; "
          f"next, from {args.course_dir}: nbgrader generate_assignment ASSIGNMENT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
