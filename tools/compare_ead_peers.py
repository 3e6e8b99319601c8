"""Our EAD against foolbox's and torchattacks', at the same budget on the same rows.

For each setting, each rule ("en", "l1") and each attack (``ead``, ``peers.foolbox_ead``,
``peers.torchattacks_ead``), one targeted run on every (image, wrong class) row of the
pretrained MNIST model; prints success rate (%), mean L0/L1/L2/Linf over each attack's
successes, mean L1 over the rows all three solved, gradient passes per row (counted
by a forward hook, since the peers report none) and wall seconds. All runs share one process
and one torch thread, one after another, so the seconds compare.

    python tools/compare_ead_peers.py                    # both settings
    python tools/compare_ead_peers.py --setting quick    # 1 image, the quick profile's EAD budget
    python tools/compare_ead_peers.py --images 3         # fewer images at the paper's budget
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from ead_tutorial import peers
from ead_tutorial.attacks import ead
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.devices import describe_hardware
from ead_tutorial.models import pretrained

SETTINGS = {  # images, then the budget; abort early on for all three
    "quick": (1, dict(search_steps=4, steps=300, initial_c=1.0)),
    "paper": (5, dict(search_steps=9, steps=1000, initial_c=1e-3)),
}
ATTACKS = {"ead_tutorial": ead, "foolbox": peers.foolbox_ead, "torchattacks": peers.torchattacks_ead}


class GradientPassCounter:
    """Adds up the rows of every forward pass that records a graph for an input that requires grad.

    These are the passes an attack differentiates; torchattacks' iterates also require
    grad, but it evaluates them with grad disabled.
    """

    def __init__(self, model: torch.nn.Module):
        self.rows = 0
        model.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        if torch.is_grad_enabled() and inputs[0].requires_grad:
            self.rows += len(inputs[0])


def compare(model: torch.nn.Module, n_images: int, budget: dict) -> pd.DataFrame:
    """One row per (rule, attack): ASR, mean norms over successes, L1 on common successes, seconds."""
    x, y = sample_correct(model, n_images, seed=0)
    images, targets, _ = with_all_targets(x, y)
    counter, table = GradientPassCounter(model), []
    for rule in ("en", "l1"):
        results, seconds, passes = {}, {}, {}
        for name, attack in ATTACKS.items():
            counter.rows, started = 0, time.perf_counter()
            results[name] = attack(model, images, targets, beta=1e-3, rule=rule, abort_early=True, **budget)
            seconds[name], passes[name] = time.perf_counter() - started, counter.rows / len(images)
        common = torch.stack([result.success for result in results.values()]).all(0)
        for name, result in results.items():
            table.append({"rule": rule, "attack": name, "rows": len(images), "ASR": result.success_rate,
                          **result.mean_norms(), "L1 (all solved)": result.norms["L1"][common].mean().item(),
                          "gradient passes per row": passes[name], "seconds": seconds[name]})
    return pd.DataFrame(table).set_index(["rule", "attack"])


def main(argv: list[str] | None = None) -> dict[str, pd.DataFrame]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=SETTINGS, nargs="+", default=list(SETTINGS))
    parser.add_argument("--images", type=int, default=None, help="override the setting's number of images")
    args = parser.parse_args(argv)
    if not (peers.foolbox_available() and peers.torchattacks_available()):
        raise SystemExit("needs foolbox and torchattacks: pip install 'foolbox>=3.3,<4'; "
                         "pip install --no-deps torchattacks")
    import torchattacks
    import foolbox

    torch.set_num_threads(1)
    model = pretrained("mnist")
    print(f"{describe_hardware()}, torch {torch.__version__}, foolbox {foolbox.__version__}, "
          f"torchattacks {torchattacks.__version__}")
    tables = {}
    for setting in args.setting:
        n_images, budget = SETTINGS[setting]
        n_images = args.images or n_images
        tables[setting] = compare(model, n_images, budget)
        print(f"\n{setting}: {n_images} images x 9 targets, beta 1e-3, abort early, {budget}")
        print(tables[setting].round(3).to_string(), flush=True)
    return tables


if __name__ == "__main__":
    main()
