"""Benchmarks: what one attack iteration costs, against one bare forward and backward pass.

    python -m ead_tutorial.bench [--rows 90 900] [--steps 50] [--attack cw_l2 ead] [--device cuda]

For each batch size and attack, in one run, it times (a) ``steps`` forward-and-backward
passes of the model over the rows and (b) the attack for ``steps`` iterations with abort
early off, and prints the ratio (b) / (a): the overhead of the attack's own
bookkeeping. Each timing is the best of ``--repeats`` runs. EAD also checks each
iterate on the model (one extra forward pass per iteration, for Algorithm 1's decision
rule); in one round at the first c no row succeeds, so none of those checks can be
skipped and its ratio sits above C&W's. ``python -m ead_tutorial.benchmark`` measures
whole attacks, abort early and skipped checks included, against the peers.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from ead_tutorial.attacks import cw_l2, ead
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.devices import describe_hardware, device as pick_device
from ead_tutorial.models import pretrained


def _timed(function, device: torch.device) -> float:
    """Wall time of one call of ``function``, waiting for the GPU to finish."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def bare_passes(model: torch.nn.Module, images: torch.Tensor, steps: int) -> None:
    """``steps`` forward and backward passes of ``model`` over ``images``, and nothing else."""
    for _ in range(steps):
        x = images.detach().requires_grad_()
        (grad,) = torch.autograd.grad(model(x).sum(), x)


def bare_passes_and_checks(model: torch.nn.Module, images: torch.Tensor, steps: int) -> None:
    """``steps`` times: a forward and backward pass, then one more forward pass without gradients.

    The least that any EAD iteration costs: the gradient at the slack point, then the
    model's verdict on the new iterate.
    """
    for _ in range(steps):
        x = images.detach().requires_grad_()
        (grad,) = torch.autograd.grad(model(x).sum(), x)
        with torch.no_grad():
            model(images)


class PassCounter:
    """Counts the rows of every forward pass of ``model``, and of every backward pass through it."""

    def __init__(self, model: torch.nn.Module):
        self.forward = self.backward = 0
        self.handle = model.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self.forward += len(output)
        if output.requires_grad:
            output.register_hook(self._count_backward)

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.backward += len(grad)

    def remove(self) -> None:
        self.handle.remove()


def cost_per_iteration(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, steps: int = 50,
                       repeats: int = 3, attack: str = "cw_l2") -> dict[str, float]:
    """Seconds per iteration of ``attack`` ("cw_l2" or "ead") and of a bare pass over the same rows, and their ratio.

    The attack runs one round of ``steps`` iterations with abort early off, so it does
    exactly ``steps`` iterations on every row. For EAD it also times its floor, a forward
    and backward pass plus a forward pass, and gives the ratio to it ("ratio to floor").
    A further, untimed run counts the rows of every forward and backward pass of the model
    (:class:`PassCounter`), per row and iteration: counts a loaded machine cannot change.
    """
    run = {"cw_l2": cw_l2, "ead": ead}[attack]
    device = images.device
    bare_passes(model, images, 3)  # warm up kernels and allocator
    bare, floor, iteration = float("inf"), float("inf"), float("inf")
    for _ in range(repeats):  # interleaved, so that a busy moment of the machine hits all alike
        bare = min(bare, _timed(lambda: bare_passes(model, images, steps), device) / steps)
        if attack == "ead":
            floor = min(floor, _timed(lambda: bare_passes_and_checks(model, images, steps), device) / steps)
        iteration = min(iteration, _timed(lambda: run(model, images, targets, search_steps=1, steps=steps,
                                                      abort_early=False), device) / steps)
    counter = PassCounter(model)  # one more run, untimed, counting the passes of the model
    try:
        run(model, images, targets, search_steps=1, steps=steps, abort_early=False)
    finally:
        counter.remove()
    timings = {"rows": len(images), "bare pass (ms)": 1e3 * bare, f"{attack} iteration (ms)": 1e3 * iteration,
               "ratio": iteration / bare,
               "forward passes per iteration": counter.forward / (steps * len(images)),
               "backward passes per iteration": counter.backward / (steps * len(images))}
    if attack == "ead":
        timings.update({"pass and check (ms)": 1e3 * floor, "ratio to floor": iteration / floor})
    return timings


def batch_speedup(attack, model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
                  **options) -> dict[str, float]:
    """Wall time of ``attack`` on all rows at once against one row at a time, in one run.

    ``attack(model, images, targets, **options)`` is called once on the B rows, then B
    times on one row each. Returns the rows, both times in seconds, the speed-up
    (one at a time / batched) and both success rates, which should agree.
    """
    device = images.device
    batched_result = None

    def batched():
        nonlocal batched_result
        batched_result = attack(model, images, targets, **options)

    singles = []

    def one_at_a_time():
        for row in range(len(images)):
            singles.append(attack(model, images[row:row + 1], targets[row:row + 1], **options).success)

    batched_seconds = _timed(batched, device)
    single_seconds = _timed(one_at_a_time, device)
    return {"rows": len(images), "batched (s)": batched_seconds, "one row at a time (s)": single_seconds,
            "speed-up": single_seconds / batched_seconds, "ASR batched": batched_result.success_rate,
            "ASR one at a time": 100 * torch.cat(singles).float().mean().item()}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m ead_tutorial.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[90, 900])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--attack", choices=("cw_l2", "ead"), nargs="+", default=["cw_l2", "ead"])
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    model = pretrained("mnist", device=device)
    rows = []
    for n_rows in args.rows:
        x, y = sample_correct(model, -(-n_rows // 9), seed=0)
        images, targets, _ = with_all_targets(x, y)
        images, targets = images[:n_rows].to(device), targets[:n_rows].to(device)
        for attack in args.attack:
            measured = cost_per_iteration(model, images, targets, steps=args.steps, repeats=args.repeats,
                                          attack=attack)
            rows.append({"attack": attack, "rows": measured["rows"], "bare pass (ms)": measured["bare pass (ms)"],
                         "iteration (ms)": measured[f"{attack} iteration (ms)"], "ratio": measured["ratio"]})
    table = pd.DataFrame(rows).set_index(["attack", "rows"])
    print(f"{describe_hardware()}, torch {torch.__version__}\n{table.round(3).to_string()}")
    return table


if __name__ == "__main__":
    main()
