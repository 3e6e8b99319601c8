"""Every test, the notebook tests included, runs at the quick profile on whatever device is present."""

import os

# Set before any notebook kernel starts, so the chapters under nbval see it too.
os.environ["EAD_TUTORIAL_PROFILE"] = "quick"
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


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
