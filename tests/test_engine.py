"""The attack engine: abort-early rules, the reference options, exact shortcuts and pass counts."""

from pathlib import Path

import pytest
import torch
from torch import nn

from ead_tutorial.attacks import ConstantSearch, cw_l0, cw_l2, cw_linf, ead
from ead_tutorial.attacks.cw_l2_attack import restart_points
from ead_tutorial.attacks.ead_attack import momentum
from ead_tutorial.attacks.search import UNBOUNDED, BestSoFar, search_rounds
from ead_tutorial.attacks.stopping import EarlyStop, choose_rule

REFERENCE = Path(__file__).parent / "data" / "engine_reference.pt"


def engine_reference() -> Path:
    """The reference made on a CPU whose vector instructions torch uses as it does here, where there is one.

    Floating-point sums round differently under AVX2 and AVX-512 kernels, so a bit-for-bit
    reference holds only for the instruction set it was made with.
    """
    own = REFERENCE.with_name(f"engine_reference-{torch.backends.cpu.get_cpu_capability()}.pt")
    return own if own.exists() else REFERENCE


class Constant(nn.Module):
    """Logits that never change: every loss stalls from the first step."""

    def __init__(self, classes=3):
        super().__init__()
        self.layer = nn.Linear(4, classes)
        with torch.no_grad():
            self.layer.weight.zero_()
            self.layer.bias.copy_(torch.arange(classes, dtype=torch.float32))

    def forward(self, x):
        return self.layer(x.flatten(1))


def _stalled_rows(rows=3):
    model = Constant().eval()
    x = torch.full((rows, 4), 0.5)
    return model, x, torch.zeros(rows, dtype=torch.int64)  # class 0 never wins


def test_checks_fall_at_the_reference_iterations():
    stop = EarlyStop("loss", steps=1000, n_rows=1, device="cpu")
    assert [k for k in range(1000) if stop.due(k)] == list(range(0, 1000, 100))
    assert not EarlyStop(None, steps=1000, n_rows=1, device="cpu").due(0)


def test_the_first_check_never_stops_a_row():
    """The previous loss starts at +inf (C&W's current code; its older 1e6 would stop a loss of 1e7 at k = 0)."""
    stop = EarlyStop("loss", steps=100, n_rows=1, device="cpu")
    assert not stop.stalled(torch.tensor([1e7]), torch.zeros(1, dtype=torch.bool)).any()


def test_a_stalled_loss_stops_at_the_second_check():
    """Traced by hand: the check at k = 0 only records the loss, the one at k = I/10 stops the row."""
    stop = EarlyStop("loss", steps=1000, n_rows=2, device="cpu")
    no = torch.zeros(2, dtype=torch.bool)
    assert not stop.stalled(torch.tensor([5.0, 5.0]), no).any()  # k = 0
    assert stop.stalled(torch.tensor([5.0, 4.0]), no).tolist() == [True, False]  # k = 100


@pytest.mark.parametrize("attack", [cw_l2, ead])
def test_a_round_whose_loss_cannot_fall_ends_after_one_tenth(attack):
    """With I = 100, the rows stop at k = 10: 11 gradient passes per round (the old schedule took 20)."""
    model, x, targets = _stalled_rows()
    result = attack(model, x, targets, steps=100, search_steps=2, abort_early="loss")
    assert result.gradient_evaluations.tolist() == [22, 22, 22]
    assert not result.success.any()


def test_the_batch_rule_stops_every_row_together():
    model, x, targets = _stalled_rows()
    result = ead(model, x, targets, steps=100, search_steps=1, abort_early="batch-loss")
    assert result.gradient_evaluations.tolist() == [11, 11, 11]
    stop = EarlyStop("batch-loss", steps=100, n_rows=2, device="cpu")
    no = torch.zeros(2, dtype=torch.bool)
    stop.stalled(torch.tensor([5.0, 5.0]), no)
    assert not stop.stalled(torch.tensor([6.0, 3.0]), no).any()  # the sum fell: nobody stops
    assert stop.stalled(torch.tensor([6.0, 3.0]), no).all()


def test_until_success_stops_only_rows_that_have_not_succeeded():
    stop = EarlyStop("until-success", steps=100, n_rows=3, device="cpu")
    here = torch.tensor([True, False, False])
    stop.stalled(torch.tensor([9.0, 9.0, 9.0]), here)
    # Every loss stalled or rose except row 2's; row 0 has succeeded at this c and goes on.
    assert stop.stalled(torch.tensor([9.0, 10.0, 8.0]), here).tolist() == [False, True, False]


def test_ead_runs_a_successful_round_to_its_end():
    """A row that succeeds at once is never stopped by "until-success", though its loss never moves."""
    model, x, _ = _stalled_rows()
    targets = torch.full((3,), 2, dtype=torch.int64)  # class 2 already wins: success from the start
    patient = ead(model, x, targets, steps=100, search_steps=1, abort_early="until-success", true_labels=targets * 0)
    assert patient.success.all()
    assert patient.gradient_evaluations.tolist() == [100] * 3


def test_abort_early_names_its_rule():
    assert choose_rule(True, "until-success") == "until-success" and choose_rule(False, "loss") is None
    with pytest.raises(ValueError, match="batch-loss"):
        choose_rule("sometimes", "loss")


def test_the_last_round_tries_the_upper_bound_from_ten_rounds_on():
    for steps, expected in ((10, True), (9, False)):
        search = ConstantSearch.start(2, 1.0)
        tried = []
        for step in search_rounds(search, steps, None):
            tried.append(search.c.clone())
            search.update(torch.tensor([step == 0, False]))  # row 0 succeeds at c = 1 only, row 1 never
        last = tried[-1]
        assert (last[0].item() == 1.0) == expected  # else the midpoint, just below 1
        assert (last[1].item() == UNBOUNDED) == expected


def test_the_reference_momentum_is_one_step_ahead():
    assert momentum(0) == 0 and momentum(0, "reference") == pytest.approx(1 / 4)
    assert momentum(5, "reference") == pytest.approx(momentum(6))


def test_ball_restarts_stay_within_the_best_distance():
    images = torch.rand(5, 1, 4, 4)
    best = BestSoFar.start(images)
    best.distance = torch.tensor([0.5, 1.0, 0.1, float("inf"), 2.0])
    starts = restart_points(images, best, "ball", torch.Generator().manual_seed(0))
    distance = (starts - images).flatten(1).norm(dim=1)
    found = torch.isfinite(best.distance)
    assert (distance[found] <= best.distance[found] + 1e-6).all()
    assert starts.min() >= 0 and starts.max() <= 1
    assert (starts[3] - images[3]).abs().max() <= 0.1 + 1e-6  # no success yet: uniform noise


@pytest.fixture(scope="module")
def mnist_rows():
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.models import pretrained

    model = pretrained("mnist")
    x, y = sample_correct(model, 1, seed=5)
    images, targets, _ = with_all_targets(x, y)
    return model, images[:4], targets[:4]


def test_without_abort_early_the_engine_computes_what_it_did_before(mnist_rows):
    """Bit for bit: compacting rows, skipping checks and reusing ISTA's forward pass change nothing."""
    model, images, targets = mnist_rows
    reference = torch.load(engine_reference())
    runs = {
        "cw_l2": lambda: cw_l2(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False,
                               box="projected"),
        "cw_l2_tanh_restart": lambda: cw_l2(model, images, targets, search_steps=2, steps=80, initial_c=10.0,
                                            abort_early=False, restarts=1),
        "ead_en": lambda: ead(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False),
        "ead_l1": lambda: ead(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False,
                              rule="l1"),
        "ead_ista_l1": lambda: ead(model, images, targets, search_steps=3, steps=60, initial_c=1.0,
                                   abort_early=False, rule="l1", fista=False),
        "cw_l0": lambda: cw_l0(model, images, targets, steps=60, lr=0.05, initial_c=1.0, largest_c=4.0,
                               box="projected", abort_early=False, max_rounds=4),
        "cw_linf": lambda: cw_linf(model, images, targets, steps=60, lr=0.01, initial_c=0.1, largest_c=0.4,
                                   box="projected", abort_early=False, max_rounds=4),
    }
    for name, run in runs.items():
        result = run()
        expected = reference[name]
        assert torch.equal(result.adversarial, expected["adversarial"]), name
        assert torch.equal(result.success, expected["success"]), name
        assert torch.equal(result.c, expected["c"]), name
        assert torch.equal(result.gradient_evaluations, expected["evaluations"]), name


@pytest.mark.parametrize("rule", ["en", "l1"])
def test_skipping_checks_is_exact_and_saves_forward_passes(mnist_rows, rule):
    model, images, targets = mnist_rows
    options = dict(search_steps=2, steps=80, initial_c=1.0, rule=rule)
    checked = ead(model, images, targets, skip_checks=False, **options)
    skipped = ead(model, images, targets, skip_checks=True, **options)
    assert torch.equal(checked.adversarial, skipped.adversarial)
    assert torch.equal(checked.gradient_evaluations, skipped.gradient_evaluations)
    # Every gradient has its forward pass; each iterate one check; and one final check.
    assert torch.equal(checked.forward_passes, 2 * checked.gradient_evaluations + 1)
    assert (skipped.forward_passes <= checked.forward_passes).all()
    assert skipped.forward_passes.sum() < checked.forward_passes.sum()


def test_ista_needs_one_forward_pass_per_iteration(mnist_rows):
    model, images, targets = mnist_rows
    result = ead(model, images, targets, search_steps=2, steps=50, initial_c=1.0, fista=False, abort_early=False)
    # 50 gradient passes per round, the last iterate of each round judged once more, and the final check.
    assert result.gradient_evaluations.tolist() == [100] * 4
    assert result.forward_passes.tolist() == [100 + 2 + 1] * 4


def test_reference_removal_fixes_pixels_in_score_order_within_its_budget():
    from ead_tutorial.attacks.cw_l0_attack import reference_pixels_to_remove

    allowed = torch.ones(3, 1, 1, 100, dtype=torch.bool)
    delta = torch.full((3, 1, 1, 100), 0.5)  # 100 changed pixels: a budget of ceil(0.3 * 10) = 3
    scores = torch.arange(100.0).view(1, 1, 1, 100).repeat(3, 1, 1, 1) * 1e-4  # all below 0.01 ...
    scores[1, ..., 1:] += 0.02  # ... except row 1's, above 0.01 from the second on: its walk ends after two
    scores[2] += 1.0  # row 2: the first pixel is already above 0.01, and is fixed all the same
    fixed = reference_pixels_to_remove(allowed, delta, scores).flatten(1)
    assert fixed.sum(1).tolist() == [3, 2, 1]
    assert fixed[0, :3].all() and fixed[1, :2].all() and fixed[2, 0]
    # Unchanged pixels are walked too (they score 0, so first), and count toward the budget.
    delta[0, ..., :50] = 0
    scores = torch.where(delta == 0, 0.0, scores)
    fixed = reference_pixels_to_remove(allowed, delta, scores).flatten(1)
    assert fixed[0].sum() == 3 and not fixed[0, 50:].any()  # ceil(0.3 * sqrt(50)) = 3 of the unchanged


@pytest.mark.parametrize("reset", [True, False])
def test_tries_restart_from_the_round_start_only_when_asked(reset, monkeypatch):
    from ead_tutorial.attacks import cw_linf
    from ead_tutorial.box import ProjectedBox

    calls = []
    real = ProjectedBox.to_variable
    monkeypatch.setattr(ProjectedBox, "to_variable", staticmethod(lambda x: calls.append(len(x)) or real(x)))
    model, x, targets = _stalled_rows(rows=1)
    cw_linf(model, x, targets, steps=5, initial_c=1.0, largest_c=8.0, box="projected", abort_early=False,
            reset_between_tries=reset)
    # c = 1, 2, 4, 8 all fail: four tries, each started afresh only with reset_between_tries.
    assert sum(1 for rows in calls if rows) == (4 if reset else 1)


def test_the_reference_options_of_l0_and_linf_run(mnist_rows):
    model, images, targets = mnist_rows
    l0 = cw_l0(model, images[:2], targets[:2], steps=60, lr=0.05, initial_c=1.0, largest_c=4.0, box="projected",
               kappa=0.01, removal="reference", score="reference", reset_between_tries=False, abort_early=False,
               max_rounds=3)
    assert l0.success.all() and (l0.details["rounds"] == 3).all()
    linf = cw_linf(model, images[:2], targets[:2], steps=60, lr=0.01, initial_c=0.1, largest_c=0.4,
                   box="projected", acceptance="loss", reset_between_tries=False, max_rounds=3)
    assert linf.adversarial.min() >= 0 and linf.adversarial.max() <= 1


@pytest.mark.parametrize("attack", [cw_l2, ead, cw_linf])
def test_images_the_model_cannot_take_get_a_clear_error(mnist_rows, attack):
    model, images, targets = mnist_rows
    with pytest.raises(ValueError, match=r"cannot take images of shape \(4, 784\).*view\(-1, 1, 28, 28\)"):
        attack(model, images.flatten(1), targets, steps=1)


@pytest.mark.parametrize("attack", [cw_l2, ead, cw_l0, cw_linf])
@pytest.mark.parametrize("budget", [{"steps": 0}, {"steps": 2.5}, {"search_steps": 0}])
def test_a_budget_that_would_not_run_gets_a_clear_error(mnist_rows, attack, budget):
    """Zero iterations or rounds once returned every row as a silent failure."""
    model, images, targets = mnist_rows
    if "search_steps" in budget and attack in (cw_l0, cw_linf):
        pytest.skip("C&W L0 and L-infinity search c by doubling, with no search_steps")
    name, value = next(iter(budget.items()))
    with pytest.raises(ValueError, match=rf"{name} must be a whole number of at least 1, got {value}"):
        attack(model, images, targets, **budget)


@pytest.fixture(scope="module")
def mnist_images():
    from ead_tutorial.data import sample_correct
    from ead_tutorial.models import pretrained

    model = pretrained("mnist")
    x, y = sample_correct(model, 3, seed=7)
    return model, x, y


@pytest.mark.parametrize("attack, options", [
    (cw_linf, dict(steps=60, lr=0.01, initial_c=0.1, largest_c=0.8, box="projected", max_rounds=2)),
    (cw_l0, dict(steps=60, lr=0.05, initial_c=1.0, largest_c=4.0, box="projected", max_rounds=2)),
    (cw_l2, dict(search_steps=2, steps=60, initial_c=1.0, box="projected", kappa=2.0)),
    (ead, dict(search_steps=2, steps=60, initial_c=1.0, kappa=2.0)),
])
def test_untargeted_attacks_move_the_prediction_away_by_kappa(mnist_images, attack, options):
    model, x, y = mnist_images
    result = attack(model, x, y, targeted=False, **options)
    assert result.success.any() and not result.targeted
    with torch.no_grad():
        logits = model(result.adversarial)
    true = logits.gather(1, y[:, None]).squeeze(1)
    best_other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    kappa = options.get("kappa", 0.0)
    assert (best_other[result.success] - true[result.success] > kappa).all()
    assert (result.adversarial[~result.success] == x[~result.success]).all()


def _on_the_8_bit_lattice(images):
    return torch.equal(images, torch.round(images * 255) / 255)


def test_discretized_l0_examples_are_8_bit_and_still_succeed(mnist_rows):
    model, images, targets = mnist_rows
    result = cw_l0(model, images[:2], targets[:2], steps=60, lr=0.05, initial_c=1.0, largest_c=4.0,
                   box="projected", max_rounds=2, discretize=True)
    assert result.success.any() and _on_the_8_bit_lattice(result.adversarial)


def test_the_rounding_repair_keeps_an_untargeted_margin_of_kappa(mnist_images):
    model, x, y = mnist_images
    result = cw_l2(model, x, y, targeted=False, kappa=1.0, search_steps=2, steps=60, initial_c=1.0, box="projected",
                   discretize=True)
    assert result.success.any() and _on_the_8_bit_lattice(result.adversarial)
    with torch.no_grad():
        logits = model(result.adversarial)
    true = logits.gather(1, y[:, None]).squeeze(1)
    best_other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    assert (best_other[result.success] - true[result.success] > 1.0).all()


def test_cov_with_no_l1_weight_is_cw_l2_and_its_l1_weight_is_per_row(mnist_rows):
    """COV (the EAD paper's Table 1 baseline) is C&W L2 plus beta ||delta||_1: at beta = 0, C&W to the bit."""
    from ead_tutorial.attacks import cov

    model, images, targets = mnist_rows
    budget = dict(search_steps=2, steps=30, initial_c=1.0)
    reference, zero = cw_l2(model, images, targets, **budget), cov(model, images, targets, beta=0.0, **budget)
    assert torch.equal(reference.adversarial, zero.adversarial) and torch.equal(reference.success, zero.success)
    # One beta per row gives each row what it gets alone with that beta.
    betas = torch.tensor([0.0, 0.5, 0.0, 0.5])
    fast = dict(search_steps=1, steps=40, initial_c=10.0, lr=0.5, abort_early=False)  # rows 1 and 3 succeed
    mixed = cov(model, images, targets, beta=betas, **fast)
    plain = cov(model, images, targets, beta=0.0, **fast)
    heavy = cov(model, images, targets, beta=0.5, **fast)
    assert heavy.success[[1, 3]].all()
    for row, source in enumerate((plain, heavy, plain, heavy)):
        torch.testing.assert_close(mixed.adversarial[row], source.adversarial[row])
    assert not torch.equal(plain.adversarial, heavy.adversarial)  # and the L1 term does change the path
