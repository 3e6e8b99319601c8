"""Exercises for the chapters on the fast gradient baselines. Each check compares the answer with the package on hidden inputs."""

from __future__ import annotations

import math

import torch

from ead_tutorial.exercises.checking import exercise, expect, expect_close
from ead_tutorial.exercises.hidden_inputs import tiny_classifier


@exercise("fgm_direction", chapter="baselines/fast_gradient")
def _fgm_direction(fgm_direction) -> None:
    """``fgm_direction(gradient, norm)`` is the FGM direction of each row, of length 1 in ``norm`` (0 for a zero gradient)."""
    from ead_tutorial.attacks.fast_gradient import unit_direction

    generator = torch.Generator().manual_seed(17)
    gradient = torch.randn(4, 1, 5, 5, generator=generator) * torch.tensor([1.0, 1e-3, 1.0, 50.0]).view(-1, 1, 1, 1)
    gradient[2] = 0.0  # a row where the loss is flat
    for norm in ("linf", "l2", "l1"):
        answer = fgm_direction(gradient.clone(), norm)
        expect(isinstance(answer, torch.Tensor) and answer.shape == gradient.shape,
               f"norm = {norm!r}: return a tensor of the gradient's shape, {tuple(gradient.shape)}")
        expect(not torch.isnan(answer[2]).any() and (answer[2] == 0).all(),
               f"norm = {norm!r}: a row whose gradient is all zero should get the direction 0, not NaN; "
               "guard the division")
        expected = unit_direction(gradient, norm)
        rows = torch.tensor([0, 1, 3])
        detail = {"linf": "every coordinate should move by exactly 1, with the gradient's sign",
                  "l2": "divide each row by its own Euclidean norm",
                  "l1": "divide each row by its own L1 norm (the sum of absolute values)"}[norm]
        expect_close(answer[rows], expected[rows], f"norm = {norm!r}, rows of very different sizes: {detail}", rtol=1e-5)


@exercise("ifgm_clip", chapter="baselines/fast_gradient")
def _ifgm_clip(ifgm_clip) -> None:
    """``ifgm_clip(x, x0, eps, norm)`` pulls x into the eps-ball around x0 (nearest point, "linf" or "l2"), then into [0, 1]."""
    from ead_tutorial.attacks.fast_gradient import project_to_ball

    generator = torch.Generator().manual_seed(19)
    x0 = (torch.rand(6, 1, 5, 5, generator=generator) > 0.5).float() * 0.9 + 0.05  # near black or white, as in MNIST
    scale = torch.tensor([0.01, 0.5, 0.02, 1.0, 0.3, 0.05]).view(-1, 1, 1, 1)
    x = x0 + torch.randn(6, 1, 5, 5, generator=generator) * scale
    eps = {"linf": torch.tensor([0.1, 0.2, 0.3, 0.1, 0.05, 0.25]), "l2": torch.tensor([0.5, 1.0, 0.8, 2.0, 0.6, 0.9])}
    for norm in ("linf", "l2"):
        answer = ifgm_clip(x.clone(), x0.clone(), eps[norm].clone(), norm)
        expect(isinstance(answer, torch.Tensor) and answer.shape == x.shape,
               f"norm = {norm!r}: return a tensor of the shape of x, {tuple(x.shape)}")
        expected = (x0 + project_to_ball(x - x0, eps[norm], norm)).clamp(0, 1)
        size = (x - x0).flatten(1).abs().amax(1) if norm == "linf" else (x - x0).flatten(1).norm(dim=1)
        inside = size <= eps[norm]
        expect(inside.any() and (~inside).any(), "internal: the hidden rows should lie both inside and outside the ball")
        expect_close(answer[inside], expected[inside],
                     f"norm = {norm!r}, rows already within eps of x0: the ball clip should leave them alone, "
                     "and only the box [0, 1] may change them")
        expect_close(answer[~inside], expected[~inside],
                     f"norm = {norm!r}, rows farther than eps from x0: move x - x0 to the nearest point of the "
                     "ball (one eps per row), add x0, then clip to the box [0, 1]", rtol=1e-5, atol=1e-6)


def _steepest_l1_reference(model, x0, target, eps, k, steps):
    from ead_tutorial.attacks.fast_gradient import loss_gradient, project_to_ball

    x = x0
    eps_rows = torch.full((len(x0),), float(eps))
    for _ in range(steps):
        flat = loss_gradient(model, x, target, targeted=True).flatten(1)
        chosen = torch.zeros_like(flat).scatter(1, flat.abs().topk(k, dim=1).indices, 1.0) * flat.sign()
        moved = x - eps / (steps * k) * chosen.view_as(x)
        x = (x0 + project_to_ball(moved - x0, eps_rows, "l1")).clamp(0, 1).detach()
    return x


@exercise("steepest_l1_ifgm", chapter="baselines/fast_gradient")
def _steepest_l1_ifgm(steepest_l1_ifgm) -> None:
    """``steepest_l1_ifgm(model, x0, target, eps, k, steps=10)``: targeted I-FGM whose steps go to the k steepest pixels."""
    generator = torch.Generator().manual_seed(23)
    model = tiny_classifier(23, side=5)
    x0 = (torch.rand(4, 1, 5, 5, generator=generator) > 0.6).float()  # black and white pixels: the box binds
    with torch.no_grad():
        target = (model(x0).argmax(1) + 1 + torch.randint(9, (4,), generator=generator)) % 10
    for steps, eps, k, hint in (
            (1, 0.8, 1, "with steps = 1: check which pixels move (largest |gradient|), by how much "
                        "(the step eps / steps shared by k pixels), in which direction (a targeted step lowers J), "
                        "and the box clip"),
            (1, 2.0, 4, "with steps = 1 and k = 4: each of the k pixels gets an equal share of the step"),
            (10, 3.0, 3, "one step is right but ten are not: take each step's gradient at the current iterate, "
                         "and clip after every step"),
            (4, 2.0, 1, "with steps = 4: the step length is eps / steps")):
        answer = (steepest_l1_ifgm(model, x0.clone(), target.clone(), eps, k) if steps == 10
                  else steepest_l1_ifgm(model, x0.clone(), target.clone(), eps, k, steps=steps))
        expect(isinstance(answer, torch.Tensor) and answer.shape == x0.shape,
               f"return the last iterate, a tensor of the shape of x0, {tuple(x0.shape)}")
        expect_close(answer.detach(), _steepest_l1_reference(model, x0, target, eps, k, steps), hint, rtol=1e-5,
                     atol=1e-5)


@exercise("summarise_attack", chapter="baselines/all_attacks")
def _summarise_attack(summarise_attack) -> None:
    """``summarise_attack(success, norms)`` returns the ASR (percent) and each norm's mean over the successful rows."""
    from ead_tutorial.metrics import success_rate

    generator = torch.Generator().manual_seed(29)
    for n, share in ((18, 0.6), (9, 0.0), (5, 1.0)):
        success = torch.rand(n, generator=generator) < share
        norms = {"L1": torch.rand(n, generator=generator) * 20, "L2": torch.rand(n, generator=generator) * 2,
                 "Linf": torch.rand(n, generator=generator)}
        for name in norms:
            norms[name][~success] = 0.0  # failed rows keep x0: no distortion
        answer = summarise_attack(success.clone(), {name: value.clone() for name, value in norms.items()})
        expect(isinstance(answer, dict) and {"ASR", *norms} <= set(answer), 'return a dict with "ASR" and every norm')
        expect_close(answer["ASR"], success_rate(success),
                     f"on a batch of {n} rows: the ASR is the percentage (0 to 100) of rows that succeeded")
        for name, value in norms.items():
            if not success.any():
                expect(math.isnan(float(answer[name])), "when no row succeeded, the mean distortion is undefined: "
                                                        "return NaN, not 0")
                continue
            expect_close(answer[name], value[success].double().mean().item(),
                         f"{name}: average over the successful rows only, not over all rows", rtol=1e-5)


@exercise("all_attacks_best_worst", chapter="baselines/all_attacks")
def _all_attacks_best_worst(all_attacks_best_worst) -> None:
    """``all_attacks_best_worst(success, distortion, targets_per_image)``: the EAD paper's best and worst case (ASR, mean distortion)."""
    from ead_tutorial.metrics import case_table

    generator = torch.Generator().manual_seed(31)
    for n_images, per_image, share in ((6, 9, 0.7), (4, 3, 0.5), (3, 9, 1.0)):
        success = torch.rand(n_images, per_image, generator=generator) < share
        if share < 1:
            success[0] = False  # an image no target succeeds on
        success[-1] = True  # an image every target succeeds on
        success = success.flatten()
        distortion = (torch.rand(n_images * per_image, generator=generator) * 3 + 0.5) * success  # 0 where failed
        answer = all_attacks_best_worst(success.clone(), distortion.clone(), per_image)
        expect(isinstance(answer, dict) and {"best", "worst"} <= set(answer), 'return a dict with keys "best" and "worst"')
        table = case_table(success, {"D": distortion}, targets_per_image=per_image, by="D")
        setting = f"{n_images} images x {per_image} targets"
        for case, rule in (("best", "an image succeeds if any of its targets does, with its least distortion "
                                    "among the successful targets"),
                           ("worst", "an image succeeds only if every target does, with its largest distortion")):
            expect(isinstance(answer[case], (tuple, list)) and len(answer[case]) == 2,
                   f'answer["{case}"] should be a pair (ASR in percent, mean distortion)')
            asr, mean = answer[case]
            expect_close(asr, table.loc[case, "ASR"], f"{setting}, {case} case, ASR: {rule}; the ASR is a percentage "
                                                      "of images")
            if math.isnan(table.loc[case, "D"]):
                expect(math.isnan(float(mean)), f"{setting}, {case} case: no image succeeds, so the mean distortion "
                                                "is undefined: return NaN")
            else:
                expect_close(mean, table.loc[case, "D"], f"{setting}, {case} case, distortion: {rule}; average over "
                                                         "the images that succeed", rtol=1e-5)


@exercise("relu_feasible", chapter="baselines/exact_minimum")
def _relu_feasible(relu_feasible) -> None:
    """``relu_feasible(z, a, s, l, u)``: whether (z, a, s) satisfies the four big-M rows of one ReLU with bounds l < 0 < u."""
    l, u = -2.0, 3.0
    for z in (-1.5, -0.2, 0.0, 0.7, 2.5):
        relu = max(z, 0.0)
        right_s = 1.0 if z > 0 else 0.0
        expect(bool(relu_feasible(z, relu, right_s, l, u)),
               f"z = {z}, a = relu(z) = {relu}, s = {right_s:g}: the true ReLU output must be feasible")
        for wrong in (relu + 0.5, relu - 0.3, -0.1):
            if wrong != relu:
                for s in (0.0, 1.0):
                    expect(not relu_feasible(z, wrong, s, l, u),
                           f"z = {z}, a = {wrong} (not relu(z)), s = {s:g}: this point must be cut off; "
                           "check a >= z, a >= 0, a <= z - l (1 - s) and a <= u s")
    expect(not relu_feasible(1.0, 1.0, 0.0, l, u),
           "z = 1 > 0 with s = 0 would force a = 0; a = 1 must then be infeasible (which row says a <= u s?)")
    expect(not relu_feasible(-1.0, 0.0, 1.0, l, u),
           "z = -1 < 0 with s = 1 would force a = z < 0; a = 0 must then be infeasible (which row says a <= z - l (1 - s)?)")


@exercise("robustness_curve", chapter="baselines/exact_minimum")
def _robustness_curve(robustness_curve) -> None:
    """``robustness_curve(success, distance, eps)``: per eps, the share of rows an attack breaks within eps."""
    success = torch.tensor([True, True, False, True, True, False])
    distance = torch.tensor([0.5, 1.0, 0.0, 2.0, 1.0, 0.0])  # failed rows keep x0, distance 0
    eps = torch.tensor([0.0, 0.5, 1.0, 1.5, 3.0])
    answer = robustness_curve(success.clone(), distance.clone(), eps.clone())
    expect(isinstance(answer, torch.Tensor) and answer.shape == eps.shape,
           f"return one share per eps, a tensor of shape {tuple(eps.shape)}")
    expect(float(answer[0]) == 0.0,
           "at eps = 0 no row is broken: a failed row (distance 0) is not a success at any budget")
    expect(float(answer[-1]) <= 4 / 6 + 1e-6, "failed rows never count as broken, however large eps is")
    expected = torch.tensor([(success & (distance <= e)).float().mean().item() for e in eps])
    expect_close(answer.float(), expected,
                 "a row counts at eps when the attack succeeded with distance <= eps (on the boundary too), "
                 "and the share is over all rows, failed ones included", atol=1e-6)
