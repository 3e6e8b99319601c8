"""Adversarial training: label-corrected examples, crafted in resumable chunks, added to the training set."""

import torch

from ead_tutorial.attacks import cw_l2
from ead_tutorial.data import load_mnist
from ead_tutorial.models import CWMnistNet, TrainConfig
from ead_tutorial.models.adversarial import craft_training_examples, label_corrected, train_adversarial


def short_cw(model, images, targets, true_labels):
    return cw_l2(model, images, targets, box="projected", search_steps=2, steps=40, initial_c=10.0,
                 true_labels=true_labels)


def test_crafted_examples_carry_true_labels_and_lie_in_the_box(shipped_model):
    x, y = load_mnist("train", verbose=False)
    x, y = x[:3], y[:3]
    examples, labels = craft_training_examples(shipped_model, x, y, short_cw, chunk=2, progress=False)
    assert 0 < len(examples) <= 27 and examples.shape[1:] == x.shape[1:]
    assert examples.min() >= 0 and examples.max() <= 1
    # Each example keeps the label of the image it came from, and the model no longer predicts that label.
    assert set(labels.tolist()) <= set(y.tolist())
    assert (shipped_model(examples).argmax(1) != labels).all()


def test_label_corrected_keeps_only_successes(shipped_model):
    x, y = load_mnist("test", verbose=False)
    images, targets = x[:2], torch.tensor([(int(y[0]) + 1) % 10, (int(y[1]) + 1) % 10])
    result = short_cw(shipped_model, images, targets, y[:2])
    result.success[1] = False
    examples, labels = label_corrected(result, y[:2])
    assert len(examples) == int(result.success.sum()) and torch.equal(labels, y[:2][result.success])


def test_an_interrupted_crafting_run_resumes_without_attacking_finished_chunks(shipped_model, tmp_path):
    x, y = load_mnist("train", verbose=False)
    x, y = x[:4], y[:4]
    calls = []

    def counted(model, images, targets, true_labels):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second chunk
        return short_cw(model, images, targets, true_labels)

    try:
        craft_training_examples(shipped_model, x, y, counted, chunk=2, checkpoint_dir=tmp_path, progress=False)
    except KeyboardInterrupt:
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["chunk-0.pt"]
    calls.clear()
    resumed, labels = craft_training_examples(shipped_model, x, y, lambda *a: (calls.append(1), short_cw(*a))[1],
                                              chunk=2, checkpoint_dir=tmp_path, progress=False)
    assert len(calls) == 1  # only the unfinished chunk was attacked again
    unbroken, _ = craft_training_examples(shipped_model, x, y, short_cw, chunk=2, progress=False)
    torch.testing.assert_close(resumed, unbroken)


def test_adversarial_training_adds_the_examples_to_the_training_set(monkeypatch):
    from ead_tutorial.models import adversarial

    x, y = load_mnist("train", verbose=False)
    x, y = x[:256], y[:256]
    extra = [(x[:32].flip(-1), y[:32]), (x[:16].flip(-2), y[:16])]
    seen = {}

    def spy(model, inputs, labels, config, **kwargs):
        seen["inputs"], seen["labels"] = inputs, labels
        return real(model, inputs, labels, config, **kwargs)

    real = adversarial.train_classifier
    monkeypatch.setattr(adversarial, "train_classifier", spy)
    model, history = train_adversarial(CWMnistNet, x, y, extra, TrainConfig(epochs=1, batch_size=64), device="cpu",
                                       progress=False)
    assert not model.training and len(history) == 1
    assert len(seen["inputs"]) == 256 + 32 + 16
    torch.testing.assert_close(seen["inputs"][256:288], x[:32].flip(-1))
    assert torch.equal(seen["labels"][288:], y[:16])
