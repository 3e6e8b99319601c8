"""Exercises for the chapters on the parts of C&W: objectives, box, c, Table III. Each check compares the answer with the package on hidden inputs."""

from __future__ import annotations

import math

import torch

from ead_tutorial.exercises.checking import exercise, expect, expect_close
from ead_tutorial.exercises.hidden_inputs import one_thread


def _hidden_logits(seed: int, rows: int = 64, scale: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random logits (rows x 10) and labels, with some rows where the label already wins clearly."""
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(rows, 10, generator=generator)
    labels = torch.randint(10, (rows,), generator=generator)
    boost = torch.zeros(rows)
    boost[: rows // 4] = 8.0  # the label leads by a few logits here
    logits[torch.arange(rows), labels] += boost
    return logits, labels


def _expect_vector(answer, rows: int, what: str) -> None:
    expect(isinstance(answer, torch.Tensor), f"{what}: return a torch.Tensor, one value per row")
    expect(tuple(answer.shape) == (rows,), f"{what}: return one value per row, shape ({rows},), "
                                           f"not {tuple(answer.shape)}; did you reduce over the classes?")


# ---------------------------------------------------------------- cw/objectives and cw/why_f6


@exercise("my_f6", chapter="cw/why_f6")
def _my_f6(my_f6) -> None:
    """``my_f6(z, t, kappa, targeted)``: f6 on logits with the floor -kappa, targeted and untargeted (EAD eq. 6)."""
    from ead_tutorial.objectives import f6, succeeded

    z, labels = _hidden_logits(6)
    first = my_f6(z.clone(), labels.clone(), kappa=0.0, targeted=True)
    _expect_vector(first, len(z), "targeted, kappa = 0")
    for targeted in (True, False):
        mode = "targeted" if targeted else "untargeted"
        reached = succeeded(z, labels, 0.0, targeted)  # the goal holds: the floor is what matters there
        for kappa in (0.0, 2.0, 7.5):
            answer = my_f6(z.clone(), labels.clone(), kappa=kappa, targeted=targeted)
            _expect_vector(answer, len(z), f"{mode}, kappa = {kappa}")
            expected = f6(z, labels, kappa, targeted=targeted)
            expect(not (kappa > 0 and torch.allclose(answer - expected, torch.full_like(expected, kappa), atol=1e-4)),
                   f"{mode}, kappa = {kappa}: your values are all off by exactly kappa; you wrote max(gap + kappa, 0), "
                   "which has the same minimiser, but here f6 = max(gap, -kappa): the floor is at -kappa")
            if targeted:
                where_open = "rows where the target does not win yet (f6 = best other logit minus the target's)"
            else:
                where_open = ("rows where the true class still wins (f6 = its logit minus the best other: "
                              "check the sign)")
            expect_close(answer[~reached], expected[~reached],
                         f"{mode}, kappa = {kappa}: wrong values on {where_open}; use the logits, not "
                         "probabilities, and the largest logit among the OTHER classes")
            expect(not (kappa > 0 and (answer[reached] >= 0).all()),
                   f"{mode}, kappa = {kappa}: on rows where the goal already holds your f6 is never negative, but it "
                   "should go on falling down to -kappa: is the floor at -kappa, and is the max taken over the "
                   "classes OTHER than the label (else the gap is never below 0)?")
            expect_close(answer[reached], expected[reached],
                         f"{mode}, kappa = {kappa}: wrong values on rows where the goal already holds; "
                         "kappa should cap the reward: f6 stops falling at -kappa")


@exercise("my_f1", chapter="cw/objectives")
def _my_f1(my_f1) -> None:
    """``my_f1(z, t)``: the corrected targeted f1 = -log2 F_t - 1, finite even for very confident logits."""
    from ead_tutorial.objectives import f1

    z, t = _hidden_logits(1)
    answer = my_f1(z.clone(), t.clone())
    _expect_vector(answer, len(z), "f1")
    expected = f1(z, t)
    expect(not (torch.allclose(answer, -expected, atol=1e-4)
                or torch.allclose(answer, 1 - (expected + 1) * math.log(2), atol=1e-4)),
           "your sign is flipped: that is the printed f1, which is <= 0 when F_t is small; "
           "the corrected f1 must be <= 0 exactly when F_t >= 1/2")
    expect(not torch.allclose(answer, (expected + 1) * math.log(2) - 1, atol=1e-4),
           "right shape of formula, wrong logarithm: f1 uses log base 2, so that f1 = 0 at F_t = 1/2")
    wins_half = torch.softmax(z, 1).gather(1, t[:, None]).squeeze(1) >= 0.5
    expect(torch.equal(answer <= 0, wins_half),
           "f1 <= 0 should hold exactly on the rows where F_t >= 1/2; check the sign and the constant")
    expect_close(answer, expected, "wrong values on ordinary logits; compare your formula with -log2 F_t - 1",
                 rtol=1e-4, atol=1e-4)
    # A model as confident as the shipped one: the target's probability underflows in a softmax.
    confident = torch.zeros(4, 10)
    confident[:, 0] = torch.tensor([60.0, 90.0, 120.0, 200.0])
    far = torch.tensor([3, 5, 7, 9])
    answer = my_f1(confident.clone(), far)
    expect(isinstance(answer, torch.Tensor) and torch.isfinite(answer).all(),
           "for very confident logits (target probability below 1e-40) your f1 is infinite or NaN: "
           "the softmax underflows to 0; take the log-probability with log_softmax, not log(softmax)")
    expect_close(answer, f1(confident, far), "wrong values for very confident logits (targets far behind)",
                 rtol=1e-4, atol=1e-3)


@exercise("requirement_holds", chapter="cw/objectives")
def _requirement_holds(requirement_holds) -> None:
    """``requirement_holds(f, z, t)``: whether "f <= 0 implies C = t" and "C = t implies f <= 0" hold on every row."""
    from ead_tutorial.objectives import OBJECTIVES, f6, printed_f1

    z, t = _hidden_logits(11, rows=512)
    narrow = torch.zeros(2, 10)
    narrow[:, 0], narrow[:, 1:4] = 1.0, 0.9  # class 0 wins, with well under half of the probability
    z, t = torch.cat([z, narrow]), torch.cat([t, torch.zeros(2, dtype=torch.int64)])
    wins = z.argmax(1) == t

    def truth(f):
        says = f(z, t) <= 0
        return bool(wins[says].all()), bool(says[wins].all())

    candidates = dict(OBJECTIVES) | {"the printed f1": printed_f1, "-f6": lambda z, t: -f6(z, t)}
    for name, f in candidates.items():
        answer = requirement_holds(f, z.clone(), t.clone())
        expect(isinstance(answer, tuple) and len(answer) == 2,
               f"return a pair (f <= 0 implies C = t, C = t implies f <= 0), not {type(answer).__name__}")
        answer, expected = (bool(answer[0]), bool(answer[1])), truth(f)
        expect(not (answer == expected[::-1] and answer != expected),
               f"for {name} your two answers are the right way round only if swapped: the first is "
               "'f <= 0 implies C = t' (every row with f <= 0 is won by t), the second the converse")
        expect(answer == expected,
               f"for {name} you answered {answer}, but the truth on these rows is {expected}: test 'f <= 0' "
               "(not f < 0) against 'the target has the largest logit', and ask whether an implication holds on "
               "EVERY row, not on some")


@exercise("my_f7", chapter="cw/why_f6")
def _my_f7(my_f7) -> None:
    """``my_f7(z, t, kappa)``: the targeted f7 = softplus(max_{i != t} Z_i - Z_t + kappa) - log 2, on logits."""
    from ead_tutorial.objectives import f7

    z, t = _hidden_logits(7)
    answer = my_f7(z.clone(), t.clone(), kappa=0.0)
    _expect_vector(answer, len(z), "f7")
    expected = f7(z, t, 0.0)
    expect(not torch.allclose(answer, expected + math.log(2), atol=1e-5),
           "you forgot the constant: f7 subtracts log 2, so that f7 = 0 exactly at the decision boundary")
    expect_close(answer, expected, "kappa = 0: wrong values; use the logits (not probabilities) and the "
                                   "largest logit among the classes other than t", rtol=1e-4, atol=1e-5)
    for kappa in (1.0, 5.0):
        answer = my_f7(z.clone(), t.clone(), kappa=kappa)
        expect_close(answer, f7(z, t, kappa), f"kappa = {kappa}: wrong values; kappa shifts the gap inside the "
                                              "softplus, so that f7 <= 0 needs a lead of kappa", rtol=1e-4,
                     atol=1e-5)
    # Large gaps: exp overflows in float32, softplus does not.
    far = torch.zeros(3, 10)
    far[:, 1] = torch.tensor([50.0, 100.0, 150.0])
    answer = my_f7(far.clone(), torch.zeros(3, dtype=torch.int64), kappa=0.0)
    expect(isinstance(answer, torch.Tensor) and torch.isfinite(answer).all(),
           "for a large gap (the target far behind) your answer is infinite: log(1 + exp(u)) overflows; "
           "use torch.nn.functional.softplus")
    expect_close(answer, f7(far, torch.zeros(3, dtype=torch.int64)), "wrong values when the target is far behind",
                 rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- cw/box_constraints


@exercise("tanh_encode", chapter="cw/box_constraints")
def _tanh_encode(tanh_encode) -> None:
    """``tanh_encode(x, shrink)``: w = atanh((2x - 1)(1 - shrink)), finite at x = 0 and 1, any shape."""
    from ead_tutorial.box import ATANH_SHRINK, TanhBox

    levels = torch.arange(256) / 255
    answer = tanh_encode(levels.clone(), shrink=ATANH_SHRINK)
    expect(isinstance(answer, torch.Tensor) and answer.shape == levels.shape,
           f"return a tensor of the same shape as x, {tuple(levels.shape)}")
    expect(torch.isfinite(answer[1:-1]).all(), "some grey level strictly between 0 and 1 gives a non-finite w")
    expect(torch.isfinite(answer[[0, -1]]).all(),
           "the pixels at 0 and 1 give an infinite w: shrink 2x - 1 towards 0 before the atanh")
    decoded = (torch.tanh(answer) + 1) / 2
    expect(((decoded - levels).abs() <= ATANH_SHRINK).all(),
           "(tanh w + 1) / 2 does not give the pixels back: did you map [0, 1] to [-1, 1] with 2x - 1?")
    expect_close(answer, TanhBox.to_variable(levels), "wrong values on the grey levels; compare with "
                                                      "atanh((2x - 1)(1 - shrink))", rtol=1e-4, atol=1e-4)
    image = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(4))
    image[0, 0, 0] = 0.0
    image[1, 0, 1] = 1.0
    answer = tanh_encode(image.clone(), shrink=ATANH_SHRINK)
    expect_close(answer, TanhBox.to_variable(image), "wrong values on a batch of images (B x 1 x 5 x 5)",
                 rtol=1e-4, atol=1e-4)
    for shrink in (1e-3, 0.1):
        answer = tanh_encode(levels.clone(), shrink=shrink)
        expected = torch.atanh((2 * levels - 1) * (1 - shrink))
        expect_close(answer, expected, f"with shrink = {shrink}, wrong values: multiply 2x - 1 by (1 - shrink) "
                                       "for every pixel (not only at the edges, and not by clipping)",
                     rtol=1e-4, atol=1e-4)


@exercise("box_variable_gradient", chapter="cw/box_constraints")
def _box_variable_gradient(box_variable_gradient) -> None:
    """``box_variable_gradient(box, w, grad_x)``: dL/dw from dL/dx by the chain rule, for the three encodings."""
    from ead_tutorial.box import get_box

    generator = torch.Generator().manual_seed(5)
    shape = (2, 1, 6, 6)
    grad_x = torch.randn(shape, generator=generator)
    clipped = torch.rand(shape, generator=generator) * 2 - 0.5
    clipped.view(-1)[:4] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # inside, outside, and exactly on the edges
    variables = {"tanh": 3 * torch.randn(shape, generator=generator), "clipped": clipped,
                 "projected": torch.rand(shape, generator=generator) * 2 - 0.5}
    answers = {name: box_variable_gradient(name, w.clone(), grad_x.clone()) for name, w in variables.items()}
    hints = {"tanh": "the change of variables: dx/dw = (1 - tanh(w)^2) / 2 = 2x(1 - x); check the factor",
             "clipped": "clipped descent: the gradient passes where 0 <= w <= 1 and is zero where w is outside",
             "projected": "projected descent: the image is w itself, so the gradient passes unchanged"}
    for name, w in variables.items():
        answer = answers[name]
        expect(isinstance(answer, torch.Tensor) and answer.shape == w.shape,
               f'box = "{name}": return a tensor of the same shape as w, {tuple(w.shape)}')
        variable = w.clone().requires_grad_()
        (expected,) = torch.autograd.grad((get_box(name).to_image(variable) * grad_x).sum(), variable)
        if name == "clipped":
            inside = (w >= 0) & (w <= 1)
            on_edge = (w == 0) | (w == 1)
            expect_close(answer[on_edge], expected[on_edge], 'box = "clipped": wrong values where w is exactly 0 '
                                                             "or 1; the gradient passes on the edges too")
            expect_close(answer[inside], expected[inside], 'box = "clipped": wrong values where w is inside the box')
            expect_close(answer[~inside], expected[~inside], 'box = "clipped": wrong values where w is outside the '
                                                             "box; " + hints[name])
        expect_close(answer, expected, f'box = "{name}": wrong values; ' + hints[name], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- cw/box_in_the_attack


@exercise("mean_on_common_rows", chapter="cw/box_in_the_attack")
def _mean_on_common_rows(mean_on_common_rows) -> None:
    """``mean_on_common_rows(successes, norms)``: each attack's mean norm over the rows that every attack solved."""
    generator = torch.Generator().manual_seed(7)
    names, rows = ("tanh", "projected", "clipped"), 40
    successes = {name: torch.rand(rows, generator=generator) < share for name, share in zip(names, (0.6, 0.8, 0.7))}
    norms = {name: 3 * torch.rand(rows, generator=generator) for name in names}
    common = torch.stack(list(successes.values())).all(0)
    assert 0 < common.sum() < min(ok.sum() for ok in successes.values())  # the hidden inputs separate the cases
    answer = mean_on_common_rows({k: v.clone() for k, v in successes.items()}, {k: v.clone() for k, v in norms.items()})
    expect(isinstance(answer, dict) and set(answer) == set(names),
           "return a dict with one entry per attack, the same names as the keys of `norms`")
    for name in names:
        value = answer[name]
        expect_close(value if not isinstance(value, torch.Tensor) else value.item(), norms[name][common].mean().item(),
                     f"{name}: wrong mean; " + (
                         "you averaged over the rows this attack solved: average over the rows that EVERY attack "
                         "solved, so that all of them are measured on the same rows"
                         if math.isclose(float(value), norms[name][successes[name]].mean().item(), rel_tol=1e-5)
                         else "you averaged over every row, failures included"
                         if math.isclose(float(value), norms[name].mean().item(), rel_tol=1e-5)
                         else "take the rows where all the success masks are true, then the mean of each norm there"),
                     rtol=1e-5, atol=1e-6)
    nobody = dict(successes, clipped=torch.zeros(rows, dtype=torch.bool))
    answer = mean_on_common_rows(nobody, {k: v.clone() for k, v in norms.items()})
    expect(isinstance(answer, dict) and all(math.isnan(float(answer[name])) for name in names),
           "when one attack solves no row at all there are no common rows: every mean should be NaN "
           "(the mean of an empty tensor), not 0 and not an error")


@exercise("abort_early_iterations", chapter="cw/box_in_the_attack")
def _abort_early_iterations(abort_early_iterations) -> None:
    """``abort_early_iterations(losses)``: the iterations each row runs in a round under C&W's abort-early test."""
    from ead_tutorial.attacks.stopping import EarlyStop

    def expected(losses):
        rows, steps = losses.shape
        stop = EarlyStop("loss", steps, rows, "cpu")
        ran = torch.full((rows,), steps, dtype=torch.int64)
        for k in range(steps):
            if stop.due(k):
                stalled = stop.stalled(losses[:, k], torch.zeros(rows, dtype=torch.bool))
                ran = torch.where(stalled & (ran == steps), torch.tensor(k + 1), ran)
        return ran

    generator = torch.Generator().manual_seed(8)
    for steps in (100, 35, 7):
        rows = 12
        falling = torch.linspace(0, 1, steps).expand(rows, steps)
        plateau_at = torch.randint(1, steps, (rows,), generator=generator)
        step_index = torch.arange(steps).expand(rows, steps)
        # Falls steadily, then stays flat from a row's own plateau on (some rows wobble a little).
        losses = 10 * (1 - 0.5 * torch.minimum(falling, falling[:, :1] + (plateau_at[:, None] / steps)))
        losses = losses + 1e-4 * torch.rand(rows, steps, generator=generator) * (step_index >= plateau_at[:, None])
        losses[0] = torch.linspace(10, 1, steps)  # never stalls: runs the whole round
        want = expected(losses)
        answer = abort_early_iterations(losses.clone())
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (rows,),
               f"return one count per row, a tensor of shape ({rows},)")
        expect(int(answer[0]) == steps, f"I = {steps}: a row whose loss keeps falling must run all I iterations")
        wrong = answer.long() != want
        expect(not (wrong.any() and (answer.long()[wrong] == want[wrong] - 1).all()),
               f"I = {steps}: your counts are one short where a row stops: the step at the check that stops "
               "it is still taken, so a row that stops at check k has run k + 1 iterations")
        expect(not wrong.any(), f"I = {steps}: wrong counts; compare the loss only at the checks k = 0, I/10, "
                                "2I/10, ... (every max(I // 10, 1) iterations), each with the loss at the previous "
                                "check, and stop when it is not below 0.9999 times that; the check at k = 0 only "
                                "records the loss")


# ---------------------------------------------------------------- cw/choosing_c


@exercise("batched_search_update", chapter="cw/choosing_c")
def _batched_search_update(batched_search_update) -> None:
    """``batched_search_update(c, lower, upper, success, growth)``: one round of the search over c, all rows."""
    from ead_tutorial.attacks import ConstantSearch
    from ead_tutorial.attacks.search import UNBOUNDED

    rows, rounds = 12, 8
    outcomes = torch.rand(rounds, rows, generator=torch.Generator().manual_seed(12)) < 0.4
    for growth in (10.0, 4.0):
        search = ConstantSearch.start(rows, initial_c=1e-3)
        state = (search.c.clone(), search.lower.clone(), search.upper.clone())
        for round_, success in enumerate(outcomes, start=1):
            bounded_before = state[2] < UNBOUNDED
            answer = batched_search_update(*(s.clone() for s in state), success.clone(), growth=growth)
            expect(isinstance(answer, tuple) and len(answer) == 3, "return the tuple (c, lower, upper)")
            c, lower, upper = answer
            # The reference: the package's update, with the growth factor in place of 10.
            expected_upper = torch.where(success, torch.minimum(state[2], state[0]), state[2])
            expected_lower = torch.where(success, state[1], torch.maximum(state[1], state[0]))
            bounded = expected_upper < UNBOUNDED
            expected_c = torch.where(bounded, (expected_lower + expected_upper) / 2, state[0] * growth)
            if growth == 10.0:
                search.update(success)
                torch.testing.assert_close(expected_c, search.c)  # the reference is the package's rule
            where = f"growth = {growth:g}, round {round_}"
            expect_close(upper, expected_upper, f"{where}: wrong upper bounds; a success at c lowers the upper "
                                                "bound to c, a failure leaves it alone")
            expect_close(lower, expected_lower, f"{where}: wrong lower bounds; a failure at c raises the lower "
                                                "bound to c, a success leaves it alone")
            new_success = success & ~bounded_before
            expect_close(c[~bounded], expected_c[~bounded], f"{where}: wrong c on rows with no success yet; "
                                                            "there c grows by the factor growth")
            expect_close(c[new_success], expected_c[new_success], f"{where}: wrong c on rows that just had their "
                                                                  "first success; bisect between lower and upper")
            expect_close(c, expected_c, f"{where}: wrong c on rows that already have an upper bound; "
                                        "c becomes the midpoint of lower and upper")
            state = (expected_c, expected_lower, expected_upper)


_CACHE: dict = {}  # hidden references that cost an attack: computed once per session


def _few_rows(n: int):
    from ead_tutorial.data import sample_correct
    from ead_tutorial.models import pretrained

    model = pretrained("mnist")
    x, y = sample_correct(model, n, seed=0)
    return model, x, y


# A budget under which a fixed-c run takes a fraction of a second on a CPU, and rows differ in the c they need.
_SMALL_C_BUDGET = dict(steps=30, lr=0.05, box="projected")
_SMALL_C_GRID = [0.3, 3.0, 10.0]


@exercise("smallest_successful_c", chapter="cw/choosing_c")
def _smallest_successful_c(smallest_successful_c) -> None:
    """``smallest_successful_c(model, images, targets, c_grid, **attack)``: per row, the least c of the grid at which
    ``cw_l2`` with that c fixed (one round) succeeds; inf where none does."""
    with one_thread():
        _smallest_successful_c_tests(smallest_successful_c)


def _smallest_successful_c_tests(smallest_successful_c) -> None:
    from ead_tutorial.attacks import cw_l2

    model, x, y = _few_rows(4)
    targets = (y + 1) % 10
    answer = smallest_successful_c(model, x.clone(), targets.clone(), list(_SMALL_C_GRID), **_SMALL_C_BUDGET)
    expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (len(x),),
           f"return a float tensor with one value per row, shape ({len(x)},)")
    answer = answer.detach().float().cpu()
    if "smallest_successful_c" not in _CACHE:
        _CACHE["smallest_successful_c"] = torch.stack([
            cw_l2(model, x, targets, search_steps=1, initial_c=c, **_SMALL_C_BUDGET).success
            for c in _SMALL_C_GRID]).cpu()  # len(c_grid) x rows
    success = _CACHE["smallest_successful_c"]
    never = ~success.any(0)
    expect(not never.any() or torch.isinf(answer[never]).all(),
           "rows where no c of the grid succeeds must give inf (float('inf')), not 0, NaN or a c of the grid")
    expect(torch.isfinite(answer[~never]).all(), "some rows that succeed at some c of the grid got inf")
    grid = torch.tensor(_SMALL_C_GRID)
    inf = torch.tensor(float("inf"))
    expected = torch.where(never, inf, grid[success.float().argmax(0)])
    largest = torch.where(never, inf, grid[len(grid) - 1 - success.flip(0).float().argmax(0)])
    expect(torch.equal(answer, expected) or not torch.equal(answer, largest),
           "you return the largest successful c of each row; the exercise asks for the smallest")
    expect(torch.equal(answer, expected),
           "wrong c on some rows: run cw_l2 once per c of the grid with search_steps=1, initial_c=c and the other "
           "keyword arguments passed on, and take for each row on its own the smallest c whose run succeeded")


# ---------------------------------------------------------------- cw/table_iii


@exercise("table_iii_worst_case", chapter="cw/table_iii")
def _table_iii_worst_case(table_iii_worst_case) -> None:
    """``table_iii_worst_case(success, l2, targets_per_image)``: the worst case's success (%) and mean L2."""
    from ead_tutorial.metrics import case_table

    generator = torch.Generator().manual_seed(3)
    n_images, per_image = 8, 9
    success = torch.rand(n_images * per_image, generator=generator) < 0.9
    success[:per_image] = True  # image 0: every target succeeds
    success[per_image:3 * per_image] = True
    success[3 * per_image + 4] = False  # image 3: one target fails
    l2 = torch.rand(n_images * per_image, generator=generator) * 4 + 0.5
    l2[~success] = 0.0  # a failed row keeps the original image: no distortion
    answer = table_iii_worst_case(success.clone(), l2.clone(), per_image)
    expect(isinstance(answer, tuple) and len(answer) == 2, "return the pair (success rate in percent, mean L2)")
    expected = case_table(success, {"L2": l2}, targets_per_image=per_image).loc["worst"]
    rate, mean = answer
    expect(not math.isclose(float(rate), float(expected["ASR"]) / 100, rel_tol=1e-6),
           "give the success rate in percent (0 to 100), not as a fraction")
    expect_close(rate, expected["ASR"], "wrong success rate: in the worst case an image counts as a success only "
                                        "if EVERY one of its targets succeeded")
    expect_close(mean, expected["L2"], "wrong mean L2: per image take the target of largest L2, and average over "
                                       "the images that count as successes", rtol=1e-5, atol=1e-5)
    # The layout: consecutive rows belong to one image, and the count per image is a parameter.
    answer = table_iii_worst_case(success[:60].clone(), l2[:60].clone(), 6)
    expected = case_table(success[:60], {"L2": l2[:60]}, targets_per_image=6).loc["worst"]
    expect_close(answer[0], expected["ASR"], "with 6 targets per image the success rate is wrong: group "
                                             "CONSECUTIVE rows, targets_per_image at a time")
    expect_close(answer[1], expected["L2"], "with 6 targets per image the mean L2 is wrong", rtol=1e-5, atol=1e-5)
    none = table_iii_worst_case(torch.zeros(18, dtype=torch.bool), torch.zeros(18), 9)
    expect(math.isclose(float(none[0]), 0.0) and math.isnan(float(none[1])),
           "when no image succeeds, the success rate is 0 and the mean L2 is NaN (there is nothing to average)")


@exercise("uses_kappa", chapter="cw/table_iii")
def _uses_kappa(uses_kappa) -> None:
    """``uses_kappa(objective)``: whether the objective's values change with kappa on some logits."""
    from ead_tutorial.objectives import OBJECTIVES, f6

    first = uses_kappa(OBJECTIVES["f6"])

    def disguised_user(logits, labels, kappa=0.0, targeted=True):
        return 2 * f6(logits, labels, kappa, targeted)

    def disguised_ignorer(logits, labels, kappa=0.0, targeted=True):
        return 2 * f6(logits, labels, 0.0, targeted)

    expect(isinstance(first, bool) or (isinstance(first, torch.Tensor) and first.numel() == 1),
           "return True or False (one answer for the whole objective)")
    expect(bool(first), "f6 does use kappa, but only on logits where the target already wins: "
                        "test on logits where the target wins on some rows")
    answers = {name: bool(uses_kappa(f)) for name, f in OBJECTIVES.items()}
    for name, uses in (("f2", True), ("f3", True), ("f7", True)):
        expect(answers[name] == uses, f"{name} uses kappa; where does it enter the formula, and on which rows does "
                                      "it change the value?")
    for name in ("f1", "f4", "f5"):
        expect(not answers[name], f"{name} takes a kappa argument but never uses it: compare the VALUES at two "
                                  "kappas, not the signature")
    expect(bool(uses_kappa(disguised_user)) and not bool(uses_kappa(disguised_ignorer)),
           "right on the seven objectives, wrong on two others: decide from the values the function returns, "
           "not from its name")


# One image against its nine targets, with a budget that runs in a second or two on a CPU.
_CELL_BUDGET = dict(steps=20, lr=0.05, search_steps=2, initial_c=1.0)


@exercise("table_iii_cell", chapter="cw/table_iii")
def _table_iii_cell(table_iii_cell) -> None:
    """``table_iii_cell(model, images, labels, objective, box, **budget)``: one cell of Table III (best, average)."""
    with one_thread():
        _table_iii_cell_tests(table_iii_cell)


def _table_iii_cell_tests(table_iii_cell) -> None:
    from ead_tutorial.attacks import cw_l2
    from ead_tutorial.data import with_all_targets

    model, x, y = _few_rows(1)
    answer = table_iii_cell(model, x.clone(), y.clone(), "f6", "projected", **_CELL_BUDGET)
    expect(isinstance(answer, dict) and {"best", "average"} <= set(answer),
           'return a dict with the keys "best" and "average"')
    expect(all(isinstance(answer[case], tuple) and len(answer[case]) == 2 for case in ("best", "average")),
           'each of answer["best"] and answer["average"] is the pair (success in percent, mean L2)')
    if "table_iii_cell" not in _CACHE:
        images, targets, index = with_all_targets(x, y)
        result = cw_l2(model, images, targets, objective="f6", box="projected", true_labels=y[index], **_CELL_BUDGET)
        _CACHE["table_iii_cell"] = result.case_table(by="L2", seed=0)
    expected = _CACHE["table_iii_cell"]
    for case in ("best", "average"):
        rate, mean = answer[case]
        expect_close(rate, expected.loc[case, "ASR"],
                     f"{case} case: wrong success rate; attack every image towards all nine other classes "
                     "(with_all_targets), with the objective, box and budget given, and summarise with "
                     "result.case_table(by=\"L2\", seed=0)")
        expect_close(mean, expected.loc[case, "L2"], f"{case} case: wrong mean L2; attack each image towards all nine "
                     "targets and let case_table rank them by L2",
                     rtol=1e-4, atol=1e-5)
