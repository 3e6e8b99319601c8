"""Defensive distillation: the loss at temperature T, the soft labels, and the two-stage training."""

import math

import pytest
import torch
import torch.nn.functional as F

from ead_tutorial.models import TrainConfig
from ead_tutorial.models.architectures import CWMnistNet
from ead_tutorial.models.distill import distill, distillation_loss, glorot_initialised, soft_labels


def test_distillation_loss_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    targets = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    temperature = 2.0
    # softmax([1, 0]) = [e/(e+1), 1/(e+1)]; softmax([0, 2]) = [1/(1+e^2), e^2/(1+e^2)]
    e = math.e
    row_1 = -(0.75 * math.log(e / (e + 1)) + 0.25 * math.log(1 / (e + 1)))
    row_2 = -(0.5 * math.log(1 / (1 + e**2)) + 0.5 * math.log(e**2 / (1 + e**2)))
    assert distillation_loss(logits, targets, temperature).item() == pytest.approx((row_1 + row_2) / 2, rel=1e-6)


def test_training_minimises_the_distillation_loss():
    """train_classifier's loss on soft labels at T is the distillation loss at T (not at 1)."""
    from ead_tutorial.models import train_classifier

    torch.manual_seed(0)
    x, soft = torch.rand(16, 1, 28, 28), F.softmax(3 * torch.randn(16, 10), dim=1)
    net = glorot_initialised(CWMnistNet())
    config = TrainConfig(epochs=1, batch_size=16, lr=0.0, temperature=7.0)  # lr 0: the network stays put
    history = train_classifier(net, x, soft, config, device="cpu", progress=False)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(config.seed))
    net.train()
    torch.manual_seed(config.seed)  # the same dropout masks as the epoch
    expected = distillation_loss(net(x[order]), soft[order], 7.0).item()
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-5)
    at_one = distillation_loss(net(x[order]), soft[order], 1.0).item()
    assert abs(at_one - expected) > 1e-3  # the check can tell the temperatures apart


def test_soft_labels_are_distributions_that_soften_with_temperature():
    teacher = glorot_initialised(CWMnistNet()).eval()
    x = torch.rand(20, 1, 28, 28)
    cold, hot = soft_labels(teacher, x, 1.0, batch_size=7), soft_labels(teacher, x, 100.0, batch_size=7)
    for labels in (cold, hot):
        assert labels.shape == (20, 10) and (labels >= 0).all()
        torch.testing.assert_close(labels.sum(1), torch.ones(20))
    # A higher temperature spreads the probability: the largest one shrinks toward 1/10.
    assert (hot.amax(1) < cold.amax(1)).all()
    entropy = lambda p: -(p * p.log()).sum(1)  # noqa: E731
    assert (entropy(hot) > entropy(cold)).all()


def test_glorot_initialisation():
    model = glorot_initialised(CWMnistNet())
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
            assert layer.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out))
            assert (layer.bias == 0).all()


def test_distill_trains_a_teacher_and_a_student_and_resumes(tmp_path, mnist_test, monkeypatch):
    x, y = mnist_test
    x, y = x[:256], y[:256]
    config = TrainConfig(epochs=1, batch_size=64)
    teacher, student, histories = distill(CWMnistNet, x, y, 10.0, config, checkpoint_dir=tmp_path, progress=False)
    assert not teacher.training and not student.training
    assert len(histories["teacher"]) == len(histories["student"]) == 1
    assert (tmp_path / "teacher" / "checkpoint.pt").exists() and (tmp_path / "student" / "checkpoint.pt").exists()
    # Both stages trained at T, not at 1.
    state = torch.load(tmp_path / "student" / "checkpoint.pt", weights_only=True)
    assert state["config"]["temperature"] == 10.0
    # A rerun resumes from the checkpoints: same weights, and not one optimiser step.
    steps = []
    original_step = torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: steps.append(1) or original_step(self, *a, **k))
    _, again, _ = distill(CWMnistNet, x, y, 10.0, config, checkpoint_dir=tmp_path, progress=False)
    assert steps == []
    for a, b in zip(student.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_temperature_below_one_is_refused(mnist_test):
    x, y = mnist_test
    with pytest.raises(ValueError, match="at least 1"):
        distill(CWMnistNet, x[:8], y[:8], 0.5)
