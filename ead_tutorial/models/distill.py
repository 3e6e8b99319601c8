"""Defensive distillation (Papernot et al., 2016), resumably; and the command that made the shipped students.

    python -m ead_tutorial.models.distill --temperature 100 [--epochs 50]

1. Train a teacher on the hard labels with the softmax at temperature T, softmax(Z / T).
2. Label the training set with the teacher's softmax(Z / T): soft labels, each row sums to 1.
3. Train a student of the same architecture on the soft labels, again at temperature T.
4. Deploy the student at temperature 1: its logits Z are used as they are.

Trained at T, the student's logits come out about T times larger than a normal
network's, so at T = 1 its softmax saturates: one class gets probability 1 to within
float precision, and the gradients of softmax-based losses vanish.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ead_tutorial import __version__
from ead_tutorial.devices import describe_hardware
from ead_tutorial.models.pretrained import DISTILLED_PREFIX
from ead_tutorial.models.train import TrainConfig, accuracy, train_classifier


@torch.no_grad()
def glorot_initialised(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every convolution and linear layer reset to Glorot-uniform weights and zero biases.

    These are the defaults of the Keras layers that the reference implementations of
    distillation were written with. Their weights are larger than PyTorch's defaults, and
    the difference matters at T = 100: the loss of softmax(Z / T) starts flat, and the
    distillation chapter measures a smaller gradient there under PyTorch's defaults.
    """
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


@torch.no_grad()
def soft_labels(teacher: torch.nn.Module, x: torch.Tensor, temperature: float, batch_size: int = 1000) -> torch.Tensor:
    """The teacher's softmax(Z / T) on every row of ``x`` (N x ..., in [0, 1]): float N x K on the CPU, rows sum to 1."""
    teacher.eval()
    device = next(teacher.parameters()).device
    return torch.cat([F.softmax(teacher(batch.to(device)) / temperature, dim=1).cpu()
                      for batch in x.split(batch_size)])


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean cross-entropy between soft ``targets`` (B x K, rows sum to 1) and softmax(student_logits / T).

    This is the loss :func:`~ead_tutorial.models.train_classifier` minimises when given soft labels.
    """
    return -(targets * F.log_softmax(student_logits / temperature, dim=1)).sum(1).mean()


def distill(make_model, x: torch.Tensor, y: torch.Tensor, temperature: float, config: TrainConfig = TrainConfig(), *,
            checkpoint_dir: str | Path | None = None, device: str | torch.device | None = None,
            progress: bool = True) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """Train a teacher and then a student at ``temperature``; return ``(teacher, student, histories)``.

    Parameters
    ----------
    make_model : builds a fresh, untrained network (the same architecture for both)
    x : float N x ..., training pixels in [0, 1]; y : int64 N, their labels
    temperature : T >= 1
    config : the training recipe for both networks; its ``temperature`` is replaced by T
    checkpoint_dir : teacher and student checkpoints go to its ``teacher/`` and ``student/``;
        an interrupted run resumes from the last finished epoch of either

    Both returned networks are in eval mode; deploy the student as it is (temperature 1).
    """
    if temperature < 1:
        raise ValueError(f"the distillation temperature must be at least 1, got {temperature}")
    config = dataclasses.replace(config, temperature=float(temperature))
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else None
    torch.manual_seed(config.seed)
    teacher = make_model()
    teacher_history = train_classifier(teacher, x, y, config, device=device, progress=progress,
                                       checkpoint_dir=directory / "teacher" if directory else None)
    labels = soft_labels(teacher, x, temperature)
    torch.manual_seed(config.seed + 1)
    student = make_model()
    student_history = train_classifier(student, x, labels, config, device=device, progress=progress,
                                       checkpoint_dir=directory / "student" if directory else None)
    return teacher, student, {"teacher": teacher_history, "student": student_history}


def weights_name(temperature: float) -> str:
    """The shipped name of the student distilled at ``temperature``, e.g. ``mnist-distilled-T100``."""
    return f"{DISTILLED_PREFIX}{temperature:g}"


def main(argv: list[str] | None = None) -> None:
    from ead_tutorial.data import load_mnist
    from ead_tutorial.models.architectures import CWMnistNet

    parser = argparse.ArgumentParser(prog="python -m ead_tutorial.models.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--temperature", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: mnist-distilled-T<T>.pt)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(weights_name(args.temperature) + ".pt")
    config = TrainConfig(epochs=args.epochs, seed=args.seed)

    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    started = time.perf_counter()
    teacher, student, histories = distill(lambda: glorot_initialised(CWMnistNet()), x_train, y_train, args.temperature, config,
                                          checkpoint_dir=out.with_suffix(".ckpt"), device=args.device)
    wall = time.perf_counter() - started

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in student.state_dict().items()}, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    command = f"python -m ead_tutorial.models.distill --temperature {args.temperature:g}"
    if args.epochs != TrainConfig.epochs:
        command += f" --epochs {args.epochs}"
    if args.seed != TrainConfig.seed:
        command += f" --seed {args.seed}"
    record = {"dataset": "mnist", "temperature": args.temperature,
              "config": dataclasses.asdict(dataclasses.replace(config, temperature=args.temperature)),
              "teacher_test_accuracy": accuracy(teacher, x_test, y_test),
              "test_accuracy": accuracy(student, x_test, y_test), "sha256": digest, "command": command,
              "package_version": __version__, "torch_version": torch.__version__, "hardware": describe_hardware(),
              "wall_time_s_this_run": round(wall, 1),
              "wall_time_s_all_epochs": round(sum(epoch.get("seconds", 0.0) for history in histories.values()
                                                  for epoch in history), 1),
              "history": histories}
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    print(f"student test accuracy {record['test_accuracy']:.4f} (teacher {record['teacher_test_accuracy']:.4f}); "
          f"wrote {out} (sha256 {digest}) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
