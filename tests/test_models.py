import dataclasses
import json

import pytest
import torch

from ead_tutorial import models
from ead_tutorial.data import load_mnist
from ead_tutorial.models import train as train_module


def test_architecture_shapes_and_size():
    net = models.CWMnistNet()
    assert net(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    assert sum(p.numel() for p in net.parameters()) == 312_202


def test_shipped_model_accuracy_on_the_full_test_set(shipped_model, mnist_test):
    x, y = mnist_test
    assert len(y) == 10_000
    assert models.accuracy(shipped_model, x, y) >= 0.992


def test_pretrained_is_in_eval_mode_on_the_chosen_device():
    model = models.pretrained("mnist", device="cpu")
    assert not model.training
    assert next(model.parameters()).device == torch.device("cpu")


def test_unknown_weights_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="mnist"):
        models.pretrained("cifar-100")


def test_weights_with_a_wrong_digest_are_refused(monkeypatch):
    entry = models.WEIGHTS["mnist"]
    monkeypatch.setitem(models.WEIGHTS, "mnist", dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(RuntimeError, match="sha256"):
        models.pretrained("mnist")


def test_cuda_asked_for_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        models.pretrained("mnist", device="cuda")


def _small_training_set():
    x, y = load_mnist("train", verbose=False)
    return x[:640], y[:640]


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    x, y = _small_training_set()
    config = models.TrainConfig(epochs=3, seed=1)

    torch.manual_seed(0)
    unbroken = models.CWMnistNet()
    start = {k: v.clone() for k, v in unbroken.state_dict().items()}
    models.train_classifier(unbroken, x, y, config, checkpoint_dir=tmp_path / "a", device="cpu", progress=False)

    real_save, saves = torch.save, []

    def save_then_die(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:  # killed while writing the second epoch's checkpoint
            raise KeyboardInterrupt
        real_save(obj, path, *args, **kwargs)

    interrupted = models.CWMnistNet()
    interrupted.load_state_dict(start)
    monkeypatch.setattr(torch, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        models.train_classifier(interrupted, x, y, config, checkpoint_dir=tmp_path / "b", device="cpu",
                                progress=False)
    monkeypatch.setattr(torch, "save", real_save)

    resumed = models.CWMnistNet()  # a fresh process would start from new weights
    history = models.train_classifier(resumed, x, y, config, checkpoint_dir=tmp_path / "b", device="cpu",
                                      progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for p, q in zip(unbroken.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q)


def test_a_finished_run_extends_to_more_epochs_as_if_asked_for_them_at_the_start(tmp_path, capsys):
    x, y = _small_training_set()
    torch.manual_seed(0)
    start = models.CWMnistNet().state_dict()
    unbroken, short, extended = models.CWMnistNet(), models.CWMnistNet(), models.CWMnistNet()
    unbroken.load_state_dict(start), short.load_state_dict(start)
    models.train_classifier(unbroken, x, y, models.TrainConfig(epochs=3, seed=1), device="cpu", progress=False)
    models.train_classifier(short, x, y, models.TrainConfig(epochs=2, seed=1), checkpoint_dir=tmp_path,
                            device="cpu", progress=False)
    history = models.train_classifier(extended, x, y, models.TrainConfig(epochs=3, seed=1), checkpoint_dir=tmp_path,
                                      device="cpu", progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for p, q in zip(unbroken.parameters(), extended.parameters()):
        torch.testing.assert_close(p, q)
    # Another recipe (here the seed) never continues a checkpoint: training starts afresh.
    capsys.readouterr()
    models.train_classifier(models.CWMnistNet(), x, y, models.TrainConfig(epochs=1, seed=2), checkpoint_dir=tmp_path,
                            device="cpu", progress=False)
    assert "ignoring" in capsys.readouterr().out


def test_training_learns_and_accepts_soft_labels():
    x, y = _small_training_set()
    soft = torch.nn.functional.one_hot(y, 10).float() * 0.9 + 0.01
    net = models.CWMnistNet()
    history = models.train_classifier(net, x, soft, models.TrainConfig(epochs=4, lr=0.05, temperature=2.0),
                                      device="cpu", progress=False)
    assert history[-1]["loss"] < history[0]["loss"]


def test_the_training_command_writes_weights_and_a_record(tmp_path, mnist_test):
    out = tmp_path / "tiny.pt"
    train_module.main(["mnist", "--epochs", "1", "--train-size", "256", "--out", str(out)])
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["epochs"] == 1 and record["dataset"] == "mnist"
    net = models.CWMnistNet()
    net.load_state_dict(torch.load(out, weights_only=True))
    # The recorded accuracy is that of the written weights on the whole test set.
    assert record["test_accuracy"] == pytest.approx(models.accuracy(net.eval(), *mnist_test))
    assert (out.with_suffix(".ckpt") / "checkpoint.pt").exists()


def test_the_shipped_record_matches_the_shipped_file():
    from importlib import resources

    entry = models.WEIGHTS["mnist"]
    record = json.loads(resources.files("ead_tutorial.weights").joinpath("mnist.json").read_text())
    assert record["sha256"] == entry.sha256
    assert record["config"] == dataclasses.asdict(models.TrainConfig())  # the full C&W recipe


def test_the_small_relu_network_meets_its_record_and_its_stated_accuracy(mnist_test):
    """The exact-minimum chapter's network: 784-8-8-10, its record's accuracy, and at least 92%."""
    model = models.pretrained("mnist-small-relu", device="cpu")
    assert [p.shape for p in model.parameters()] == [(8, 784), (8,), (8, 8), (8,), (10, 8), (10,)]
    record = models.training_record("mnist-small-relu")
    measured = models.accuracy(model, *mnist_test)
    assert measured == pytest.approx(record["test_accuracy"]) and measured >= 0.92
    assert record["sha256"] == models.WEIGHTS["mnist-small-relu"].sha256
