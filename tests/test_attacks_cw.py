import pytest
import torch
from torch import nn

from ead_tutorial import discretize
from ead_tutorial.attacks import AttackResult, ConstantSearch, cw_l2
from ead_tutorial.attacks.search import UNBOUNDED, BestSoFar
from ead_tutorial.objectives import margin, succeeded


class Linear2(nn.Module):
    """Z(x) = W x + b on flat inputs: the minimal L2 perturbation is known in closed form."""

    def __init__(self, dim=20, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.layer = nn.Linear(dim, 2)
        with torch.no_grad():
            self.layer.weight.copy_(torch.randn(2, dim, generator=generator))
            self.layer.bias.zero_()

    def forward(self, x):
        return self.layer(x.flatten(1))


def _linear_problem(rows=6, dim=20):
    model = Linear2(dim).eval()
    generator = torch.Generator().manual_seed(1)
    x = 0.5 + 0.05 * torch.randn(rows, dim, generator=generator)  # well inside the box
    with torch.no_grad():
        predicted = model(x).argmax(1)
    return model, x, 1 - predicted  # the other class is the target


def test_l2_distance_is_close_to_the_closed_form_minimum():
    model, x, targets = _linear_problem()
    w = model.layer.weight.detach()
    direction = w[targets] - w[1 - targets]  # grad of Z_t - Z_other
    with torch.no_grad():
        gap = -(model(x).gather(1, targets[:, None]).squeeze(1) - model(x).gather(1, (1 - targets)[:, None]).squeeze(1))
    optimum = gap / direction.norm(dim=1)  # distance to the decision boundary
    result = cw_l2(model, x, targets, steps=1000, search_steps=9, initial_c=1e-2)
    assert result.success.all()
    ratio = result.norms["L2"] / optimum
    assert (ratio >= 1 - 1e-4).all(), "no example can be closer than the boundary"
    assert (ratio <= 1.05).all(), ratio


def test_result_is_a_real_success_and_in_the_box(shipped_model):
    from ead_tutorial.data import sample_correct, with_all_targets

    x, y = sample_correct(shipped_model, 2, seed=0)
    images, targets, index = with_all_targets(x, y)
    images, targets = images[::3], targets[::3]  # 6 rows
    result = cw_l2(shipped_model, images, targets, steps=300, search_steps=4, initial_c=1.0, true_labels=y[index][::3])
    assert isinstance(result, AttackResult)
    assert result.success.any()
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    with torch.no_grad():
        logits = shipped_model(result.adversarial)
    assert torch.equal(succeeded(logits, targets), result.success)
    assert torch.equal(result.adversarial[~result.success], images[~result.success])  # failures: the original
    assert (result.gradient_evaluations > 0).all() and (result.gradient_evaluations <= 4 * 300).all()
    torch.testing.assert_close(result.norms["L2"], (result.adversarial - images).flatten(1).norm(dim=1))


def test_kappa_margin_is_met():
    model, x, targets = _linear_problem()
    result = cw_l2(model, x, targets, kappa=2.0, steps=500, search_steps=6, initial_c=1e-1)
    assert result.success.all()
    with torch.no_grad():
        assert (margin(model(result.adversarial), targets) < -2.0).all()


def test_untargeted_mode():
    model, x, targets = _linear_problem()
    true = 1 - targets
    result = cw_l2(model, x, true, targeted=False, steps=300, search_steps=5, initial_c=1e-1)
    assert result.success.all()
    with torch.no_grad():
        assert (model(result.adversarial).argmax(1) != true).all()


@pytest.mark.parametrize("box", ["projected", "clipped", "tanh"])
def test_every_box_keeps_pixels_valid(box):
    model, x, targets = _linear_problem()
    result = cw_l2(model, x, targets, box=box, steps=200, search_steps=4, initial_c=1e-1)
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    assert result.success.any()


def test_abort_early_saves_gradient_evaluations():
    model, x, targets = _linear_problem()
    patient = cw_l2(model, x, targets, steps=400, search_steps=3, abort_early=False)
    hasty = cw_l2(model, x, targets, steps=400, search_steps=3, abort_early=True)
    assert (patient.gradient_evaluations == 1200).all()
    assert (hasty.gradient_evaluations < 1200).any()


def test_search_invariants():
    search = ConstantSearch.start(4, 1e-3)
    generator = torch.Generator().manual_seed(0)
    tried = {i: [] for i in range(4)}
    for _ in range(12):
        success = torch.rand(4, generator=generator) < 0.5
        for i in range(4):
            tried[i].append((search.c[i].item(), bool(success[i])))
        before = search.c.clone()
        search.update(success)
        assert (search.lower <= search.upper).all()
        assert ((search.lower <= search.c) & (search.c <= search.upper)).all()
        grown = search.upper >= UNBOUNDED
        torch.testing.assert_close(search.c[grown], before[grown] * 10)
    for i in range(4):
        failures = [c for c, ok in tried[i] if not ok]
        successes = [c for c, ok in tried[i] if ok]
        assert search.lower[i].item() == pytest.approx(max(failures, default=0.0))
        assert search.upper[i].item() == pytest.approx(min(successes, default=UNBOUNDED))


def test_best_so_far_keeps_the_least_distance():
    images = torch.zeros(3, 2)
    best = BestSoFar.start(images)
    rows = torch.arange(3)
    best.update(rows, torch.ones(3, 2), torch.tensor([True, False, True]), torch.tensor([2.0, 1.0, 3.0]),
                torch.ones(3))
    best.update(rows[:2], torch.full((2, 2), 5.0), torch.tensor([True, True]), torch.tensor([4.0, 0.5]),
                torch.full((2,), 7.0))
    assert best.distance.tolist() == [2.0, 0.5, 3.0]
    assert best.c.tolist() == [1.0, 7.0, 1.0]
    assert best.adversarial[1].tolist() == [5.0, 5.0]


def test_discretized_results_are_valid_images_that_still_succeed(shipped_model):
    from ead_tutorial.data import sample_correct

    x, y = sample_correct(shipped_model, 3, seed=1)
    targets = (y + 1) % 10
    result = cw_l2(shipped_model, x, targets, steps=300, search_steps=4, initial_c=1.0, discretize=True)
    assert discretize.is_valid_image(result.adversarial)
    with torch.no_grad():
        assert torch.equal(succeeded(shipped_model(result.adversarial), targets), result.success)
    assert result.success.any()


def test_repair_fixes_what_rounding_broke(shipped_model):
    """Move examples back until they sit just past the boundary, so that rounding breaks many; the repair must fix all."""
    from ead_tutorial.data import sample_correct

    x, y = sample_correct(shipped_model, 8, seed=2)
    targets = (y + 3) % 10
    result = cw_l2(shipped_model, x, targets, steps=300, search_steps=5, initial_c=1.0)
    ok = result.success
    x, targets, delta = x[ok], targets[ok], (result.adversarial - x)[ok]
    low, high = torch.zeros(len(x)), torch.ones(len(x))  # bisect the scale of delta that still succeeds
    with torch.no_grad():
        for _ in range(20):
            middle = (low + high) / 2
            works = succeeded(shipped_model(x + middle.view(-1, 1, 1, 1) * delta), targets)
            high, low = torch.where(works, middle, high), torch.where(works, low, middle)
        edge = x + high.view(-1, 1, 1, 1) * delta
        assert succeeded(shipped_model(edge), targets).all()
        broken = ~succeeded(shipped_model(discretize.round_to_pixels(edge)), targets)
    assert broken.any(), "rounding examples on the boundary should break some"
    with torch.no_grad():  # as inside the attack's final step
        repaired, evaluations = discretize.repair_rounding(shipped_model, edge, targets,
                                                           torch.ones(len(x), dtype=torch.bool))
    assert discretize.is_valid_image(repaired)
    with torch.no_grad():
        assert succeeded(shipped_model(repaired), targets).all()
    assert (evaluations[~broken] == 0).all() and (evaluations[broken] > 0).all()


# --- bad input -----------------------------------------------------------------------------


def _valid():
    model, x, targets = _linear_problem()
    return model, x, targets


@pytest.mark.parametrize("change, error, words", [
    (lambda m, x, t: (m, x + 1, t), ValueError, "[0, 1]"),
    (lambda m, x, t: (m, x.masked_fill(torch.zeros_like(x, dtype=torch.bool).index_fill(1, torch.tensor([0]), True), float("nan")), t), ValueError, "NaN"),
    (lambda m, x, t: (m.train(), x, t), ValueError, "model.eval()"),
    (lambda m, x, t: (nn.Sequential(m, nn.Softmax(dim=1)).eval(), x, t), ValueError, "probabilities"),
    (lambda m, x, t: (m, x.double(), t), TypeError, "float64"),
    (lambda m, x, t: (m, x, t[:-1]), ValueError, "one per image"),
    (lambda m, x, t: (m, x[:0], t[:0]), ValueError, "non-empty"),
    (lambda m, x, t: (m, x, t.float()), TypeError, "int64"),
    (lambda m, x, t: (m, x, 1 - t), ValueError, "already predicts"),
    (lambda m, x, t: (m, (x * 255).to(torch.uint8), t), TypeError, "floating point"),
])
def test_bad_input_is_refused_with_the_fix(change, error, words):
    model, x, targets = change(*_valid())
    with pytest.raises(error, match=__import__("re").escape(words)):
        cw_l2(model, x, targets, steps=1, search_steps=1)


def test_a_target_equal_to_the_given_true_label_is_refused():
    model, x, targets = _valid()
    with pytest.raises(ValueError, match="true label"):
        cw_l2(model, x, targets, true_labels=targets, steps=1, search_steps=1)


@pytest.mark.parametrize("option", [dict(kappa=-1), dict(initial_c=-1e-3), dict(steps=-5), dict(search_steps=-1)])
def test_negative_settings_are_refused(option):
    model, x, targets = _valid()
    with pytest.raises(ValueError, match="non-negative"):
        cw_l2(model, x, targets, **option)


@pytest.mark.parametrize("option, words", [(dict(objective="f9"), "f6"), (dict(box="sigmoid"), "tanh"),
                                           (dict(optimizer="lbfgs"), "adam")])
def test_unknown_names_are_refused(option, words):
    model, x, targets = _valid()
    with pytest.raises(ValueError, match=words):
        cw_l2(model, x, targets, steps=1, search_steps=1, **option)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU to put the model elsewhere")
def test_model_and_images_on_different_devices():
    model, x, targets = _valid()
    with pytest.raises(ValueError, match="move them"):
        cw_l2(model.cuda(), x, targets, steps=1, search_steps=1)


def test_one_initial_c_per_row():
    model, x, targets = _linear_problem()
    per_row = torch.tensor([1e-3, 1e-3, 1e-3, 10.0, 10.0, 10.0])
    result = cw_l2(model, x, targets, search_steps=1, steps=200, initial_c=per_row)
    torch.testing.assert_close(result.c[result.success], per_row[result.success])
    assert result.success[3:].all()


def test_benchmark_reports_a_ratio_to_the_bare_pass():
    from ead_tutorial import bench

    model, x, targets = _linear_problem()
    timed = []
    real = bench._timed

    def spy(function, device):
        timed.append(real(function, device))
        return timed[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench, "_timed", spy)
        figures = bench.cost_per_iteration(model, x, targets, steps=5, repeats=1)
    # One timing of the bare passes and one of the attack, each divided by the 5 steps.
    bare, attack = timed
    assert figures["rows"] == len(x)
    assert figures["bare pass (ms)"] == pytest.approx(1e3 * bare / 5)
    assert figures["cw_l2 iteration (ms)"] == pytest.approx(1e3 * attack / 5)
    assert figures["ratio"] == pytest.approx(attack / bare)
