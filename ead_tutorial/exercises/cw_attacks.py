"""Exercises for the chapters on the assembled C&W attacks. Each check compares the answer with the package on hidden inputs."""

from __future__ import annotations

import functools

import torch

from ead_tutorial.exercises.checking import exercise, expect, expect_close


# --- shared hidden inputs -------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _mnist_model() -> torch.nn.Module:
    from ead_tutorial.models import pretrained

    return pretrained("mnist", device="cpu")


KAPPAS = (0.0, 1.0)  # the margins at which the discretization checks place their examples


@functools.lru_cache(maxsize=1)
def _near_boundary_all() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blends of two test digits of different classes, placed just past (and just short of) the point
    where the second digit's class leads by kappa, for each kappa in KAPPAS: (past, short, targets, kappa per row)."""
    from ead_tutorial.data import load_mnist
    from ead_tutorial.objectives import margin

    model = _mnist_model()
    x, y = load_mnist("test", verbose=False)
    pairs = [(i, i + 1) for i in range(0, 60, 2) if y[i] != y[i + 1]][:8]
    a, b = x[[i for i, _ in pairs]], x[[j for _, j in pairs]]
    kappa = torch.tensor(KAPPAS).repeat_interleave(len(a))
    a, b = a.repeat(len(KAPPAS), 1, 1, 1), b.repeat(len(KAPPAS), 1, 1, 1)
    with torch.no_grad():
        targets = model(b).argmax(1)
        gap = lambda z: margin(model(z), targets) + kappa  # noqa: E731  (< 0: success with the row's kappa)
        gap_a, gap_b = gap(a), gap(b)
        keep = (gap_b < 0) & (gap_a >= 0)
        a, b, targets, kappa = a[keep], b[keep], targets[keep], kappa[keep]
        low, high, gap_low, gap_high = torch.zeros(len(a)), torch.ones(len(a)), gap_a[keep], gap_b[keep]
        for _ in range(8):  # regula falsi on the blend: the network is piecewise linear, so it converges fast
            middle = low + (high - low) * gap_low / (gap_low - gap_high)
            middle = middle.clamp(low + 1e-3 * (high - low), high - 1e-3 * (high - low))
            gap_middle = gap(a + middle.view(-1, 1, 1, 1) * (b - a))
            ok = gap_middle < 0
            high, gap_high = torch.where(ok, middle, high), torch.where(ok, gap_middle, gap_high)
            low, gap_low = torch.where(ok, low, middle), torch.where(ok, gap_low, gap_middle)
    mix = lambda s: a + s.view(-1, 1, 1, 1) * (b - a)  # noqa: E731
    return mix(high), mix(low), targets, kappa


def _near_boundary(kappa: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows of ``_near_boundary_all`` placed at margin ``kappa``: (past, short, targets)."""
    past, short, targets, kappas = _near_boundary_all()
    rows = kappas == kappa
    return past[rows], short[rows], targets[rows]


def _blocked_images(generator: torch.Generator):
    """A tiny linear model and valid images on which the steepest pixels sit at the end of [0, 1] that their
    one-level move against the gradient would leave: a repair step must pick another pixel there."""
    from ead_tutorial.objectives import f6

    model = _tiny_model(generator, 36)
    x = torch.randint(0, 256, (6, 1, 6, 6), generator=generator) / 255
    with torch.no_grad():
        logits = model(x)
        targets = logits.argmin(1)  # far from winning: these rows fail
        targets[:2] = logits[:2].argmax(1)  # these two already succeed
    for _ in range(2):
        probe = x.clone().requires_grad_()
        (grad,) = torch.autograd.grad(f6(model(probe), targets).sum(), probe)
        flat, grad = x.flatten(1).clone(), grad.flatten(1)
        top = grad.abs().topk(3, dim=1).indices
        flat.scatter_(1, top, (grad.gather(1, top) < 0).float())  # up from 1, or down from 0: not allowed
        x = flat.view_as(x)
    return model, x, targets


def _tiny_model(generator: torch.Generator, pixels: int, classes: int = 10):
    """A seeded linear classifier on small images: enough to have logits and gradients."""
    weight = torch.randn(classes, pixels, generator=generator)
    bias = torch.randn(classes, generator=generator)
    return lambda x: x.flatten(1) @ weight.T + bias


# --- cw/discretization -----------------------------------------------------------------------------------------------

@exercise("discretize_rounding_breaks", chapter="cw/discretization")
def _discretize_rounding_breaks(rounding_breaks) -> None:
    """``rounding_breaks(model, x, targets, kappa)`` marks the rows that succeed before rounding to 8-bit pixels and fail after."""
    from ead_tutorial.discretize import round_to_pixels
    from ead_tutorial.objectives import succeeded

    model = _mnist_model()
    for kappa in KAPPAS:
        past, short, targets = _near_boundary(kappa)
        x = torch.cat([past, short])  # rows that succeed just barely, and rows that just fail
        labels = torch.cat([targets, targets])
        answer = rounding_breaks(model, x.clone(), labels.clone(), kappa)
        with torch.no_grad():
            before = succeeded(model(x), labels, kappa)
            after = succeeded(model(round_to_pixels(x)), labels, kappa)
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (len(x),),
               f"return one bool per row: a tensor of shape ({len(x)},)")
        answer = answer.bool()
        expect(not (answer & ~before).any(),
               "a row that fails before rounding cannot be broken by rounding: mark only rows that succeeded first")
        expect(not (answer & after).any(),
               f"at kappa = {kappa} you marked rows whose rounded image still succeeds; round to the nearest level "
               "(multiples of 1/255) and judge success with the margin kappa")
        expect(torch.equal(answer, before & ~after),
               f"at kappa = {kappa} you missed rows that rounding breaks; round to the NEAREST level (not down), "
               "and judge success before and after with the same kappa")


@exercise("discretize_repair_step", chapter="cw/discretization")
def _discretize_repair_step(repair_step) -> None:
    """``repair_step(model, x, targets, kappa)`` makes one greedy step of the repair on valid 8-bit images."""
    from ead_tutorial.discretize import repair_rounding, round_to_pixels
    from ead_tutorial.objectives import f6, succeeded

    cases = []
    for kappa in KAPPAS:
        past, _, targets = _near_boundary(kappa)
        cases.append((f"at kappa = {kappa}", _mnist_model(), round_to_pixels(past), targets, kappa))
    cases.append(("on images whose steepest pixels sit at 0 or 1", *_blocked_images(torch.Generator().manual_seed(10)),
                  0.0))
    for case, model, x, targets, kappa in cases:
        answer = repair_step(model, x.clone(), targets.clone(), kappa)
        everyone = torch.ones(len(x), dtype=torch.bool)
        expected, _ = repair_rounding(model, x, targets, everyone, kappa=kappa, max_changes=1)
        assert (expected != x).any(), "internal: some hidden rows must need a repair"
        expect(isinstance(answer, torch.Tensor) and answer.shape == x.shape,
               f"return the images, a tensor of the same shape as x, {tuple(x.shape)}")
        answer = answer.detach()
        with torch.no_grad():
            done = succeeded(model(x), targets, kappa)
        assert done.any() and (~done).any(), "internal: the hidden rows must mix successes and failures"
        expect_close(answer[done], x[done], f"{case}: rows that already succeed must come back unchanged")
        moved = (answer - x)[~done].flatten(1)
        levels = (255 * moved).round()
        expect(((moved.abs() > 1e-6).sum(1) == 1).all(),
               "move exactly one pixel in every row that still fails")
        expect((levels.abs().sum(1) == 1).all() and ((255 * moved - levels).abs() < 1e-3).all(),
               "the move is one grey level, 1/255, so that the image stays on the 8-bit lattice")
        expect(answer.min() >= 0 and answer.max() <= 1,
               "a move must not leave [0, 1]: a pixel at 0 cannot go down, one at 1 cannot go up")
        with torch.enable_grad():
            probe = x[~done].clone().requires_grad_()
            (grad,) = torch.autograd.grad(f6(model(probe), targets[~done], kappa).sum(), probe)
        expect(((moved * grad.flatten(1)).sum(1) < 0).all(),
               "move the pixel against the gradient of f6 (the move should lower f6 to first order)")
        expect_close(answer, expected, f"{case}: in some failing rows you moved the wrong pixel; pick "
                                       "the largest |gradient| among the moves that stay inside [0, 1]", atol=1e-5)


# --- cw/l2_attack ------------------------------------------------------------------------------------------------------

@exercise("l2_attack_loss", chapter="cw/l2_attack")
def _l2_attack_loss(l2_attack_loss) -> None:
    """``l2_attack_loss(model, w, x0, targets, c, kappa)`` is the C&W L2 loss of every row, with x = (tanh w + 1) / 2."""
    from ead_tutorial.box import get_box
    from ead_tutorial.objectives import f6

    generator = torch.Generator().manual_seed(2)
    model = _tiny_model(generator, 16)
    x0 = torch.rand(6, 1, 4, 4, generator=generator)
    targets = torch.randint(0, 10, (6,), generator=generator)
    c = torch.tensor([0.0, 0.01, 0.1, 1.0, 5.0, 20.0])
    w = get_box("tanh").to_variable(x0) + 0.8 * torch.randn(6, 1, 4, 4, generator=generator)
    for kappa in (0.0, 2.0):
        answer = l2_attack_loss(model, w.clone(), x0.clone(), targets.clone(), c.clone(), kappa)
        x = get_box("tanh").to_image(w)
        distance = (x - x0).flatten(1).pow(2).sum(1)
        expected = distance + c * f6(model(x), targets, kappa)
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (6,),
               "return one loss per row, a tensor of shape (B,): do not sum over the batch")
        expect_close(answer[:1], expected[:1],
                     "with c = 0 the loss is the distance alone: the SQUARED L2 distance between x = (tanh w + 1) / 2 "
                     "and x0, summed over each row's pixels", rtol=1e-4, atol=1e-5)
        expect_close(answer, expected, f"at kappa = {kappa} the distance is right but c * f6 is not: c is one value "
                                       "per row, f6 uses the logits of x (not of x0 or w), and kappa floors the margin",
                     rtol=1e-4, atol=1e-5)


@exercise("l2_keep_best", chapter="cw/l2_attack")
def _l2_keep_best(keep_best) -> None:
    """``keep_best(best_l2, best_x, x, l2, success)`` updates each row's best successful example so far."""
    from ead_tutorial.attacks.search import BestSoFar

    generator = torch.Generator().manual_seed(3)
    rows = 8
    best_x = torch.rand(rows, 1, 5, 5, generator=generator)
    best_l2 = torch.tensor([float("inf"), float("inf"), 1.0, 1.0, 1.0, 1.0, 2.0, float("inf")])
    x = torch.rand(rows, 1, 5, 5, generator=generator)
    l2 = torch.tensor([0.5, 3.0, 0.5, 1.5, 0.5, 1.5, 0.2, 0.1])
    success = torch.tensor([True, True, True, True, False, False, True, False])
    answer = keep_best(best_l2.clone(), best_x.clone(), x.clone(), l2.clone(), success.clone())
    expect(isinstance(answer, tuple) and len(answer) == 2, "return two tensors: (new best_l2, new best_x)")
    new_l2, new_x = answer
    best = BestSoFar(adversarial=best_x.clone(), distance=best_l2.clone(), c=torch.zeros(rows))
    best.update(torch.arange(rows), x, success, l2, torch.zeros(rows))
    cases = {"rows that never succeeded before and succeed now (their best was +inf)": [0, 1],
             "rows that succeed now, closer than their best so far": [2, 6],
             "rows that succeed now but farther than their best so far (keep the old one)": [3],
             "rows that fail now (a failed iterate never becomes the best, however close)": [4, 5, 7]}
    for where, chosen in cases.items():
        expect_close(new_l2[chosen], best.distance[chosen], f"wrong best_l2 in {where}")
        expect_close(new_x[chosen], best.adversarial[chosen], f"wrong best_x in {where}")


# --- cw/l0_attack ------------------------------------------------------------------------------------------------------

@exercise("l0_pixel_scores", chapter="cw/l0_attack")
def _l0_pixel_scores(scores_of) -> None:
    """``pixel_scores(delta, grad)`` gives each pixel the corrected elimination score |sum over channels of g * delta|."""
    from ead_tutorial.attacks.cw_l0_attack import pixel_scores

    generator = torch.Generator().manual_seed(4)
    for channels in (1, 3):
        delta = torch.randn(3, channels, 6, 6, generator=generator) * 0.2
        delta[:, :, :2] = 0  # unchanged pixels
        grad = torch.randn(3, channels, 6, 6, generator=generator)
        answer = scores_of(delta.clone(), grad.clone())
        expected = pixel_scores(delta, grad, "gradient", generator)
        expect(isinstance(answer, torch.Tensor) and answer.shape == expected.shape,
               f"return one score per pixel, shape B x 1 x H x W, here {tuple(expected.shape)} "
               "(sum over the channel axis, keepdim=True)")
        expect(not (answer < -1e-7).any(), "the corrected score is a size: with signs, the rule as printed removes "
                                           "the most useful pixels first (see the chapter)")
        expect_close(answer, expected, f"with {channels} channel(s): wrong scores; multiply g and delta, sum the "
                                       "products over the channels of a pixel, THEN take the absolute value")


@exercise("l0_shrink_allowed", chapter="cw/l0_attack")
def _l0_shrink_allowed(shrink_allowed) -> None:
    """``shrink_allowed(allowed, delta, scores)`` takes one round's pixels out of the allowed set."""
    from ead_tutorial.attacks.cw_l0_attack import NEGLIGIBLE, pixel_scores, pixels_to_remove

    generator = torch.Generator().manual_seed(5)
    for channels in (1, 3):
        rows = 4
        allowed = torch.rand(rows, 1, 8, 8, generator=generator) < 0.7
        allowed[3] = False
        allowed[3, :, :2, :2] = True  # a row with only four pixels left, all with negligible changes
        delta = torch.randn(rows, channels, 8, 8, generator=generator) * 0.3
        tiny = torch.rand(rows, 1, 8, 8, generator=generator) < 0.3
        delta = torch.where(tiny, delta * NEGLIGIBLE / 10, delta)  # negligible changes
        delta[3] = delta[3] * NEGLIGIBLE / 10
        delta = delta * allowed  # pixels outside the set are held at x0
        scores = pixel_scores(delta, torch.randn(delta.shape, generator=generator), "gradient", generator)
        answer = shrink_allowed(allowed.clone(), delta.clone(), scores.clone())
        expected = allowed & ~pixels_to_remove(allowed, delta, scores, None)
        expect(isinstance(answer, torch.Tensor) and answer.shape == allowed.shape,
               f"return the new allowed set, a bool tensor of shape {tuple(allowed.shape)}")
        answer = answer.bool()
        expect(not (answer & ~allowed).any(), "a pixel that has left the allowed set never comes back")
        change = delta.abs().sum(1, keepdim=True)
        negligible = allowed & (change < NEGLIGIBLE)
        expect(not (answer & negligible).any(),
               f"every allowed pixel whose change (summed over channels) is below {NEGLIGIBLE} leaves in the same round")
        removed, should = (allowed & ~answer & ~negligible), (allowed & ~expected & ~negligible)
        count = lambda mask: mask.flatten(1).sum(1)  # noqa: E731
        expect(torch.equal(count(removed), count(should)),
               f"with {channels} channel(s): wrong number of changed pixels removed in some row; remove "
               "ceil(0.3 * sqrt(n)) of them, n counting only allowed pixels whose change is not negligible")
        expect(torch.equal(answer, expected),
               "the right number of pixels, but the wrong ones: remove the allowed, changed pixels of LOWEST score "
               "(pixels outside the set or with negligible change are not candidates)")


# --- cw/linf_attack ----------------------------------------------------------------------------------------------------

@exercise("linf_tau_penalty", chapter="cw/linf_attack")
def _linf_tau_penalty(penalty) -> None:
    """``tau_penalty(delta, tau)`` is sum_i (|delta_i| - tau)^+ per row, without a loop over rows."""
    from ead_tutorial.attacks.cw_linf_attack import tau_penalty

    generator = torch.Generator().manual_seed(6)
    for shape in ((5, 1, 4, 4), (7, 7), (3, 2, 5)):
        delta = (torch.rand(shape, generator=generator) * 2 - 1) * 0.6
        tau = torch.rand(shape[0], generator=generator) * 0.4
        tau[0] = 1.0  # nothing above tau: no penalty
        answer = penalty(delta.clone(), tau.clone())
        expected = tau_penalty(delta, tau)
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (shape[0],),
               f"return one penalty per row, shape ({shape[0]},), for delta of shape {shape}")
        expect_close(answer[:1], expected[:1], "a row whose every |delta_i| is below tau costs nothing")
        expect_close(answer, expected, f"for delta of shape {shape}: wrong penalty; each row has its own tau "
                                       "(reshape it to broadcast over that row's pixels), charge |delta_i| (both "
                                       "signs) only above tau, and SUM over the pixels", rtol=1e-5, atol=1e-5)


@exercise("linf_next_tau", chapter="cw/linf_attack")
def _linf_next_tau(next_tau) -> None:
    """``next_tau(tau, delta, tau_factor)`` is the threshold of the next round after a solved one."""
    generator = torch.Generator().manual_seed(7)
    delta = (torch.rand(6, 1, 5, 5, generator=generator) * 2 - 1) * 0.3
    delta[1] = -delta[1].abs()  # a row whose largest change is a darkening
    tau = torch.tensor([1.0, 1.0, 0.2, 0.1, 0.35, 0.05])
    delta = delta.clamp(-tau.view(-1, 1, 1, 1), tau.view(-1, 1, 1, 1))  # a solved round: every |delta_i| <= tau
    delta[4] = delta[4] * 0.5  # a solution well inside tau
    for tau_factor in (0.9, 0.5):
        answer = next_tau(tau.clone(), delta.clone(), tau_factor)
        used = delta.abs().flatten(1).amax(1)
        expected = tau_factor * torch.minimum(tau, used)
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (6,),
               "return one tau per row, shape (B,)")
        expect(not torch.allclose(answer, tau_factor * tau),
               "shrink from the largest change the solution actually used, not only from the old tau")
        expect_close(answer[1:2], expected[1:2], "in a row whose largest change is negative: use |delta_i|")
        expect_close(answer, expected, f"with tau_factor = {tau_factor}: wrong tau in some row; take each row's own "
                                       "largest |delta_i|, the smaller of it and the old tau, times tau_factor")


@exercise("linf_round_solved", chapter="cw/linf_attack")
def _linf_round_solved(round_solved) -> None:
    """``round_solved(logits, delta, targets, tau, kappa)`` says which rows' current iterate ends their round."""
    from ead_tutorial.objectives import succeeded

    generator = torch.Generator().manual_seed(8)
    rows = 12
    logits = torch.randn(rows, 10, generator=generator) * 2
    targets = logits.argmax(1)
    targets[::3] = (targets[::3] + 1) % 10  # some rows do not reach the target
    top2 = logits.topk(2, dim=1).values
    logits[1::3, :] = logits[1::3, :].clamp(max=top2[1::3, 1:2])  # ties the top two, then
    logits[1::3].scatter_(1, targets[1::3, None], top2[1::3, 1:2] + 0.3)  # the target leads by 0.3 only
    delta = (torch.rand(rows, 1, 4, 4, generator=generator) * 2 - 1) * 0.3
    tau = torch.rand(rows, generator=generator) * 0.3 + 0.05
    for kappa in (0.0, 0.5):
        answer = round_solved(logits.clone(), delta.clone(), targets.clone(), tau.clone(), kappa)
        hit = succeeded(logits, targets, kappa)
        within = delta.abs().flatten(1).amax(1) <= tau
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (rows,),
               f"return one bool per row, shape ({rows},)")
        answer = answer.bool()
        expect(not (answer & ~within).any(), "a row with some |delta_i| above its tau has not solved its round")
        expect(not (answer & ~hit).any(), f"at kappa = {kappa} you accepted rows that do not reach the target by "
                                          "more than kappa")
        expect(torch.equal(answer, hit & within), f"at kappa = {kappa} you missed rows that reach the target with "
                                                  "every |delta_i| <= tau")
