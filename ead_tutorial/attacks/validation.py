"""Checks that every attack runs on its inputs before spending any compute.

Each failed check raises a ValueError or TypeError that names the problem and the fix.
"""

from __future__ import annotations

import numbers

import torch


def check_model(model: torch.nn.Module) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if any(module.training for module in model.modules()):
        raise ValueError("the model is in training mode (dropout and batch norm would make the attack random); "
                         "call model.eval() first")


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point with pixels in [0, 1], got {images.dtype}; "
                        "for uint8 images use images.float() / 255")
    if images.dim() < 2 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch (B x ...), got shape {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or Inf; check how they were loaded or preprocessed")
    low, high = images.min().item(), images.max().item()
    if low < 0 or high > 1:
        raise ValueError(f"pixels must lie in [0, 1], found values in [{low:.3g}, {high:.3g}]; "
                         "pass unnormalised images and put any normalisation inside the model")


def check_labels(labels: torch.Tensor, images: torch.Tensor, name: str = "targets") -> None:
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor of class indices, "
                        f"got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (len(images),):
        raise ValueError(f"{name} must have shape ({len(images)},), one per image, got {tuple(labels.shape)}")
    if labels.device != images.device:
        raise ValueError(f"{name} are on {labels.device} but images on {images.device}; move them with .to()")


def check_same_device_and_dtype(model: torch.nn.Module, images: torch.Tensor) -> None:
    parameter = next(model.parameters(), None)
    if parameter is None:
        return
    if parameter.device != images.device:
        raise ValueError(f"the model is on {parameter.device} but the images on {images.device}; "
                         f"move them with images.to({str(parameter.device)!r})")
    if parameter.dtype != images.dtype:
        raise TypeError(f"the model's parameters are {parameter.dtype} but the images {images.dtype}; "
                        f"convert with images.to({parameter.dtype})")


@torch.no_grad()
def first_call(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The model's outputs on ``images``; if the model cannot take them, an error that says so and why."""
    try:
        return model(images)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"the model cannot take images of shape {tuple(images.shape)} ({images.dtype}): "
                         f"it failed with {type(error).__name__}: {reason}. Pass images shaped as the model "
                         "expects (for the MNIST networks, B x 1 x 28 x 28; reshape a flat B x 784 batch "
                         "with images.view(-1, 1, 28, 28))") from error


def check_non_negative(**values: float | torch.Tensor) -> None:
    for name, value in values.items():
        if (torch.as_tensor(value) < 0).any():
            raise ValueError(f"{name} must be non-negative, got {value}")


def check_counts(**counts: int) -> None:
    """Each of ``counts`` (iterations, rounds) must be a whole number of at least 1."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}: "
                             f"with {name}={value!r} the attack would not run at all")


def check_c_factor(c_factor: float) -> None:
    """The factor c grows by after a failed try must be above 1, or c would never grow."""
    if c_factor <= 1:
        raise ValueError(f"c_factor must be above 1 so that c grows after a failure, got {c_factor}")


@torch.no_grad()
def check_logits(logits: torch.Tensor, labels: torch.Tensor) -> None:
    """The model's outputs must be logits, and every label a valid class."""
    if logits.dim() != 2:
        raise ValueError(f"the model must return B x K logits, got shape {tuple(logits.shape)}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be class indices in [0, {logits.shape[1] - 1}]")
    sums = logits.double().sum(1)
    if len(logits) and (logits >= 0).all() and (logits <= 1).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ValueError("the model's outputs are probabilities (each row sums to 1), but the attacks need logits; "
                         "remove the final softmax layer")


def check_attack_inputs(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                        targeted: bool, true_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Run every check; return the model's logits on the clean images (B x K), which the checks need.

    In the targeted mode a target equal to the true label (``true_labels``, or the
    model's own prediction when they are not given) is an error: there is nothing to attack.
    """
    check_model(model)
    check_images(images)
    check_labels(labels, images, "targets" if targeted else "labels")
    check_same_device_and_dtype(model, images)
    logits = first_call(model, images)
    check_logits(logits, labels)
    if targeted:
        reference = true_labels if true_labels is not None else logits.argmax(1)
        clash = (labels == reference).nonzero().flatten()
        if len(clash):
            source = "true label" if true_labels is not None else "class the model already predicts"
            raise ValueError(f"{len(clash)} targets equal the {source} (rows {clash[:5].tolist()}...); "
                             "a targeted attack needs another class: see ead_tutorial.data.with_all_targets")
    return logits
