"""FGM and I-FGM: step norms, the eps-ball and box, and the grid search for the smallest eps."""

import pytest
import torch

from ead_tutorial.attacks import eps_grid, fgm, ifgm, smallest_eps
from ead_tutorial.attacks.fast_gradient import NORMS, _fgm_step, loss_gradient, project_to_ball, unit_direction
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.metrics import l1, l2, linf

NORM_OF = {"l1": l1, "l2": l2, "linf": linf}


def small_model(pixels=16, classes=4):
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(pixels, 12), torch.nn.Tanh(),
                               torch.nn.Linear(12, classes)).double().eval()


@pytest.fixture(scope="module")
def mnist_rows(shipped_model):
    x, y = sample_correct(shipped_model, 1, seed=0)
    images, targets, index = with_all_targets(x, y)
    return images, targets, y[index]


@pytest.mark.parametrize("norm", NORMS)
def test_unit_direction_has_norm_one(norm):
    gradient = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(NORM_OF[norm](unit_direction(gradient, norm)), torch.ones(5, dtype=torch.float64))


@pytest.mark.parametrize("norm", NORMS)
def test_fgm_step_has_exactly_the_norm_it_claims(norm):
    # Mid-grey images and small steps, so that no pixel reaches the box and the clip does nothing.
    model, images = small_model(), torch.rand(6, 1, 4, 4, dtype=torch.float64) * 0.2 + 0.4
    labels = model(images).argmax(1)
    eps = {"l1": 0.3, "l2": 0.1, "linf": 0.05}[norm]
    step = _fgm_step(images, unit_direction(loss_gradient(model, images, labels, False), norm),
                     torch.full((6,), eps, dtype=torch.float64))
    torch.testing.assert_close(NORM_OF[norm](step - images), torch.full((6,), eps, dtype=torch.float64))
    # fgm returns that step where it succeeds, and the original image elsewhere.
    result = fgm(model, images, labels, norm=norm, eps=eps * 40, targeted=False)
    big_step = _fgm_step(images, unit_direction(loss_gradient(model, images, labels, False), norm),
                         torch.full((6,), eps * 40, dtype=torch.float64))
    assert result.success.any()
    torch.testing.assert_close(result.adversarial[result.success], big_step[result.success])
    torch.testing.assert_close(result.adversarial[~result.success], images[~result.success])


@pytest.mark.parametrize("norm", NORMS)
def test_project_to_ball_lands_in_the_ball_and_is_the_nearest_point(norm):
    generator = torch.Generator().manual_seed(0)
    delta = torch.randn(8, 20, generator=generator, dtype=torch.float64)
    eps = torch.rand(8, generator=generator, dtype=torch.float64) * 2
    projected = project_to_ball(delta, eps, norm)
    assert (NORM_OF[norm](projected) <= eps + 1e-9).all()
    # Points already inside stay put.
    torch.testing.assert_close(project_to_ball(projected, eps, norm), projected)
    # The projection p of v is the nearest point of a convex set: <v - p, z - p> <= 0 for every z in it.
    z = project_to_ball(torch.randn(8, 20, generator=generator, dtype=torch.float64) * 3, eps, norm)
    assert (((delta - projected) * (z - projected)).sum(1) <= 1e-9).all()
    # And nothing random in the ball comes closer.
    assert ((delta - projected).norm(dim=1) <= (delta - z).norm(dim=1) + 1e-9).all()


@pytest.mark.parametrize("norm", NORMS)
def test_ifgm_stays_in_the_eps_ball_and_the_box(norm, mnist_rows, shipped_model):
    images, targets, true = mnist_rows
    eps = {"l1": 20.0, "l2": 2.0, "linf": 0.2}[norm]
    result = ifgm(shipped_model, images, targets, norm=norm, eps=eps, true_labels=true)
    assert (NORM_OF[norm](result.adversarial - images) <= eps * (1 + 1e-5)).all()
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    assert (result.gradient_evaluations == 10).all()


def exhaustive_smallest(attack, model, images, targets, grid, norm):
    """The first successful eps of the grid per row, trying every value (NaN where none succeeds)."""
    answer = torch.full((len(images),), float("nan"))
    for eps in grid.tolist()[::-1]:
        success = attack(model, images, targets, norm=norm, eps=eps).success
        answer[success] = eps
    return answer


@pytest.mark.parametrize("attack_name,norm,resolution,largest",
                         [("fgm", "linf", 0.02, 0.6), ("fgm", "l2", 0.5, 8.0), ("ifgm", "l1", 5.0, 60.0),
                          ("ifgm", "linf", 0.03, 0.45)])
def test_grid_search_returns_the_smallest_successful_eps(attack_name, norm, resolution, largest, mnist_rows,
                                                         shipped_model):
    images, targets, _ = mnist_rows
    grid = eps_grid(norm, resolution, largest)
    found = smallest_eps(shipped_model, images, targets, attack=attack_name, norm=norm, grid=grid, chunk=3)
    attack = {"fgm": fgm, "ifgm": ifgm}[attack_name]
    expected = exhaustive_smallest(attack, shipped_model, images, targets, grid, norm)
    torch.testing.assert_close(found.details["eps"].float(), expected, equal_nan=True)
    assert found.success.any(), "the test needs at least one row that succeeds"
    assert torch.equal(found.success, ~expected.isnan())
    # A row tries the grid up to its answer and no further (everything, if it never succeeds).
    answer = found.details["eps"].double().nan_to_num(float(grid[-1]))
    position = (grid[None, :] - answer[:, None]).abs().argmin(1)
    assert torch.equal(found.details["candidates"], position + 1)
    # The returned examples are the attack's at that eps.
    solved = found.success
    again = attack(shipped_model, images[solved], targets[solved], norm=norm, eps=found.details["eps"][solved])
    torch.testing.assert_close(again.adversarial, found.adversarial[solved])


def test_fgm_grid_search_costs_one_gradient_per_row(mnist_rows, shipped_model):
    images, targets, _ = mnist_rows
    found = smallest_eps(shipped_model, images, targets, attack="fgm", norm="linf", grid=eps_grid("linf", 0.05))
    assert (found.gradient_evaluations == 1).all()


def test_paper_grids_have_a_thousand_values():
    for norm, (first, last) in {"linf": (1e-3, 1.0), "l1": (1.0, 1000.0), "l2": (1e-2, 10.0)}.items():
        grid = eps_grid(norm)
        assert len(grid) == 1000
        assert grid[0].item() == pytest.approx(first) and grid[-1].item() == pytest.approx(last)


def test_untargeted_fgm_moves_away_from_the_true_class(mnist_rows, shipped_model):
    images, _, true = mnist_rows
    result = smallest_eps(shipped_model, images[:1], true[:1], attack="fgm", norm="linf",
                          grid=eps_grid("linf", 0.01), targeted=False)
    assert result.success.all() and not result.targeted
    with torch.no_grad():
        assert shipped_model(result.adversarial).argmax(1) != true[0]


def test_bad_arguments_are_named(mnist_rows, shipped_model):
    images, targets, _ = mnist_rows
    with pytest.raises(ValueError, match="unknown norm"):
        fgm(shipped_model, images, targets, norm="l3", eps=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        fgm(shipped_model, images, targets, norm="l2", eps=-1.0)
    with pytest.raises(ValueError, match="one value per row"):
        ifgm(shipped_model, images, targets, norm="l2", eps=torch.ones(3))
    with pytest.raises(ValueError, match="strictly increasing"):
        smallest_eps(shipped_model, images, targets, attack="fgm", norm="l2", grid=[0.3, 0.2])
    with pytest.raises(ValueError, match="unknown attack"):
        smallest_eps(shipped_model, images, targets, attack="pgd", norm="l2")
    with pytest.raises(ValueError, match=r"pixels must lie in \[0, 1\]"):
        fgm(shipped_model, images * 2, targets, norm="l2", eps=1.0)
