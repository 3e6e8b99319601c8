"""Keep the book's generated files in step with their sources.

    python tools/sync_book.py           # rewrite Colab cells and .ipynb twins
    python tools/sync_book.py book/ead/shrinkage.md   # only the chapters named
    python tools/sync_book.py --check   # report what is out of date, change nothing

- Every chapter's first code cell (tagged ``colab-install``) installs the package
  from the repository named in ``_config.yml``; this rewrites it to match.
- Every chapter's ``.ipynb`` twin is regenerated from its MyST ``.md`` source.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
COLAB_TAG = "colab-install"


def repository() -> tuple[str, str]:
    """The repository URL and branch named in ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return config["url"].rstrip("/"), config.get("branch", "main")


def install_target() -> str:
    """The pip requirement that installs the package from the repository."""
    url, branch = repository()
    return f"ead-tutorial @ git+{url}@{branch}"


def colab_cell_source() -> str:
    """The first code cell of every chapter: a no-op outside Colab."""
    return ("# In Colab, install this book's package (Colab's own torch is kept). Elsewhere, do nothing.\n"
            "import sys\n"
            "\n"
            'if "google.colab" in sys.modules:\n'
            f'    %pip install --quiet "{install_target()}"')


def chapters() -> list[Path]:
    """The MyST-notebook chapters: every .md under book/ with a kernelspec."""
    return sorted(path for path in BOOK.rglob("*.md") if "kernelspec:" in path.read_text().split("\n---", 1)[0])


def cell_summary(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """What must agree between a source and its twin: each cell's type, source and tags."""
    return [(cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", [])))
            for cell in notebook.cells]


def twin_is_current(source: Path) -> bool:
    twin = source.with_suffix(".ipynb")
    if not twin.exists():
        return False
    return cell_summary(jupytext.read(source)) == cell_summary(nbformat.read(twin, as_version=4))


def write_twin(source: Path) -> None:
    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)  # the twin is generated, not paired for editing
    for number, cell in enumerate(notebook.cells):  # stable ids, so unchanged cells give no diff
        cell.id = hashlib.sha1(f"{number}:{cell.source}".encode()).hexdigest()[:8]
    nbformat.write(notebook, source.with_suffix(".ipynb"))


def rewrite_colab_cell(source: Path) -> bool:
    """Make the chapter's colab-install cell match ``colab_cell_source()``; True if it changed."""
    text = source.read_text()
    pattern = re.compile(r"(```\{code-cell\}[^\n]*\n:tags: \[[^\]]*" + COLAB_TAG + r"[^\]]*\]\n\n)(.*?)(\n```)", re.S)
    new_text, count = pattern.subn(lambda m: m.group(1) + colab_cell_source() + m.group(3), text, count=1)
    if count == 0:
        raise ValueError(f"{source} has no code cell tagged {COLAB_TAG}")
    if new_text != text:
        source.write_text(new_text)
    return new_text != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if anything is stale")
    parser.add_argument("chapters", nargs="*", type=Path, help="chapter .md files (default: every chapter)")
    args = parser.parse_args(argv)
    stale = []
    selected = [path.resolve() for path in args.chapters] or chapters()
    for source in selected:
        if args.check:
            if not twin_is_current(source):
                stale.append(str(source.relative_to(ROOT)))
            continue
        rewrite_colab_cell(source)
        write_twin(source)
        print(f"wrote {source.with_suffix('.ipynb').relative_to(ROOT)}")
    for name in stale:
        print(f"stale twin: {name}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
