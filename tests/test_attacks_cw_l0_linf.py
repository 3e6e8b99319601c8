"""C&W's L0 and L-infinity attacks: their invariants, their strength on MNIST, and bad input."""

import pytest
import torch
from torch import nn

from ead_tutorial.attacks import cw_l0, cw_l2, cw_linf
from ead_tutorial.attacks.cw_l0_attack import pixel_scores, pixels_to_remove
from ead_tutorial.attacks.cw_linf_attack import tau_penalty
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.experiments import FAST_L0, FAST_LINF



@pytest.fixture(scope="module")
def rows(shipped_model):
    x, y = sample_correct(shipped_model, 2, seed=0)
    images, targets, index = with_all_targets(x, y)
    return images, targets, y[index]


@pytest.fixture(scope="module")
def l0_result(shipped_model, rows):
    images, targets, labels = rows
    return cw_l0(shipped_model, images, targets, true_labels=labels, record=True, **FAST_L0)


@pytest.fixture(scope="module")
def linf_result(shipped_model, rows):
    images, targets, labels = rows
    return cw_linf(shipped_model, images, targets, true_labels=labels, record=True, **FAST_LINF)


def _is_real_success(model, result):
    with torch.no_grad():
        predicted = model(result.adversarial).argmax(1)
    return bool((predicted[result.success] == result.labels[result.success]).all())


def test_l0_succeeds_on_at_least_90_percent(shipped_model, l0_result):
    assert l0_result.success_rate >= 90
    assert _is_real_success(shipped_model, l0_result)
    assert l0_result.adversarial.min() >= 0 and l0_result.adversarial.max() <= 1


def test_l0_mask_only_shrinks(l0_result):
    counts = torch.stack([mask.flatten(1).sum(1) for mask in l0_result.details["allowed_history"]])
    assert (counts[1:] <= counts[:-1]).all()
    masks = l0_result.details["allowed_history"]
    for before, after in zip(masks, masks[1:]):
        assert not (after & ~before).any()


def test_l0_changes_only_allowed_pixels(rows, l0_result):
    images = rows[0]
    changed = (l0_result.adversarial - images).abs().sum(1, keepdim=True) > 0
    assert not (changed & ~l0_result.details["answer_mask"]).any()
    # and the set of changeable pixels only shrank on the way to each answer
    assert not (l0_result.details["allowed"] & ~l0_result.details["answer_mask"]).any()


def test_l0_gradient_score_beats_random_elimination(shipped_model, rows, l0_result):
    images, targets, labels = rows
    random = cw_l0(shipped_model, images, targets, true_labels=labels, score="random", **FAST_L0)
    both = l0_result.success & random.success
    assert both.sum() >= 0.8 * len(both)
    assert l0_result.norms["L0"][both].mean() < random.norms["L0"][both].mean()


def test_pixels_to_remove_takes_negligible_and_lowest_scores():
    allowed = torch.ones(1, 1, 2, 3, dtype=torch.bool)
    allowed[0, 0, 1, 2] = False
    delta = torch.tensor([[[[0.0, 0.5, 0.2], [0.3, 1e-6, 0.9]]]])
    grad = torch.ones_like(delta)
    removed = pixels_to_remove(allowed, delta, pixel_scores(delta, grad, "gradient", None), pixels_per_round=1)
    expected = torch.tensor([[[[True, False, True], [False, True, False]]]])
    assert torch.equal(removed, expected)


def test_signed_score_ranks_the_most_helpful_pixel_lowest():
    delta = torch.tensor([[[[0.5, 0.1]]]])
    grad = torch.tensor([[[[-2.0, -0.1]]]])  # both changes lower f; the first by far more
    signed = pixel_scores(delta, grad, "signed", None).flatten()
    absolute = pixel_scores(delta, grad, "gradient", None).flatten()
    assert signed.argmin() == 0 and absolute.argmin() == 1


def test_linf_succeeds_on_at_least_90_percent(shipped_model, linf_result):
    assert linf_result.success_rate >= 90
    assert _is_real_success(shipped_model, linf_result)
    assert linf_result.adversarial.min() >= 0 and linf_result.adversarial.max() <= 1


def test_tau_only_shrinks(linf_result):
    taus = torch.stack(linf_result.details["tau_history"])
    assert (taus[1:] <= taus[:-1]).all()
    assert (linf_result.norms["Linf"][linf_result.success]
            < 1 / 0.9 * taus[-1][linf_result.success] + 1e-6).all()


def test_linf_attack_has_lower_linf_than_the_l2_attack(shipped_model, rows, linf_result):
    images, targets, labels = rows
    l2 = cw_l2(shipped_model, images, targets, true_labels=labels, steps=300, search_steps=4, initial_c=1.0,
               box="projected")
    both = linf_result.success & l2.success
    assert both.sum() >= 0.8 * len(both)
    assert linf_result.norms["Linf"][both].mean() < l2.norms["Linf"][both].mean()


def test_tau_penalty_charges_only_the_excess():
    delta = torch.tensor([[0.1, -0.4, 0.3], [0.0, 0.0, 0.0]])
    assert torch.allclose(tau_penalty(delta, torch.tensor([0.2, 0.2])), torch.tensor([0.3, 0.0]))


class Linear2(nn.Module):
    def __init__(self, dim=20):
        super().__init__()
        self.layer = nn.Linear(dim, 2)
        with torch.no_grad():
            self.layer.weight.copy_(torch.randn(2, dim, generator=torch.Generator().manual_seed(0)))
            self.layer.bias.zero_()

    def forward(self, x):
        return self.layer(x)


def test_linf_is_close_to_the_closed_form_minimum():
    model = Linear2().eval()
    x = 0.5 + 0.05 * torch.randn(6, 20, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    targets = 1 - logits.argmax(1)
    w = model.layer.weight.detach()
    direction = w[targets] - w[1 - targets]
    gap = (logits.gather(1, (1 - targets)[:, None]) - logits.gather(1, targets[:, None])).squeeze(1)
    optimum = gap / direction.abs().sum(1)  # smallest max-change that crosses the boundary (inside the box)
    result = cw_linf(model, x, targets, steps=1000, initial_c=0.1, largest_c=100.0, smallest_tau=1e-3)
    assert result.success.all()
    ratio = result.norms["Linf"] / optimum
    assert (ratio >= 1 - 1e-3).all() and (ratio < 1.15).all()


def _broken(kind, model, images, targets):
    if kind == "training":
        return model.train(), images, targets
    if kind == "pixels":
        return model, images * 2, targets
    if kind == "nan":
        return model, images.masked_fill(torch.zeros_like(images, dtype=torch.bool).index_fill_(0, torch.tensor([0]), True), float("nan")), targets
    return model, images, targets[:-1]


@pytest.mark.parametrize("attack", [cw_l0, cw_linf])
@pytest.mark.parametrize("kind, words", [("training", "training mode"), ("pixels", "[0, 1]"),
                                         ("nan", "NaN"), ("sizes", "shape")])
def test_bad_input_is_refused(shipped_model, rows, attack, kind, words):
    images, targets, _ = rows
    model, images, targets = _broken(kind, shipped_model, images.clone(), targets)
    try:
        with pytest.raises((ValueError, TypeError), match=words.replace("[", r"\[").replace("]", r"\]")):
            attack(model, images, targets, steps=1)
    finally:
        shipped_model.eval()


@pytest.mark.parametrize("attack", [cw_l0, cw_linf])
def test_a_target_equal_to_the_true_label_is_refused(shipped_model, rows, attack):
    images, targets, labels = rows
    with pytest.raises(ValueError, match="equal"):
        attack(shipped_model, images, labels, true_labels=labels, steps=1)


def test_l0_refuses_an_unknown_score_and_flat_inputs(shipped_model, rows):
    images, targets, _ = rows
    with pytest.raises(ValueError, match="score"):
        cw_l0(shipped_model, images, targets, score="best")
    with pytest.raises(ValueError, match="B x C x H x W"):
        cw_l0(Linear2().eval(), torch.rand(3, 20), torch.zeros(3, dtype=torch.int64))


def test_linf_refuses_a_tau_factor_that_does_not_shrink(shipped_model, rows):
    images, targets, _ = rows
    with pytest.raises(ValueError, match="tau_factor"):
        cw_linf(shipped_model, images, targets, tau_factor=1.0)


def test_peer_jsma_returns_real_successes(shipped_model, rows):
    from ead_tutorial.peers import art_jsma

    images, targets, _ = rows
    result = art_jsma(shipped_model, images[:4], targets[:4])
    assert _is_real_success(shipped_model, result)
    assert (result.norms["L0"][~result.success] == 0).all()
    assert (result.norms["L0"][result.success] <= 0.1 * 784 + 1).all()  # gamma = 0.1 caps the changed pixels
