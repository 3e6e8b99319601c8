import math

import pytest
import torch

from ead_tutorial import objectives


def _random_logits(n=4000, k=10, scale=4.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=generator) * scale
    labels = torch.randint(k, (n,), generator=generator)
    return logits, labels


def _wins(logits, labels):
    return logits.argmax(1) == labels


@pytest.mark.parametrize("name", objectives.EXACT)
@pytest.mark.parametrize("targeted", [True, False])
def test_exact_objectives_meet_the_requirement_both_ways(name, targeted):
    logits, labels = _random_logits()
    value = objectives.OBJECTIVES[name](logits, labels, targeted=targeted)
    succeeded = _wins(logits, labels) if targeted else ~_wins(logits, labels)
    assert torch.equal(value <= 0, succeeded)


@pytest.mark.parametrize("name", ["f1", "f4", "f5"])
def test_probability_threshold_objectives_hold_one_way_only(name):
    logits, labels = _random_logits()
    value = objectives.OBJECTIVES[name](logits, labels)
    probability = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    assert torch.equal(value <= 0, probability >= 0.5)
    # f <= 0 implies the target wins ...
    assert _wins(logits, labels)[value <= 0].all()
    # ... but the target can win with F_t < 1/2, where f > 0: the converse fails.
    assert (_wins(logits, labels) & (value > 0)).any()


def test_printed_f1_has_the_wrong_sign():
    logits, labels = _random_logits()
    value = objectives.printed_f1(logits, labels)
    probability = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    assert torch.equal(value <= 0, probability <= 1 / math.e)
    assert (_wins(logits, labels) & (value > 0)).any()  # a success that the printed f1 calls a failure


def test_printed_f5_is_never_finite():
    logits, labels = _random_logits()
    assert objectives.printed_f5(logits, labels).isnan().all()
    certain = torch.tensor([[100.0, 0.0]])  # F_t rounds to exactly 1
    assert objectives.printed_f5(certain, torch.tensor([0])).isinf().all()


def test_f6_kappa_is_the_floor_and_the_margin():
    logits = torch.tensor([[5.0, 1.0, 0.0], [0.0, 3.0, 2.5]])
    labels = torch.tensor([0, 1])
    # margins: max_other - Z_t = 1 - 5 = -4 and 2.5 - 3 = -0.5
    torch.testing.assert_close(objectives.f6(logits, labels), torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(objectives.f6(logits, labels, kappa=2.0), torch.tensor([-2.0, -0.5]))
    # untargeted (EAD eq. 6): Z_y - max_other, floored at -kappa
    torch.testing.assert_close(objectives.f6(logits, labels, kappa=10.0, targeted=False), torch.tensor([4.0, 0.5]))


@pytest.mark.parametrize("name", ["f2", "f3", "f6", "f7"])
def test_kappa_demands_a_margin(name):
    logits, labels = _random_logits()
    kappa = 0.3 if name in ("f2", "f3") else 2.0
    value = objectives.OBJECTIVES[name](logits, labels, kappa=kappa)
    values = logits.softmax(1) if name in ("f2", "f3") else logits
    margin = objectives.margin(values, labels)
    reached = value <= -kappa if name in ("f2", "f6") else value <= 0
    assert torch.equal(reached, margin <= -kappa)


def test_every_objective_is_differentiable_and_finite():
    logits, labels = _random_logits(64)
    for name, objective in objectives.OBJECTIVES.items():
        z = logits.clone().requires_grad_()
        objective(z, labels, kappa=1.0).sum().backward()
        assert torch.isfinite(z.grad).all(), name


def test_unknown_objective():
    with pytest.raises(ValueError, match="f1, f2"):
        objectives.get_objective("f8")
