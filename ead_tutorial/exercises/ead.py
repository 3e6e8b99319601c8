"""Exercises for the EAD chapters. Each check compares the answer with the package on hidden inputs."""

from __future__ import annotations

import torch

from ead_tutorial.exercises.checking import exercise, expect, expect_close
from ead_tutorial.exercises.hidden_inputs import one_thread, tiny_classifier


def _rows_targets(model: torch.nn.Module, rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] (rows x 1 x 6 x 6, many pixels at 0) and a target other than the predicted class."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(rows, 1, 6, 6, generator=generator)
    images[images < 0.5] = 0.0
    with torch.no_grad():
        predicted = model(images).argmax(1)
    return images, (predicted + torch.randint(1, 10, (rows,), generator=generator)) % 10


# --- The elastic net ------------------------------------------------------------------------------------

@exercise("en_distortion", chapter="ead/elastic_net")
def _en_distortion(en_distortion) -> None:
    """``en_distortion(delta, beta)``: beta ||delta||_1 + ||delta||_2^2 per row; beta a number or one per row."""
    from ead_tutorial.attacks.ead_attack import elastic_net

    generator = torch.Generator().manual_seed(11)
    delta = torch.randn(3, 1, 5, 5, generator=generator) * 0.3
    answer = en_distortion(delta.clone(), 0.0)
    expect_close(answer, elastic_net(delta, 0.0),
                 "at beta = 0 the elastic net is the C&W distortion, the squared L2 norm of each row (sum, not mean)")
    for shape in ((3, 1, 5, 5), (4, 12)):
        delta = torch.randn(*shape, generator=generator) * 0.3
        for beta in (1e-2, 1.0):
            expect_close(en_distortion(delta.clone(), beta), elastic_net(delta, beta),
                         f"wrong at beta = {beta} for a batch of shape {shape}: beta weighs the L1 norm, "
                         "the squared L2 norm has weight 1")
        per_row = torch.rand(shape[0], generator=generator)
        expect_close(en_distortion(delta.clone(), per_row), elastic_net(delta, per_row),
                     "wrong with one beta per row (a float B tensor): row i should use beta[i]")


@exercise("en_soft_threshold", chapter="ead/elastic_net")
def _en_soft_threshold(en_soft_threshold) -> None:
    """``en_soft_threshold(z, x0, beta)``: move z toward x0 by beta, stopping at x0; no box."""
    generator = torch.Generator().manual_seed(12)
    z = torch.rand(4, 1, 6, 6, generator=generator) * 2.4 - 0.7  # far outside [0, 1] on both sides
    x0 = torch.rand(4, 1, 6, 6, generator=generator)
    for beta in (0.0, 0.1, 0.4):
        answer = en_soft_threshold(z.clone(), x0.clone(), beta)
        expect(isinstance(answer, torch.Tensor) and answer.shape == z.shape,
               f"return a tensor of the same shape as z, {tuple(z.shape)}")
        difference = z - x0
        expected = x0 + difference.sign() * (difference.abs() - beta).clamp(min=0)
        regions = {"the dead zone |z - x0| <= beta (the result there is x0)": difference.abs() <= beta,
                   "the region z - x0 > beta (z moves toward x0, down by beta)": difference > beta,
                   "the region z - x0 < -beta (z moves toward x0, up by beta)": difference < -beta}
        for where, mask in regions.items():
            expect_close(answer[mask], expected[mask], f"at beta = {beta}, wrong values in {where}; "
                         "no clipping here: values outside [0, 1] stay outside")


# --- The projected shrinkage-thresholding step ----------------------------------------------------------

@exercise("median_shrink", chapter="ead/shrinkage")
def _median_shrink(median_shrink) -> None:
    """``median_shrink(z, x0, beta)`` computes S_beta (eq. 9) with only minimum, maximum and clamp."""
    from ead_tutorial.attacks import shrink

    generator = torch.Generator().manual_seed(9)
    z = torch.rand(4, 1, 6, 6, generator=generator) * 1.4 - 0.2   # some iterates lie outside the box
    x0 = torch.rand(4, 1, 6, 6, generator=generator)
    for beta in (0.0, 0.05, 0.3):
        answer = median_shrink(z.clone(), x0.clone(), beta)
        expect(isinstance(answer, torch.Tensor) and answer.shape == z.shape,
               f"return a tensor of the same shape as z, {tuple(z.shape)}")
        regions = {"the dead zone |z - x0| <= beta (the result there is x0)": (z - x0).abs() <= beta,
                   "the region z - x0 > beta (z moves down by beta, then into the box)": z - x0 > beta,
                   "the region z - x0 < -beta (z moves up by beta, then into the box)": z - x0 < -beta}
        for where, mask in regions.items():
            expect_close(answer[mask], shrink(z, x0, beta)[mask], f"at beta = {beta}, wrong values in {where}")


@exercise("exact_prox_step", chapter="ead/shrinkage")
def _exact_prox_step(exact_prox_step) -> None:
    """``exact_prox_step(x, grad, x0, alpha, beta)``: S_{alpha beta}(x - alpha grad), the exact proximal step."""
    from ead_tutorial.attacks import shrink

    generator = torch.Generator().manual_seed(13)
    x0 = torch.rand(3, 1, 6, 6, generator=generator)
    x0[x0 < 0.4] = 0.0
    x = (x0 + 0.1 * torch.randn(x0.shape, generator=generator)).clamp(0, 1)
    grad = torch.randn(x0.shape, generator=generator) * 30
    answer = exact_prox_step(x.clone(), grad.clone(), x0.clone(), 0.01, 0.0)
    expect(isinstance(answer, torch.Tensor) and answer.shape == x.shape,
           f"return a tensor of the same shape as x, {tuple(x.shape)}")
    expect_close(answer, shrink(x - 0.01 * grad, x0, 0.0),
                 "wrong at beta = 0, where the step is projected gradient descent: step against the gradient, "
                 "then clip to the box")
    for alpha, beta in ((0.01, 0.05), (0.005, 1.0), (0.01, 3.0)):
        expect_close(exact_prox_step(x.clone(), grad.clone(), x0.clone(), alpha, beta),
                     shrink(x - alpha * grad, x0, alpha * beta),
                     f"wrong at alpha = {alpha}, beta = {beta}: which threshold does the proximal operator of "
                     "alpha h use, where h = beta ||. - x0||_1 + the box?")


@exercise("unchanged_share", chapter="ead/shrinkage")
def _unchanged_share(unchanged_share) -> None:
    """``unchanged_share(z, x0, beta)``: per row, the share of coordinates that S_beta leaves exactly at x0."""
    from ead_tutorial.attacks import shrink

    generator = torch.Generator().manual_seed(14)
    x0 = torch.rand(5, 1, 8, 8, generator=generator)
    x0[x0 < 0.6] = 0.0  # background, as on MNIST
    x0[x0 > 0.9] = 1.0  # saturated stroke
    z = x0 + 0.2 * torch.randn(x0.shape, generator=generator)
    for beta in (0.0, 0.05, 0.2):
        answer = unchanged_share(z.clone(), x0.clone(), beta)
        expected = (shrink(z, x0, beta) == x0).flatten(1).float().mean(1)
        expect(isinstance(answer, torch.Tensor) and answer.shape == expected.shape,
               f"return one share per row, a float tensor of shape {tuple(expected.shape)}")
        expect(((answer >= 0) & (answer <= 1)).all(), "a share lies in [0, 1]: divide the count by the row's size")
        expect(not (answer < expected - 1e-6).any(),
               f"at beta = {beta} some rows have too few unchanged coordinates: the dead zone is not the only "
               "place where S_beta returns x0; think of pixels at 0 or 1 that the step pushes out of the box")
        expect_close(answer, expected, f"at beta = {beta} some rows have too many unchanged coordinates")


# --- ISTA and FISTA -------------------------------------------------------------------------------------

@exercise("smooth_part_gradient", chapter="ead/ista_fista")
def _smooth_part_gradient(smooth_part_gradient) -> None:
    """``smooth_part_gradient(model, y, x0, targets, c)``: the gradient of g = c f6 + ||y - x0||_2^2 at y."""
    from ead_tutorial.objectives import f6

    model = tiny_classifier(15, hidden=None)  # a linear classifier: the check needs gradients, not a trained network
    x0, targets = _rows_targets(model, 4, seed=15)
    y = (x0 + 0.2 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(16))).clamp(0, 1)

    def reference(c):
        slack = y.clone().requires_grad_()
        g = c * f6(model(slack), targets) + (slack - x0).flatten(1).pow(2).sum(1)
        return torch.autograd.grad(g.sum(), slack)[0]

    zero = torch.zeros(4)
    with one_thread():
        answer = smooth_part_gradient(model, y.clone(), x0.clone(), targets.clone(), zero)
        expect_close(answer, reference(zero), "wrong at c = 0, where g is the squared distance ||y - x0||_2^2 "
                                              "alone: what is its gradient?", rtol=1e-4, atol=1e-5)
        for c in (torch.full((4,), 2.0), torch.tensor([0.5, 1.0, 4.0, 10.0])):
            expect_close(smooth_part_gradient(model, y.clone(), x0.clone(), targets.clone(), c), reference(c),
                         "wrong for c > 0: the gradient of c f6 (C&W's loss on the logits, targeted, kappa = 0) "
                         "should be added, scaled by each row's own c", rtol=1e-4, atol=1e-5)


@exercise("fista_step", chapter="ead/ista_fista")
def _fista_step(fista_step) -> None:
    """``fista_step(x, y, grad, x0, beta, k, steps, lr)``: one step of Algorithm 1, returning (x^(k+1), y^(k+1))."""
    from ead_tutorial.attacks.ead_attack import momentum, shrink, step_size

    generator = torch.Generator().manual_seed(17)
    x0 = torch.rand(3, 1, 6, 6, generator=generator)
    x0[x0 < 0.4] = 0.0
    x = (x0 + 0.05 * torch.randn(x0.shape, generator=generator)).clamp(0, 1)
    y = x + 0.05 * torch.randn(x0.shape, generator=generator)  # the slack point is not projected
    grad = torch.randn(x0.shape, generator=generator) * 5
    for k, steps, lr, beta in ((0, 10, 0.01, 1e-3), (4, 10, 0.01, 1e-3), (9, 10, 0.02, 1e-2), (3, 7, 0.05, 0.0)):
        answer = fista_step(x.clone(), y.clone(), grad.clone(), x0.clone(), beta, k, steps, lr)
        expect(isinstance(answer, tuple) and len(answer) == 2, "return a pair (x^(k+1), y^(k+1))")
        new_x = shrink(y - step_size(k, steps, lr) * grad, x0, beta)
        where = f"at k = {k} of {steps} steps, lr = {lr}, beta = {beta}"
        if k == 0:
            expect_close(answer[0], new_x, f"x^(k+1) is wrong {where}, where alpha_0 = lr: take the gradient "
                                           "step from the slack point y, then apply S_beta")
        expect_close(answer[0], new_x, f"x^(k+1) is wrong {where}: does the step size alpha_k decay with the "
                                       "square root of the remaining fraction of the run?")
        expect_close(answer[1], new_x + momentum(k) * (new_x - x),
                     f"y^(k+1) is wrong {where}: the momentum weight is k/(k+3), on x^(k+1) - x^(k)")


# --- Decision rules -------------------------------------------------------------------------------------

@exercise("choose_by_rule", chapter="ead/decision_rules")
def _choose_by_rule(choose_by_rule) -> None:
    """``choose_by_rule(iterates, hits, x0, beta, rule)``: each row's successful iterate of least EN or L1."""
    from ead_tutorial.attacks.ead_attack import elastic_net

    generator = torch.Generator().manual_seed(18)
    steps, rows = 12, 6
    x0 = torch.rand(rows, 1, 4, 4, generator=generator)
    # Candidates from sparse and large to dense and small, so that L1, L2 and EN rank them differently.
    density = torch.rand(steps, rows, 1, 1, 1, generator=generator) * 0.9 + 0.1
    size = 0.1 * density ** -0.75 * (1 + 0.2 * torch.rand(steps, rows, 1, 1, 1, generator=generator))
    mask = torch.rand(steps, rows, 1, 4, 4, generator=generator) < density
    signs = torch.randint(0, 2, (steps, rows, 1, 4, 4), generator=generator) * 2 - 1
    iterates = x0 + mask * signs * size
    hits = torch.rand(steps, rows, generator=generator) < 0.6
    hits[:2] = False  # the first iterates do not reach the target
    hits[:, 0] = False  # a row that never succeeds
    beta = 0.05
    answer = choose_by_rule(iterates.clone(), hits.clone(), x0.clone(), beta, "en")
    expect(isinstance(answer, tuple) and len(answer) == 2, "return a pair (chosen, found)")
    found = hits.any(0)
    expect_close(torch.as_tensor(answer[1]).float(), found.float(),
                 "found should say, per row, whether any iterate of the row succeeded")
    expect_close(answer[0][0], x0[0], "a row without a successful iterate should return its original image x0")
    for rule in ("en", "l1"):
        delta = iterates - x0
        distance = (elastic_net(delta.flatten(0, 1), beta).view(steps, rows) if rule == "en"
                    else delta.flatten(2).abs().sum(2))
        index = distance.masked_fill(~hits, float("inf")).argmin(0)
        expected = torch.where(found[:, None, None, None], iterates[index, torch.arange(rows)], x0)
        chosen = choose_by_rule(iterates.clone(), hits.clone(), x0.clone(), beta, rule)[0]
        anywhere = iterates[distance.argmin(0), torch.arange(rows)]  # the choice if failures were candidates
        differs = (anywhere != expected).flatten(1).any(1) & found
        expect(not differs.any() or not torch.equal(chosen[differs], anywhere[differs]),
               f"rule {rule!r}: some rows chose an iterate that did not reach the target; only successful "
               "iterates are candidates")
        expect_close(chosen, expected, f"rule {rule!r} chose a different iterate in some rows: "
                     + ("the EN rule minimises beta ||delta||_1 + ||delta||_2^2 (squared)" if rule == "en"
                        else "the L1 rule minimises ||delta||_1 alone"))


@exercise("ead_untargeted_loss", chapter="ead/decision_rules")
def _ead_untargeted_loss(ead_untargeted_loss) -> None:
    """``ead_untargeted_loss(logits, true_labels, kappa)``: EAD eq. (6), max(Z_t0 - max_{i != t0} Z_i, -kappa)."""
    from ead_tutorial.objectives import f6

    generator = torch.Generator().manual_seed(19)
    logits = torch.randn(8, 10, generator=generator) * 3
    labels = torch.randint(0, 10, (8,), generator=generator)
    labels[:4] = logits[:4].argmax(1)  # rows the true class still wins
    answer = ead_untargeted_loss(logits.clone(), labels.clone(), 0.0)
    expected = f6(logits, labels, 0.0, targeted=False)
    expect(isinstance(answer, torch.Tensor) and answer.shape == expected.shape,
           f"return one value per row, a tensor of shape {tuple(expected.shape)}")
    expect_close(answer[:4], expected[:4], "at kappa = 0, wrong where the true class still wins (the loss should "
                 "be positive there): compare Z_t0 with the largest logit among the OTHER classes")
    expect_close(answer, expected, "at kappa = 0, wrong where another class already wins: the loss is "
                 "capped below at -kappa")
    for kappa in (0.5, 5.0):
        expect_close(ead_untargeted_loss(logits.clone(), labels.clone(), kappa),
                     f6(logits, labels, kappa, targeted=False), f"wrong at kappa = {kappa}: kappa should cap how far below 0 the loss can go")


# --- The beta sweep -------------------------------------------------------------------------------------

@exercise("l1_by_beta", chapter="ead/beta_sweep")
def _l1_by_beta(l1_by_beta) -> None:
    """``l1_by_beta(model, images, targets, betas, **budget)``: per beta, EAD's mean L1 over its successful rows."""
    from ead_tutorial.attacks import ead

    model = tiny_classifier(20, hidden=None)
    images, targets = _rows_targets(model, 8, seed=20)
    runs = (([1e-3, 0.05, 0.1], dict(search_steps=2, steps=20, initial_c=0.5)),
            ([1e-2, 5e-2], dict(search_steps=2, steps=20, initial_c=1.0, rule="l1")))
    with one_thread():
        for betas, budget in runs:
            answer = l1_by_beta(model, images.clone(), targets.clone(), betas, **budget)
            results = [ead(model, images, targets, beta=beta, **budget) for beta in betas]
            expected = torch.tensor([r.norms["L1"][r.success].mean().item() for r in results])
            expect(isinstance(answer, torch.Tensor) and answer.shape == expected.shape,
                   f"return one mean per beta, a float tensor of shape {tuple(expected.shape)}")
            expect_close(answer, expected, f"wrong means with the budget {budget}: run ead with each beta and "
                         "every option of the budget, then average the L1 distortion over the rows that "
                         "succeeded only", rtol=1e-4, atol=1e-5)


@exercise("choose_beta", chapter="ead/beta_sweep")
def _choose_beta(choose_beta) -> None:
    """``choose_beta(table, metric)``: the (rule, beta) of least ``metric`` among the rows with ASR 100."""
    import pandas as pd

    generator = torch.Generator().manual_seed(21)
    index = pd.MultiIndex.from_product([["EN", "L1"], [1e-4, 1e-3, 1e-2, 5e-2]], names=["rule", "beta"])
    for attempt in range(3):
        values = torch.rand(len(index), 3, generator=generator).double() * 10 + 1
        asr = torch.where(torch.rand(len(index), generator=generator) < 0.6, 100.0, 87.5)
        asr[0] = 100.0
        table = pd.DataFrame({"ASR": asr.numpy(), "L1": values[:, 0].numpy(), "L2": values[:, 1].numpy(),
                              "Linf": values[:, 2].numpy()}, index=index)
        for metric in ("L1", "L2", "Linf"):
            lowest = table[metric].idxmin()
            table.loc[lowest, "ASR"] = 87.5  # the lowest value overall comes from a row that failed somewhere
            answer = choose_beta(table.copy(), metric)
            expected = table[table["ASR"] == 100][metric].idxmin()
            expect(isinstance(answer, tuple) and len(answer) == 2, "return a pair (rule, beta), a row's index")
            expect(answer != lowest, f"for {metric}, your choice failed on some rows: keep only rows with ASR 100")
            expect(answer == expected, f"for {metric}, another row with ASR 100 has a smaller {metric}")


# --- EAD against C&W ------------------------------------------------------------------------------------

@exercise("pixels_changed_ratio", chapter="ead/ead_vs_cw")
def _pixels_changed_ratio(pixels_changed_ratio) -> None:
    """``pixels_changed_ratio(model, images, targets, beta, **budget)``: EAD's mean L0 / C&W's, rows both solved."""
    from ead_tutorial.attacks import cw_l2, ead

    model = tiny_classifier(22, hidden=None)
    images, targets = _rows_targets(model, 10, seed=22)
    with one_thread():
        for beta, budget in ((0.05, dict(search_steps=2, steps=20, initial_c=0.5)),
                             (0.02, dict(search_steps=1, steps=20, initial_c=2.0))):
            answer = pixels_changed_ratio(model, images.clone(), targets.clone(), beta, **budget)
            cw = cw_l2(model, images, targets, box="projected", **budget)
            elastic = ead(model, images, targets, beta=beta, **budget)
            both = cw.success & elastic.success
            expected = (elastic.norms["L0"][both].mean() / cw.norms["L0"][both].mean()).item()
            expect_close(answer, expected, f"wrong ratio at beta = {beta}: run cw_l2 (box='projected') and ead "
                         "with the same budget, keep only the rows BOTH attacks solved, and divide EAD's mean "
                         "pixels changed (L0) by C&W's", rtol=1e-4)


@exercise("worst_case", chapter="ead/ead_vs_cw")
def _worst_case(worst_case) -> None:
    """``worst_case(success, distortion, targets_per_image)``: the worst case's ASR (percent) and mean distortion."""
    from ead_tutorial.metrics import case_table

    generator = torch.Generator().manual_seed(23)
    for images, per_image in ((6, 9), (5, 4)):
        success = torch.rand(images * per_image, generator=generator) < 0.85
        success[:per_image] = True  # at least one image where every target succeeded
        distortion = torch.rand(images * per_image, generator=generator) * 20
        answer = worst_case(success.clone(), distortion.clone(), per_image)
        expected = case_table(success, {"D": distortion}, targets_per_image=per_image, by="D").loc["worst"]
        expect(isinstance(answer, tuple) and len(answer) == 2, "return a pair (ASR in percent, mean distortion)")
        expect_close(answer[0], expected["ASR"], f"wrong ASR with {per_image} targets per image: an image counts "
                     "as a success only if every one of its targets succeeded (and ASR is in percent)")
        expect_close(answer[1], expected["D"], f"wrong mean distortion with {per_image} targets per image: take each "
                     "image's largest distortion (its hardest target), averaged over the images that count as "
                     "successes")
