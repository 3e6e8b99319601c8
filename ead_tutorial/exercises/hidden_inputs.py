"""Small, seeded stand-ins that the hidden tests feed to answers: tiny classifiers, and one CPU thread."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def tiny_classifier(seed: int, side: int = 6, classes: int = 10, hidden: int | None = 16) -> nn.Module:
    """A seeded classifier of 1 x side x side images in eval mode, standing in for the C&W network.

    ``hidden=None`` makes it linear. Seeded by its own generator, so the global random state is untouched.
    """
    generator = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(side * side, classes)] if hidden is None else [
        nn.Linear(side * side, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
    model = nn.Sequential(nn.Flatten(), *layers)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model.eval()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run a small attack on one CPU thread: on tiny inputs more threads only add overhead, and on a
    busy machine they make it many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
