"""Every test, the notebook tests included, runs at the quick profile on whatever device is present."""

import os

# Set before any notebook kernel starts, so the chapters under nbval see it too.
os.environ["EAD_TUTORIAL_PROFILE"] = "quick"
# Under pytest-xdist each worker (and every kernel or build it starts) gets one thread:
# workers run side by side, and one thread each beats two workers fighting for all cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import copy  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# The tests' own figures draw off screen. Only this process: the chapters' kernels keep
# Jupyter's inline backend, so that their figures are outputs, as readers get them.
matplotlib.use("Agg")

# Each chapter that nbval runs whole and without error is written here, with its outputs, so
# that the website build in the same run (tests/test_website.py) shows those outputs instead
# of executing the chapter a second time. The folder is new for every run; the workers
# inherit it from the process that starts them.
EXECUTED_CHAPTERS = "EAD_TUTORIAL_EXECUTED_CHAPTERS"
if not os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ[EXECUTED_CHAPTERS] = tempfile.mkdtemp(prefix="executed-chapters-")
_chapter_runs: dict[str, dict] = {}


def pytest_unconfigure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ.pop(EXECUTED_CHAPTERS, ""), ignore_errors=True)


def pytest_collection_modifyitems(items):
    """Put the website tests last: under ``--dist loadfile`` files are handed to the workers
    in this order, so that by the time the site is built the chapters' notebook tests have
    run and left their outputs (a chapter still running is executed by the build itself)."""
    items.sort(key=lambda item: item.path.name == "test_website.py")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each nbval cell's outputs; once every code cell of a chapter has passed, write the executed chapter."""
    outcome = yield
    notebook = getattr(item, "parent", None)
    if call.when != "call" or not hasattr(item, "test_outputs") or not hasattr(notebook, "nb"):
        return
    run = _chapter_runs.setdefault(notebook.nodeid, {"failed": False, "outputs": {}})
    run["failed"] |= not outcome.get_result().passed
    run["outputs"][item.cell_num] = copy.deepcopy(item.test_outputs or [])
    code_cells = [cell for cell in notebook.nb.cells if cell.cell_type == "code"]
    if run["failed"] or len(run["outputs"]) < len(code_cells):
        return
    executed = copy.deepcopy(notebook.nb)
    for count, cell in enumerate((cell for cell in executed.cells if cell.cell_type == "code"), 1):
        cell.outputs, cell.execution_count = run["outputs"][count - 1], count
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
    folder = Path(os.environ[EXECUTED_CHAPTERS])
    target = folder / (notebook.nodeid.replace("/", "__"))
    partial = target.with_suffix(".partial")
    nbformat.write(executed, partial)
    partial.replace(target)  # whole or absent, never half written


@pytest.fixture(scope="session")
def mnist_test():
    from ead_tutorial.data import load_mnist

    return load_mnist("test", verbose=False)


@pytest.fixture(scope="session")
def shipped_model():
    from ead_tutorial.models import pretrained

    return pretrained("mnist")


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
