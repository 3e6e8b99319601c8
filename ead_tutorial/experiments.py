"""The book's experiments by name: each takes a profile and returns ``(config, data)``.

Later chapters register their tables and figures here, so that
``python -m ead_tutorial.reproduce NAME --profile P`` can recompute any stored result.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from ead_tutorial import __version__
from ead_tutorial.devices import describe_hardware
from ead_tutorial.profiles import check_profile, pick
from ead_tutorial.store import StoredResult, save_result

Experiment = Callable[[str], tuple[dict[str, Any], dict[str, Any]]]
EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str) -> Callable[[Experiment], Experiment]:
    """Register a function ``profile -> (config, data)`` under ``name``."""

    def register(function: Experiment) -> Experiment:
        EXPERIMENTS[name] = function
        return function

    return register


@experiment("mnist-accuracy")
def mnist_accuracy(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test accuracy and confusion matrix of the shipped MNIST model."""
    from ead_tutorial.data import load_mnist, predict
    from ead_tutorial.models import pretrained

    n_images = pick(quick=2000, standard=10_000, paper=10_000, profile=profile)
    x, y = load_mnist("test", verbose=False)
    x, y = x[:n_images], y[:n_images]
    predicted = predict(pretrained("mnist"), x)
    confusion = torch.zeros(10, 10, dtype=torch.int64)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    config = {"model": "mnist", "split": "test", "n_images": n_images}
    data = {"accuracy": (predicted == y).float().mean().item(), "confusion": confusion.tolist()}
    return config, data


def run_experiment(name: str, profile: str, *, save: bool = True) -> StoredResult:
    """Run experiment ``name`` at ``profile``, timing it, and store the result unless ``save=False``."""
    if name not in EXPERIMENTS:
        raise KeyError(f"no experiment called {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    started = time.perf_counter()
    config, data = EXPERIMENTS[name](check_profile(profile))
    result = StoredResult(name=name, profile=profile, data=data, config=config, package_version=__version__,
                          torch_version=torch.__version__, hardware=describe_hardware(),
                          wall_time_s=round(time.perf_counter() - started, 1))
    if save:
        save_result(result)
    return result
