"""torchattacks' EAD behind our interface: real successes, honest norms, both rules."""

import pytest
import torch

from ead_tutorial import peers
from ead_tutorial.attacks import AttackResult
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.metrics import distortions

pytest.importorskip("torchattacks")


@pytest.fixture(scope="module")
def mnist_rows(shipped_model):
    x, y = sample_correct(shipped_model, 1, seed=0)
    images, targets, _ = with_all_targets(x, y)
    return images[:4], targets[:4]


@pytest.mark.parametrize("rule", ["en", "l1"])
def test_torchattacks_ead_returns_real_successes(shipped_model, mnist_rows, rule):
    images, targets = mnist_rows
    result = peers.torchattacks_ead(shipped_model, images, targets, rule=rule, search_steps=2, steps=50, initial_c=1.0)
    assert isinstance(result, AttackResult) and result.success.any()
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    with torch.no_grad():
        predicted = shipped_model(result.adversarial).argmax(1)
    assert (predicted[result.success] == targets[result.success]).all()
    assert torch.equal(result.adversarial[~result.success], images[~result.success])
    for name, value in distortions(result.adversarial, images).items():
        torch.testing.assert_close(result.norms[name], value)
    assert (result.gradient_evaluations == 2 * 50).all()


def test_torchattacks_ead_leaves_the_model_as_it_was(shipped_model, mnist_rows):
    images, targets = mnist_rows
    before = [(parameter.requires_grad, parameter.grad) for parameter in shipped_model.parameters()]
    peers.torchattacks_ead(shipped_model, images, targets, search_steps=1, steps=10, initial_c=1.0)
    after = [(parameter.requires_grad, parameter.grad) for parameter in shipped_model.parameters()]
    assert all(flag == flag_after and grad is grad_after
               for (flag, grad), (flag_after, grad_after) in zip(before, after))
    assert not shipped_model.training


def test_unknown_rule_is_refused(shipped_model, mnist_rows):
    with pytest.raises(ValueError, match="decision rule"):
        peers.torchattacks_ead(shipped_model, *mnist_rows, rule="l2")
