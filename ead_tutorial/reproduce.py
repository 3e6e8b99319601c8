"""Recompute a stored result: ``python -m ead_tutorial.reproduce NAME --profile P``.

``python -m ead_tutorial.reproduce --list`` names every experiment.
"""

from __future__ import annotations

import argparse

from ead_tutorial.experiments import EXPERIMENTS, run_experiment
from ead_tutorial.profiles import PROFILES, current_profile
from ead_tutorial.store import result_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ead_tutorial.reproduce", description=__doc__)
    parser.add_argument("name", nargs="?", choices=sorted(EXPERIMENTS), help="the experiment to run")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="scale (default: $EAD_TUTORIAL_PROFILE, else standard)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name, function in sorted(EXPERIMENTS.items()):
            print(f"{name}: {(function.__doc__ or '').strip().splitlines()[0]}")
        return
    profile = args.profile or current_profile()
    result = run_experiment(args.name, profile)
    print(f"{result.provenance()}\nsaved to {result_path(args.name, profile)}")


if __name__ == "__main__":
    main()
