"""Recompute a stored result: ``python -m ead_tutorial.reproduce NAME --profile P``.

``python -m ead_tutorial.reproduce --list`` names every experiment, and
``--config`` prints the configuration NAME would run without running it. ``--set KEY=VALUE``
(repeatable; VALUE in JSON, e.g. ``--set n_images=2``) changes one setting, for a smaller
or a different run; the result is stored with the configuration it actually ran.
At the standard and paper profiles each finished part is checkpointed, so a run that is
stopped, even killed, resumes where it stopped when started again. Two runs on different
parts (e.g. ``--set networks=...`` with its own ``EAD_TUTORIAL_RESULTS``) can go at once; a
later run given ``--resume-from`` the other's ``.partial.json`` takes its finished parts.
"""

from __future__ import annotations

import argparse
import json

from ead_tutorial.experiments import EXPERIMENTS, run_experiment
from ead_tutorial.profiles import PROFILES, current_profile
from ead_tutorial.store import result_path


def setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (KEY, VALUE read as JSON, or as a string if it is not JSON)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. n_images=2, not {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ead_tutorial.reproduce", description=__doc__)
    parser.add_argument("name", nargs="?", choices=sorted(EXPERIMENTS), help="the experiment to run")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="scale (default: $EAD_TUTORIAL_PROFILE, else standard)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--config", action="store_true", help="print the configuration NAME would run, and exit")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", type=setting,
                        help="change one setting of the configuration (VALUE in JSON); repeatable")
    parser.add_argument("--keep", action=argparse.BooleanOptionalAction, default=None,
                        help="checkpoint finished parts (default: at every profile but quick)")
    parser.add_argument("--resume-from", action="append", default=[], metavar="CHECKPOINT",
                        help="also take the finished parts of another run's checkpoint (a .partial.json file, "
                             "e.g. of a run on some of the networks in its own $EAD_TUTORIAL_RESULTS); repeatable")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name, registered in sorted(EXPERIMENTS.items()):
            print(f"{name}: {(registered.compute.__doc__ or '').strip().splitlines()[0]}")
        return
    profile = args.profile or current_profile()
    overrides = dict(args.set)
    try:
        config = EXPERIMENTS[args.name].config(profile, **overrides)
    except ValueError as error:  # an unknown setting
        parser.error(str(error))
    if args.config:
        print(json.dumps(config, indent=1))
        return
    result = run_experiment(args.name, profile, keep=args.keep, resume_from=tuple(args.resume_from), **overrides)
    print(f"{result.provenance()}\nsaved to {result_path(args.name, profile)}")


if __name__ == "__main__":
    main()
