"""How fast are the attacks? Ours against foolbox, adv-lib and torchattacks, in one process.

    python -m ead_tutorial.benchmark [--profile quick|standard|paper] [--threads 1]

Every attack runs once, one after another, on the same rows (each test image toward
every other class) at the same budget, with abort early on, on one torch thread on a
CPU, or on the GPU where there is one. A counter on the model adds up the rows of every forward pass and
of every backward pass, so the peers, which report no counts, are measured the same
way as ours. For each attack it reports the wall time, forward and backward passes
per row, the success rate and the mean norms over successes, and for ours the cost of
one iteration against one bare forward and backward pass of the model over the same
rows. The registered experiment ``attack-benchmark`` stores the result with its
provenance.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

import pandas as pd
import torch

from ead_tutorial import peers
from ead_tutorial.attacks import cw_l2, ead
from ead_tutorial.bench import PassCounter, _timed, bare_passes


def contenders(budget: dict[str, Any]) -> dict[str, tuple[str, Callable]]:
    """name -> (norm the attack minimises, run(model, images, targets)), ours and every peer installed here."""
    c = dict(search_steps=budget["search_steps"], steps=budget["steps"], initial_c=budget["initial_c"])
    beta = budget["beta"]
    found: dict[str, tuple[str, Callable]] = {
        "C&W L2 (ours)": ("L2", lambda m, x, t: cw_l2(m, x, t, box=budget["cw_box"], **c)),
        "EAD EN (ours)": ("L1", lambda m, x, t: ead(m, x, t, beta=beta, rule="en", **c)),
        "EAD L1 (ours)": ("L1", lambda m, x, t: ead(m, x, t, beta=beta, rule="l1", **c)),
        "EAD L1 (ours, no abort early)": ("L1", lambda m, x, t: ead(m, x, t, beta=beta, rule="l1",
                                                                    abort_early=False, **c)),
    }
    if peers.foolbox_available():
        found["C&W L2 (foolbox)"] = ("L2", lambda m, x, t: peers.foolbox_cw_l2(m, x, t, **c))
        found["EAD EN (foolbox)"] = ("L1", lambda m, x, t: peers.foolbox_ead(m, x, t, beta=beta, rule="en", **c))
        found["EAD L1 (foolbox)"] = ("L1", lambda m, x, t: peers.foolbox_ead(m, x, t, beta=beta, rule="l1", **c))
    if peers.adv_lib_available():
        found["C&W L2 (adv-lib)"] = ("L2", lambda m, x, t: peers.adv_lib_cw_l2(m, x, t, **c))
    if peers.torchattacks_available():
        found["EAD EN (torchattacks)"] = ("L1", lambda m, x, t: peers.torchattacks_ead(m, x, t, beta=beta, rule="en",
                                                                                       **c))
    return found


def bare_pass_per_row(model: torch.nn.Module, images: torch.Tensor, repeats: int = 20) -> float:
    """Seconds of one bare forward and backward pass, per row, over all ``images`` at once."""
    bare_passes(model, images, 2)  # warm up
    return _timed(lambda: bare_passes(model, images, repeats), images.device) / (repeats * len(images))


def race(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, budget: dict[str, Any],
         only: list[str] | None = None, progress: bool = False,
         run_all: Callable | None = None) -> dict[str, dict[str, float]]:
    """Run every contender on the rows; name -> {seconds, passes per row, ASR, mean norms, cost ratio}.

    ``run_all(names, measure)``, if given, calls ``measure(name)`` for every name and returns
    name -> measurement (the experiments pass one that keeps finished parts in a checkpoint).
    """
    bare = bare_pass_per_row(model, images)
    chosen = {name: entry for name, entry in contenders(budget).items() if only is None or name in only}

    def measure(name: str) -> dict[str, float]:
        norm, run = chosen[name]
        if progress:
            print(f"running {name} ...", flush=True)
        counter, outcome = PassCounter(model), {}
        try:
            seconds = _timed(lambda: outcome.setdefault("result", run(model, images, targets)), images.device)
        finally:
            counter.remove()
        result = outcome["result"]
        return {"seconds": seconds, "forward passes per row": counter.forward / len(images),
                "backward passes per row": counter.backward / len(images), "ASR": result.success_rate,
                **{f"mean {key}": value for key, value in result.mean_norms().items()}, "norm": norm,
                # seconds per row-iteration against one bare forward and backward pass of one row
                "cost per iteration (bare passes)": seconds / counter.backward / bare,
                "bare pass per row (ms)": 1e3 * bare}

    if run_all is None:
        return {name: measure(name) for name in chosen}
    return run_all(list(chosen), measure)


def as_frame(table: dict[str, dict[str, float]]) -> pd.DataFrame:
    """The race as a table, rounded to what the numbers mean."""
    frame = pd.DataFrame(table).T
    numbers = frame.drop(columns=["norm", "bare pass per row (ms)"], errors="ignore").astype(float)
    rounding = {"seconds": 1, "forward passes per row": 0, "backward passes per row": 0, "ASR": 1, "mean L0": 1,
                "mean L1": 2, "mean L2": 3, "mean Linf": 3, "cost per iteration (bare passes)": 2}
    return numbers.round(rounding)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from ead_tutorial.experiments import EXPERIMENTS
    from ead_tutorial.profiles import current_profile

    parser = argparse.ArgumentParser(prog="python -m ead_tutorial.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, help="quick, standard or paper (default: $EAD_TUTORIAL_PROFILE)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config, data = EXPERIMENTS["attack-benchmark"](args.profile or current_profile())
    frame = as_frame(data["attacks"])
    print(f"{data['hardware']}; {config}\n{frame.to_string()}")
    return frame


if __name__ == "__main__":
    main()
