"""The experiment ``exact-minimum``: every attack on a small ReLU network against the exact minimum."""

from __future__ import annotations

from typing import Any

import torch

from ead_tutorial.experiments import (FAST_LINF, NORM_NAMES, Run, attack_rows, cw_box, ead_budget, eps_resolution,
                                      every_attack, experiment, run_parts)
from ead_tutorial.metrics import row_record
from ead_tutorial.profiles import pick

# The attacks compared with the exact minimum in each norm, each measured in its own norm.
EXACT_ATTACKS = {"l1": ("EAD (EN rule)", "EAD (L1 rule)", "FMN-L1 (foolbox)", "ALMA-L1 (adv-lib)", "I-FGM-L1"),
                 "linf": ("C&W (Linf)", "I-FGM-Linf"),
                 "l2": ("C&W (L2)", "FMN-L2 (foolbox)", "ALMA-L2 (adv-lib)", "I-FGM-L2")}


PEERS = ("FMN-L1 (foolbox)", "FMN-L2 (foolbox)", "ALMA-L1 (adv-lib)", "ALMA-L2 (adv-lib)")


def _peers(model, images: torch.Tensor, targets: torch.Tensor, config: dict[str, Any]) -> dict[str, Any]:
    """Today's minimum-norm attacks from peer libraries: name -> run()."""
    from ead_tutorial import peers

    steps = config["peer_steps"]
    return {f"FMN-{NORM_NAMES[norm]} (foolbox)": lambda norm=norm: peers.foolbox_fmn(model, images, targets, norm=norm,
                                                                                  steps=steps)
            for norm in ("l1", "l2")} | {
            f"ALMA-{NORM_NAMES[norm]} (adv-lib)": lambda norm=norm: peers.adv_lib_alma(model, images, targets, norm=norm,
                                                                                    steps=steps)
            for norm in ("l1", "l2")}


def exact_minimum_config(profile: str) -> dict[str, Any]:
    return {"model": "mnist-small-relu", "seed": 0, "beta": 1e-3, "kappa": 0.0,
            "n_images": pick(quick=1, standard=12, paper=100, profile=profile),
            "targets_per_image": pick(quick=2, standard=9, paper=9, profile=profile),
            **ead_budget(profile), "cw_box": cw_box(profile), "eps_resolution": eps_resolution(profile),
            "cw_linf": pick(quick=FAST_LINF, standard={}, paper={}, profile=profile),
            # The L2 minimum (SCIP) takes longer than the others: the quick run solves L1 and L-infinity only.
            "norms": list(pick(quick=("l1", "linf"), standard=("l1", "linf", "l2"), paper=("l1", "linf", "l2"),
                               profile=profile)),
            # adv-lib installs only with --no-deps, so the quick run (and CI) uses foolbox's peer alone
            "peers": list(pick(quick=PEERS[:1], standard=PEERS, paper=PEERS, profile=profile)),
            "peer_steps": pick(quick=100, standard=1000, paper=1000, profile=profile),
            "tighten": "ball", "time_limit": pick(quick=30.0, standard=300.0, paper=300.0, profile=profile)}


@experiment("exact-minimum", exact_minimum_config)
def exact_minimum(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """The attacks against the exact minimum perturbation in each norm, on a 784-8-8-10 ReLU network.

    Each image's first ``targets_per_image`` targets are attacked by EAD (both rules),
    C&W L2 and L-infinity, I-FGM in L1, L2 and L-infinity, and the peers of ``config["peers"]``
    (foolbox's FMN and adv-lib's ALMA, in L1 and L2); then
    :func:`~ead_tutorial.exact.minimum_perturbation` solves each row in every norm of
    ``config["norms"]`` (L1 and L-infinity by HiGHS, L2 by SCIP), searching inside the
    smallest distance any attack found in that norm.
    """
    import numpy as np

    from ead_tutorial.exact import ReluNetwork, minimum_perturbation
    from ead_tutorial.models import pretrained

    model = pretrained(config["model"])
    images, targets, true_labels = attack_rows(model, config["n_images"], config["seed"])
    keep = (torch.arange(len(targets), device=targets.device) % 9) < config["targets_per_image"]
    images, targets, true_labels = images[keep], targets[keep], true_labels[keep]
    compared = {norm: [name for name in EXACT_ATTACKS[norm] if name not in PEERS or name in config["peers"]]
                for norm in config["norms"]}
    names = sorted({name for group in compared.values() for name in group} | {"C&W (L2)"})
    runs = {name: run for name, (run, _) in every_attack(model, images, targets, config, true_labels=true_labels).items()}
    runs |= _peers(model, images, targets, config)

    def attack_part(name: str) -> dict[str, Any]:
        result = runs[name]()
        return {"rows": row_record(result.success, result.norms),
                "gradients per row": result.gradient_evaluations.double().mean().item()}

    network = ReluNetwork.from_torch(model)
    x0s = images.flatten(1).double().cpu().numpy()
    per_image = config["targets_per_image"]

    def exact_part(key: str, finished) -> list[dict[str, Any]]:
        norm, image = key.split(" / image ")
        found = []
        for row in range(int(image) * per_image, (int(image) + 1) * per_image):
            distances = [finished[name]["rows"][NORM_NAMES[norm]][row] for name in names
                         if finished[name]["rows"]["success"][row]]
            solve = lambda radius: minimum_perturbation(network, x0s[row], int(targets[row]), norm, radius=radius,
                                                        tighten=config["tighten"], time_limit=config["time_limit"],
                                                        model=model)
            solved = solve(min(distances) if distances else None)
            widened = solved.status == "infeasible" and bool(distances)
            if widened:  # an attack's example may win by less than the solver's margin: search the whole box
                solved = solve(None)
            found.append({"status": solved.status, "distance": solved.distance, "lower bound": solved.lower_bound,
                          "gap": solved.gap, "seconds": round(solved.seconds, 2), "verified": solved.verified,
                          "unstable ReLUs": solved.unstable_relus, "searched the whole box": widened})
        return found

    solve_keys = [f"{norm} / image {image}" for norm in config["norms"] for image in range(config["n_images"])]
    parts = run_parts(run, config, names + solve_keys,
                      lambda key, finished: exact_part(key, finished) if key in solve_keys else attack_part(key),
                      "attacks, then exact solves", pass_finished=True)
    attacks = {name: parts[name] for name in names}
    solved = {key: parts[key] for key in solve_keys}
    exact = {norm: [entry for image in range(config["n_images"]) for entry in solved[f"{norm} / image {image}"]]
             for norm in config["norms"]}
    return {"attacks": attacks, "exact": exact, "targets": targets.cpu().tolist(),
            "true labels": true_labels.cpu().tolist(), "compared": compared,
            "exact seconds": float(np.sum([entry["seconds"] for rows in exact.values() for entry in rows]))}
