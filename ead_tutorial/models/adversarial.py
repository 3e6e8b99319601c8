"""Adversarial training as the EAD paper runs it: attack training images, keep their true labels, retrain.

The paper attacks 1,000 training images toward all nine other classes with one attack,
adds the 9,000 examples to the training set with their *true* labels ("label-corrected"),
and trains the network again (Chen et al., 2018, "Complementing adversarial training").
Crafting the examples is the long part, so it runs in chunks that are saved as they
finish: an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.models.train import TrainConfig, train_classifier

# attack(model, images, targets, true_labels) -> AttackResult, targeted, on the rows given
TrainingAttack = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], AttackResult]


def label_corrected(result: AttackResult, true_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The successful examples of ``result`` with the true labels of their images: (M x ..., int64 M), on the CPU."""
    keep = result.success.cpu()
    return result.adversarial.detach().cpu()[keep], true_labels.cpu()[keep]


def craft_training_examples(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attack: TrainingAttack, *,
                            chunk: int = 100, checkpoint_dir: str | Path | None = None,
                            progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack every image of ``x`` toward each of its other classes; return the label-corrected successes.

    Parameters
    ----------
    model : the network to attack, in eval mode
    x : float N x ..., training images in [0, 1]; y : int64 N, their labels
    attack : ``attack(model, images, targets, true_labels)`` returning an :class:`AttackResult`
    chunk : images attacked at once (each gives K - 1 rows)
    checkpoint_dir : each finished chunk is saved there as ``chunk-<i>.pt``; a rerun with the
        same arguments loads finished chunks instead of attacking again

    Returns
    -------
    (examples, labels): float M x ... in [0, 1] and int64 M, on the CPU; M <= N (K - 1)
    """
    from ead_tutorial.data import with_all_targets

    device = next(model.parameters()).device
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    examples, labels = [], []
    starts = range(0, len(x), chunk)
    for number, start in enumerate(tqdm(starts, desc="crafting examples", unit="chunk", disable=not progress)):
        saved = directory / f"chunk-{number}.pt" if directory is not None else None
        if saved is not None and saved.exists():
            part = torch.load(saved, weights_only=True)
        else:
            images, targets, index = with_all_targets(x[start:start + chunk].to(device), y[start:start + chunk].to(device))
            true_labels = y[start:start + chunk].to(device)[index]
            adversarial, true = label_corrected(attack(model, images, targets, true_labels), true_labels)
            part = {"examples": adversarial, "labels": true}
            if saved is not None:
                torch.save(part, saved.with_suffix(".tmp"))
                saved.with_suffix(".tmp").replace(saved)  # never leave a half-written chunk
        examples.append(part["examples"])
        labels.append(part["labels"])
    return torch.cat(examples), torch.cat(labels)


def train_adversarial(make_model: Callable[[], torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
                      extra: list[tuple[torch.Tensor, torch.Tensor]], config: TrainConfig = TrainConfig(), *,
                      checkpoint_dir: str | Path | None = None, device: str | torch.device | None = None,
                      progress: bool = True) -> tuple[torch.nn.Module, list[dict]]:
    """Train a fresh network on ``(x, y)`` augmented with each ``(examples, labels)`` of ``extra``.

    With ``extra=[]`` this is the null model of the paper's Table 14, trained the same way.
    Returns the network in eval mode and its per-epoch history; ``checkpoint_dir`` makes
    the training resumable, as in :func:`~ead_tutorial.models.train_classifier`.
    """
    inputs = torch.cat([x.cpu(), *(examples.cpu() for examples, _ in extra)])
    labels = torch.cat([y.cpu(), *(true.cpu() for _, true in extra)])
    torch.manual_seed(config.seed)
    model = make_model()
    history = train_classifier(model, inputs, labels, config, checkpoint_dir=checkpoint_dir, device=device,
                               progress=progress)
    return model, history
