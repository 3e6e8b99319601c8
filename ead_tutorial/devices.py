"""Where tensors live: the GPU when there is one, else the CPU."""

from __future__ import annotations

import torch


def device(preferred: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    ``preferred`` (e.g. ``"cpu"`` or ``"cuda:1"``) wins when given; otherwise
    CUDA when available, else the CPU. Every chapter and test calls this, so
    they run unchanged on a GPU.
    """
    if preferred is not None:
        chosen = torch.device(preferred)
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {chosen} was asked for, but CUDA is not available here; "
                               "pass device='cpu' or leave it out to pick automatically")
        return chosen
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_hardware() -> str:
    """A one-line description of the compute device, for provenance records."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name()}"
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:  # Linux names the processor model here
        with open("/proc/cpuinfo") as info:
            name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {name}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
