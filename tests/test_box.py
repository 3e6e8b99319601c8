import pytest
import torch

from ead_tutorial import box


@pytest.mark.parametrize("name", list(box.BOXES))
def test_images_stay_in_the_box_for_any_variable(name):
    encoding = box.get_box(name)
    w = torch.randn(8, 1, 28, 28) * 5  # far outside [0, 1]
    encoding.after_step(w)
    x = encoding.to_image(w)
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("name", list(box.BOXES))
def test_round_trip_of_a_valid_image(name):
    encoding = box.get_box(name)
    x = torch.rand(4, 1, 28, 28)
    x[0, 0, 0, :2] = torch.tensor([0.0, 1.0])  # the box's corners too
    torch.testing.assert_close(encoding.to_image(encoding.to_variable(x)), x, atol=1e-6, rtol=0)


def test_tanh_variable_is_finite_at_the_corners():
    w = box.TanhBox.to_variable(torch.tensor([0.0, 1.0]))
    assert torch.isfinite(w).all()


def test_clipped_gradient_vanishes_outside_the_box():
    w = torch.tensor([-0.5, 0.5, 1.5], requires_grad=True)
    box.ClippedBox.to_image(w).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 0.0]


def test_clipped_gradient_passes_at_the_bounds():
    # A pixel that starts at exactly 0 or 1 must be able to move inwards (TensorFlow's clip,
    # which C&W used, passes the gradient there; torch's clamp alone does not).
    w = torch.tensor([0.0, 1.0], requires_grad=True)
    x = box.ClippedBox.to_image(w)
    x.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0] and x.tolist() == [0.0, 1.0]


def test_unknown_box():
    with pytest.raises(ValueError, match="tanh"):
        box.get_box("sigmoid")
