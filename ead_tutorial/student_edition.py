"""Write the student edition of the book: every chapter notebook with its solutions taken out.

    python -m ead_tutorial.student_edition OUT_DIR [--book BOOK_DIR]

Run it from the repository root (or pass ``--book``). For each chapter notebook
(``book/**/*.ipynb``) it writes a copy under ``OUT_DIR`` in which

- every code cell tagged ``solution`` becomes a stub, tagged ``exercise``: its imports and the signature and
  docstring of each function it defines are kept, and each body becomes
  ``raise NotImplementedError(...)``; a name the solution assigns becomes ``name = ...``;
  a solution with neither (the worked answer to an open exercise) becomes a comment;
- every written solution (a markdown admonition or dropdown titled "Solution ...") is
  replaced by a line saying that the solution is in the instructor's edition.

The ``check_<name>(...)`` cells stay, so a student who runs a stub sees the check's
"not implemented yet" message, and a student who writes an answer sees a pass or a hint.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from pathlib import Path

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"  # what a solution cell is tagged once it is a stub
STUB_MESSAGE = "Exercise: replace this line with your code"
REMOVED_SOLUTION = "*The written solution is in the instructor's edition of this book.*"

# A MyST admonition or dropdown whose title begins with "Solution", fenced by ::: or by backticks.
_WRITTEN_SOLUTION = re.compile(
    r"^(?P<fence>:{3,}|`{3,})\{(?:admonition|dropdown)\}\s*Solution[^\n]*\n.*?^(?P=fence)[ \t]*$", re.M | re.S)


def stub_source(source: str) -> str:
    """The stub that replaces a solution cell's ``source`` (Python, as a string)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    imports: list[str] = []
    parts: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.get_source_segment(source, node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body_start = node.body[0]
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:  # keep the docstring: it states the task
                body_start = node.body[1] if len(node.body) > 1 else None
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            end = (body_start.lineno - 1) if body_start is not None else node.end_lineno
            header_lines = lines[first - 1:end]
            while header_lines and (not header_lines[-1].strip() or header_lines[-1].strip().startswith("#")):
                header_lines.pop()  # comments before the body belong to the solution: they may give it away
            header = "\n".join(header_lines).rstrip()
            indent = " " * (node.col_offset + 4)
            parts.append(f'{header}\n{indent}raise NotImplementedError("{STUB_MESSAGE}")')
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            parts += [f"{name} = ...  # your answer here" for name in names]
    if not parts:  # a worked solution to an open exercise: leave room for the student's own
        parts.append("# Your code here.")
    return "\n\n\n".join(["\n".join(imports)] * bool(imports) + parts) + "\n"


def strip_written_solutions(text: str) -> str:
    """``text`` (markdown) with every admonition or dropdown titled "Solution ..." replaced by a note."""
    return _WRITTEN_SOLUTION.sub(REMOVED_SOLUTION, text)


def student_notebook(notebook: dict) -> dict:
    """A copy of ``notebook`` (nbformat 4, as parsed JSON) with its solutions replaced."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            cell["source"] = stub_source(source)
            hidden = (SOLUTION_TAG, "hide-cell", "hide-input")
            cell["metadata"]["tags"] = [EXERCISE_TAG] + [t for t in cell["metadata"]["tags"] if t not in hidden]
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            cell["source"] = strip_written_solutions(source)
    return notebook


def default_book_dir() -> Path:
    """``book`` in the current directory, else beside the package in a source checkout."""
    for candidate in (Path.cwd() / "book", Path(__file__).resolve().parent.parent / "book"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no book/ folder found in the current directory or beside the package; run this "
                            "from the repository root, or pass --book PATH_TO_BOOK")


def write_student_edition(out_dir: Path, book_dir: Path | None = None) -> list[Path]:
    """Write the student edition of every notebook under ``book_dir`` into ``out_dir``; return the paths."""
    book_dir = Path(book_dir) if book_dir is not None else default_book_dir()
    notebooks = sorted(p for p in book_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise FileNotFoundError(f"no chapter notebooks (*.ipynb) under {book_dir}")
    written = []
    for path in notebooks:
        target = Path(out_dir) / path.relative_to(book_dir)
        write_notebook(target, student_notebook(json.loads(path.read_text(encoding="utf-8"))))
        written.append(target)
    return written


def write_notebook(target: Path, notebook: dict) -> None:
    """Write ``notebook`` (nbformat 4, as parsed JSON) to ``target``, creating its folder, as the book stores them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder to write the student notebooks into")
    parser.add_argument("--book", type=Path, default=None, help="the book's folder (default: ./book)")
    args = parser.parse_args(argv)
    written = write_student_edition(args.out_dir, args.book)
    print(f"wrote {len(written)} student notebooks under {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
