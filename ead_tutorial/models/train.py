"""Training the C&W classifiers, resumably; and the command that made the shipped weights.

    python -m ead_tutorial.models.train mnist [--epochs 50] [--out mnist.pt]

The defaults are C&W's: SGD with Nesterov momentum 0.9, learning rate 0.01 with
a small per-step decay, batch 128, 50 epochs, dropout 0.5.
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
from tqdm.auto import tqdm

from ead_tutorial import __version__
from ead_tutorial.devices import describe_hardware, device as pick_device


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (C&W's values by default)."""

    epochs: int = 50
    batch_size: int = 128
    lr: float = 0.01
    lr_decay: float = 1e-6  # lr / (1 + lr_decay * step), as in C&W's reference code
    momentum: float = 0.9
    nesterov: bool = True
    temperature: float = 1.0  # softmax(Z / T); T > 1 is for defensive distillation
    seed: int = 0


def _checkpoint_path(checkpoint_dir: Path) -> Path:
    return Path(checkpoint_dir) / "checkpoint.pt"


def _same_recipe(saved: dict, wanted: dict) -> bool:
    """Whether a checkpoint written under ``saved`` can continue under ``wanted``.

    Only the number of epochs may differ: the learning-rate schedule runs by step, not by
    epoch, so a run stopped after k epochs and extended to n makes the same updates as
    one asked for n epochs from the start.
    """
    return {k: v for k, v in saved.items() if k != "epochs"} == {k: v for k, v in wanted.items() if k != "epochs"}


def train_classifier(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     config: TrainConfig = TrainConfig(), *, checkpoint_dir: str | Path | None = None,
                     device: str | torch.device | None = None, progress: bool = True) -> list[dict]:
    """Train ``model`` in place on ``(x, y)`` and return the per-epoch history.

    Each epoch's entry gives its loss, training accuracy, seconds and hardware, so that a
    run resumed on another machine keeps the record of every part.

    Parameters
    ----------
    model : maps B x ... inputs in [0, 1] to B x K logits
    x : float tensor N x ..., pixels in [0, 1]
    y : int64 tensor N (hard labels) or float tensor N x K (soft labels, rows sum to 1)
    checkpoint_dir : if given, the state after every epoch is saved there, and a
        run with the same configuration resumes from the last finished epoch.

    The loss is the cross-entropy of softmax(Z / T). Shuffling and dropout are
    seeded per epoch, so a resumed run makes the same updates as an unbroken one.
    """
    dev = pick_device(device)
    model.to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + config.lr_decay * step))
    history, start = [], 0
    checkpoint = _checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=dev, weights_only=True)
        if _same_recipe(state["config"], dataclasses.asdict(config)) and state["epoch"] < config.epochs:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            history, start = list(state["history"]), state["epoch"] + 1
            print(f"resuming from {checkpoint} after epoch {start}")
        else:
            print(f"ignoring {checkpoint}: it was written with another configuration")

    bar = tqdm(range(start, config.epochs), desc="training", unit="epoch", disable=not progress,
               initial=start, total=config.epochs)
    for epoch in bar:
        epoch_started = time.perf_counter()
        model.train()
        torch.manual_seed(config.seed + epoch)  # dropout masks
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed + epoch))
        total_loss, correct = 0.0, 0
        for batch in order.split(config.batch_size):
            inputs, labels = x[batch].to(dev), y[batch].to(dev)
            logits = model(inputs)
            loss = F.cross_entropy(logits / config.temperature, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            hard = labels if labels.dim() == 1 else labels.argmax(1)
            correct += (logits.argmax(1) == hard).sum().item()
        history.append({"epoch": epoch + 1, "loss": total_loss / len(x), "train_accuracy": correct / len(x),
                        "seconds": round(time.perf_counter() - epoch_started, 1), "hardware": describe_hardware()})
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", acc=f"{history[-1]['train_accuracy']:.4f}")
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            partial = checkpoint.with_suffix(".tmp")
            torch.save({"epoch": epoch, "config": dataclasses.asdict(config), "history": history,
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict()}, partial)
            partial.replace(checkpoint)  # never leave a half-written checkpoint
    model.eval()
    return history


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of rows of ``x`` (N x ..., in [0, 1]) that ``model`` labels as ``y`` (int64, N)."""
    from ead_tutorial.data import predict

    return (predict(model, x, batch_size) == y.cpu()).float().mean().item()


def command_line(dataset: str, config: TrainConfig, train_size: int | None = None) -> str:
    """The shortest command that repeats a run: only the options that differ from the defaults."""
    options = [f"--{f.name.replace('_', '-')} {getattr(config, f.name)}" for f in dataclasses.fields(TrainConfig)
               if getattr(config, f.name) != f.default]
    if train_size is not None:
        options.append(f"--train-size {train_size}")
    return " ".join(["python -m ead_tutorial.models.train", dataset, *options])


def main(argv: list[str] | None = None) -> None:
    from ead_tutorial.data import load_mnist
    from ead_tutorial.models.architectures import ARCHITECTURES

    parser = argparse.ArgumentParser(prog="python -m ead_tutorial.models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(ARCHITECTURES))
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        default = getattr(defaults, field.name)
        kind = (lambda text: text.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=default)
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: DATASET.pt)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="where to keep the per-epoch checkpoint (default: OUT's name + '.ckpt/')")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on the first N training images only (for quick trials)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    out = args.out or Path(f"{args.dataset}.pt")
    checkpoint_dir = args.checkpoint_dir or out.with_suffix(".ckpt")

    torch.manual_seed(config.seed)
    model = ARCHITECTURES[args.dataset]()
    x_train, y_train = load_mnist("train")
    x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    x_test, y_test = load_mnist("test")
    started = time.perf_counter()
    history = train_classifier(model, x_train, y_train, config, checkpoint_dir=checkpoint_dir, device=args.device)
    wall = time.perf_counter() - started
    test_accuracy = accuracy(model, x_test, y_test)

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    record = {"dataset": args.dataset, "config": dataclasses.asdict(config), "test_accuracy": test_accuracy,
              "sha256": digest, "command": command_line(args.dataset, config, args.train_size),
              "package_version": __version__, "torch_version": torch.__version__,
              "hardware": describe_hardware(), "wall_time_s_this_run": round(wall, 1), "history": history}
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    print(f"test accuracy {test_accuracy:.4f}; wrote {out} (sha256 {digest}) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
