"""EAD: the shrinkage-thresholding operator, the FISTA and step-size schedules, the decision rules."""

import pytest
import torch

from ead_tutorial.attacks import cw_l2, ead, shrink
from ead_tutorial.attacks.ead_attack import elastic_net, momentum, step_size
from ead_tutorial.data import sample_correct, with_all_targets


def brute_force_prox(z, x0, beta, points=200_001):
    """argmin over u in [0, 1] of (u - z)^2 / 2 + beta |u - x0|, on a fine grid, per element."""
    grid = torch.linspace(0, 1, points, dtype=torch.float64)
    objective = (grid[None, :] - z.flatten()[:, None]) ** 2 / 2 + beta * (grid[None, :] - x0.flatten()[:, None]).abs()
    return grid[objective.argmin(1)].view_as(z)


@pytest.mark.parametrize("beta", [0.0, 1e-3, 0.05, 0.3])
def test_shrink_is_the_proximal_operator(beta):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(400, generator=generator, dtype=torch.float64)
    x0[:40] = 0.0  # pixels at the box edges, as in MNIST
    x0[40:80] = 1.0
    z = x0 + 0.6 * (2 * torch.rand(400, generator=generator, dtype=torch.float64) - 1)
    torch.testing.assert_close(shrink(z, x0, beta), brute_force_prox(z, x0, beta), atol=1e-5, rtol=0)


def test_shrink_with_zero_beta_is_idempotent_inside_the_box():
    x0, z = torch.rand(3, 1, 5, 5), torch.rand(3, 1, 5, 5)
    once = shrink(z, x0, 0.0)
    torch.testing.assert_close(once, z)
    torch.testing.assert_close(shrink(once, x0, 0.0), once)


def test_shrink_takes_one_beta_per_row():
    x0 = torch.zeros(2, 1, 2, 2)
    z = torch.full((2, 1, 2, 2), 0.3)
    out = shrink(z, x0, torch.tensor([0.1, 0.5]))
    assert torch.allclose(out[0], torch.full((1, 2, 2), 0.2)) and torch.equal(out[1], x0[1])


def test_shrink_stays_in_the_box():
    x0 = torch.rand(1000)
    z = 3 * torch.randn(1000)
    out = shrink(z, x0, 0.01)
    assert out.min() >= 0 and out.max() <= 1


def test_fista_momentum_schedule():
    assert momentum(0) == 0
    assert momentum(1) == pytest.approx(1 / 4)
    assert momentum(7) == pytest.approx(0.7)
    weights = [momentum(k) for k in range(1000)]
    assert all(a < b < 1 for a, b in zip(weights, weights[1:]))


def test_square_root_step_size_schedule():
    assert step_size(0, 1000, 0.01) == pytest.approx(0.01)
    assert step_size(750, 1000, 0.01) == pytest.approx(0.005)
    assert step_size(999, 1000, 0.01) == pytest.approx(0.01 * (1 / 1000) ** 0.5)


def test_elastic_net_distance():
    delta = torch.tensor([[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(elastic_net(delta, 0.1), torch.tensor([0.1 * 1.0 + 0.5, 0.0]))


@pytest.fixture(scope="module")
def mnist_rows(shipped_model):
    x, y = sample_correct(shipped_model, 2, seed=0)
    images, targets, index = with_all_targets(x, y)
    return images, targets, y[index]


BUDGET = dict(search_steps=4, steps=300, initial_c=1.0)


@pytest.fixture(scope="module")
def results(shipped_model, mnist_rows):
    images, targets, labels = mnist_rows
    return {"cw": cw_l2(shipped_model, images, targets, true_labels=labels, box="projected", **BUDGET),
            "en": ead(shipped_model, images, targets, true_labels=labels, rule="en", **BUDGET),
            "l1": ead(shipped_model, images, targets, true_labels=labels, rule="l1", **BUDGET)}


def test_ead_has_lower_l1_than_cw(results):
    common = results["cw"].success & results["en"].success & results["l1"].success
    assert common.sum() >= 0.8 * len(common)
    for rule in ("en", "l1"):
        assert results[rule].norms["L1"][common].mean() < results["cw"].norms["L1"][common].mean()


def test_l1_rule_never_picks_a_larger_l1_than_the_en_rule(results):
    # Both runs follow the same iterates (the rule only chooses among them), so row by row
    # the L1 rule's choice has the least L1 of every successful iterate, the EN rule's included.
    both = results["en"].success & results["l1"].success
    assert torch.equal(results["en"].success, results["l1"].success)
    assert (results["l1"].norms["L1"][both] <= results["en"].norms["L1"][both] + 1e-4).all()


def test_ead_reaches_the_success_rate_of_cw(results):
    assert results["en"].success_rate >= results["cw"].success_rate
    assert results["l1"].success_rate >= results["cw"].success_rate


def test_ead_results_are_real_successes_in_the_box(shipped_model, results):
    for rule in ("en", "l1"):
        result = results[rule]
        assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
        with torch.no_grad():
            predicted = shipped_model(result.adversarial).argmax(1)
        assert (predicted[result.success] == result.labels[result.success]).all()


def test_untargeted_ead(shipped_model, mnist_rows):
    images, _, labels = mnist_rows
    result = ead(shipped_model, images[:4], labels[:4], targeted=False, **BUDGET)
    assert result.success.all()
    with torch.no_grad():
        assert (shipped_model(result.adversarial).argmax(1) != labels[:4]).all()


def test_larger_beta_gives_sparser_perturbations(shipped_model, mnist_rows):
    images, targets, _ = mnist_rows
    small = ead(shipped_model, images[:6], targets[:6], beta=1e-4, **BUDGET)
    large = ead(shipped_model, images[:6], targets[:6], beta=1e-2, **BUDGET)
    both = small.success & large.success
    assert both.sum() >= 4
    assert large.norms["L1"][both].mean() < small.norms["L1"][both].mean()


@pytest.mark.parametrize("skip_checks", [False, True], ids=["every verdict", "verdicts skipped"])
def test_one_run_for_both_rules_gives_each_rules_own_run(shipped_model, mnist_rows, results, skip_checks):
    """The iterates do not depend on the rule, so a joint run keeps what each rule's own run keeps,
    at the cost of one run."""
    images, targets, labels = mnist_rows
    both = ead(shipped_model, images, targets, true_labels=labels, rule=("en", "l1"), skip_checks=skip_checks, **BUDGET)
    assert set(both) == {"en", "l1"}
    for rule in ("en", "l1"):
        alone = results[rule] if skip_checks else ead(shipped_model, images, targets, true_labels=labels, rule=rule,
                                                      skip_checks=False, **BUDGET)
        assert torch.equal(both[rule].success, alone.success), rule
        torch.testing.assert_close(both[rule].adversarial, alone.adversarial, rtol=0, atol=1e-6)
        assert torch.equal(both[rule].gradient_evaluations, alone.gradient_evaluations), rule
    assert not torch.equal(both["en"].adversarial, both["l1"].adversarial)  # the rules keep different iterates


@pytest.mark.parametrize("option, value, words", [("rule", "l2", "decision rule"), ("rule", ("en", "en"), "decision rule"),
                                                  ("beta", -1.0, "non-negative"),
                                                  ("steps", -5, "non-negative"), ("initial_c", -1.0, "non-negative")])
def test_bad_settings_are_refused(shipped_model, mnist_rows, option, value, words):
    images, targets, _ = mnist_rows
    with pytest.raises(ValueError, match=words):
        ead(shipped_model, images, targets, **{option: value})


def test_bad_input_is_refused_as_in_cw(shipped_model, mnist_rows):
    images, targets, labels = mnist_rows
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ead(shipped_model, images * 3, targets)
    with pytest.raises(ValueError, match="equal"):
        ead(shipped_model, images, labels, true_labels=labels)
    with pytest.raises(ValueError, match="one value per row"):
        ead(shipped_model, images, targets, beta=torch.ones(3))
