"""Loading the weights that ship with the package, after checking their sha256."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources
from pathlib import Path

import torch

from ead_tutorial.devices import device as pick_device
from ead_tutorial.models.architectures import ARCHITECTURES


@dataclasses.dataclass(frozen=True)
class Weights:
    """One shipped weights file and how it was made."""

    architecture: str
    file: str
    sha256: str
    command: str


DISTILLED_PREFIX = "mnist-distilled-T"


def _student(temperature: int, sha256: str, epochs: int | None = None) -> tuple[str, Weights]:
    """The entry of the student distilled at ``temperature`` (teacher and student ``epochs`` each;
    None: the published recipe's 50), named and built by ``python -m ead_tutorial.models.distill``."""
    name = f"{DISTILLED_PREFIX}{temperature}"
    command = f"python -m ead_tutorial.models.distill --temperature {temperature}"
    return name, Weights(architecture="mnist", file=f"{name}.pt", sha256=sha256,
                         command=command if epochs is None else f"{command} --epochs {epochs}")


WEIGHTS: dict[str, Weights] = {
    # C&W's full recipe (50 epochs, seed 0); test accuracy 99.39%. Record: mnist.json.
    "mnist": Weights(architecture="mnist", file="mnist.pt",
                     sha256="3d0da37f230eaf9d64e99552f79cdc1207f60203254897b1035038e68fd5fdf4",
                     command="python -m ead_tutorial.models.train mnist"),
    # A 784-8-8-10 ReLU network for the exact-minimum chapter (20 epochs); record: mnist-small-relu.json.
    "mnist-small-relu": Weights(architecture="mnist-small-relu", file="mnist-small-relu.pt",
                                sha256="f687b5034c37c92cc5dd23e952102dac8866c69ae0bd1bc79f349e099f23a750",
                                command="python -m ead_tutorial.models.train mnist-small-relu --epochs 20"),
    # The distilled students; each one's record (mnist-distilled-T<T>.json) gives its accuracy and training.
    **dict([
        _student(1, "3899530b759ef5bd6b74c692326e6f75757094053fa78eb3e1ec8ad2953f1400"),
        _student(10, "e8ff72772d848668da4732742e2456411c641af3e04538740d02f2ed9eaf5d62"),
        _student(20, "c675ce6aa9c260777c0fa288474552a4405fb76126d52e23168a713e8f7d86b2"),
        _student(30, "25241c0e0305a4c7130b4a0b7dcf6fb50ba9f12b1af6e5d89755b3e63c33877b"),
        _student(40, "d057ef48948493b6ada3965c30e469bdf3d9283be605fd262a9919151764313f"),
        _student(50, "00ed48e52f4b7e28dd43fea621270c1a2d2afae9d7ea29ec8398351b301a04b5"),
        _student(60, "488de03724212dfdfe579af203c4af002fc4ccdc22f48e51e0cfbc0c3f5e9937"),
        _student(70, "1a6e7cab23c8980e94c3cc021cf3382d40167ab8e0bdc973ecaa7b1a3dd8e3e1"),
        _student(80, "46cd5859c211ae440ab7735329bef9494df8d2cb319d8b44b22122f00bd3f18f"),
        _student(90, "a933fa5bcd0b8eea1dd6785ea2c122ffa6b495887f5ba159c076c58d64c60c4d"),
        _student(100, "800ef64268c5794fa939efb81354e92f7ef54abd546b3b581e56f07a2341ab17"),
    ]),
}


def pretrained(name: str = "mnist", device: str | torch.device | None = None) -> torch.nn.Module:
    """The shipped model ``name``, in eval mode, on ``device`` (default: the best available).

    The file's sha256 is checked before ``torch.load(..., weights_only=True)``.
    """
    if name not in WEIGHTS:
        raise KeyError(f"no shipped weights called {name!r}; known names: {', '.join(sorted(WEIGHTS))}")
    entry = WEIGHTS[name]
    blob = resources.files("ead_tutorial.weights").joinpath(entry.file).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != entry.sha256:
        raise RuntimeError(f"weights file {entry.file} has sha256 {digest}, expected {entry.sha256}; "
                           f"reinstall the package, or rebuild the file with `{entry.command}`")
    import io

    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    model = ARCHITECTURES[entry.architecture]()
    model.load_state_dict(state)
    return model.to(pick_device(device)).eval()




def distilled_temperatures() -> list[float]:
    """The temperatures T of the shipped distilled students, ascending.

    Load one with ``pretrained(f"mnist-distilled-T{T:g}")``.
    """
    return sorted(float(name[len(DISTILLED_PREFIX):]) for name in WEIGHTS if name.startswith(DISTILLED_PREFIX))


def training_record(name: str) -> dict:
    """The JSON record written beside the shipped weights ``name``: its recipe, command, accuracy and history."""
    if name not in WEIGHTS:
        raise KeyError(f"no shipped weights called {name!r}; known names: {', '.join(sorted(WEIGHTS))}")
    record = Path(WEIGHTS[name].file).with_suffix(".json").name
    return json.loads(resources.files("ead_tutorial.weights").joinpath(record).read_text())
