"""Every test, the notebook tests included, runs at the quick profile on whatever device is present."""

import os

# Set before any notebook kernel starts, so the chapters under nbval see it too.
os.environ["EAD_TUTORIAL_PROFILE"] = "quick"
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist each worker (and every kernel or build it starts) gets one thread:
# workers run side by side, and one thread each beats two workers fighting for all cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(items):
    """Put the website tests first: their executed build is the longest test, and under
    ``--dist loadfile`` files are handed to the workers in this order."""
    items.sort(key=lambda item: item.path.name != "test_website.py")


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
