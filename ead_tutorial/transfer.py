"""Transfer attacks: adversarial examples made on one model, judged on another.

The EAD paper makes targeted examples on the undefended network and counts a transfer
as a success when the *other* network (a distilled one) predicts the target. Its
confidence margin kappa is what makes examples transfer: the larger the margin on the
source model, the further past its decision boundary the example lies.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from ead_tutorial.attacks.result import AttackResult
from ead_tutorial.metrics import CASES, bootstrap_draws, case_table, frame_from_rows, percentile_interval


@torch.no_grad()
def transfer_success(result: AttackResult, judge: torch.nn.Module, batch_size: int = 1000) -> torch.Tensor:
    """Whether each row's example, made on another model, makes ``judge`` predict the attack's goal (bool, B).

    Targeted: ``judge`` predicts the target. Untargeted: it predicts anything but the true
    class. Rows where the attack failed on its own model hold the original image and count
    as failures.
    """
    predicted = torch.cat([judge(batch).argmax(1) for batch in result.adversarial.split(batch_size)])
    reached = predicted == result.labels if result.targeted else predicted != result.labels
    return result.success & reached


def transfer_cases(result: AttackResult, judge: torch.nn.Module, *, by: str, targets_per_image: int = 9,
                   seed: int = 0) -> pd.DataFrame:
    """Best, average and worst case of the transfer to ``judge``: ASR (%) and the examples' distortions.

    Rows are laid out as :func:`ead_tutorial.data.with_all_targets` lays them out; ``by``
    ranks targets by the attack's own norm, as in :func:`ead_tutorial.metrics.case_table`.
    """
    return case_table(transfer_success(result, judge), result.norms, targets_per_image=targets_per_image, by=by,
                      seed=seed)


def transfer_table(runs: dict[str, tuple[Callable[[float], AttackResult], str, bool]], judge: torch.nn.Module,
                   kappas: Iterable[float], *, targets_per_image: int = 9, seed: int = 0) -> pd.DataFrame:
    """Transfer results of several attacks over kappa, as one DataFrame.

    Parameters
    ----------
    runs : name -> (run, by, uses_kappa); ``run(kappa)`` attacks the source model and returns
        its :class:`~ead_tutorial.attacks.AttackResult`; ``by`` is the norm that ranks targets;
        attacks without a kappa (``uses_kappa=False``) run once, with ``run(None)``
    judge : the model the examples are judged on
    kappas : the confidence margins to try

    Returns
    -------
    DataFrame indexed by (attack, kappa), kappa NaN for attacks without one; columns
    (case, metric) for the transfer, and ("source", "ASR") for the success on the source model.
    """
    kappas = list(kappas)
    rows = {}
    for name, (run, by, uses_kappa) in runs.items():
        for kappa in (kappas if uses_kappa else [None]):
            result = run(kappa)
            cases = transfer_cases(result, judge, by=by, targets_per_image=targets_per_image, seed=seed)
            row = {(case, metric): cases.loc[case, metric] for case in CASES for metric in cases.columns}
            row[("source", "ASR")] = result.success_rate
            rows[(name, float("nan") if kappa is None else float(kappa))] = row
    return frame_from_rows(rows, ["attack", "kappa"])


def solved_on_source(rows: dict[str, list]) -> np.ndarray:
    """Which rows of a stored transfer record the attack solved on its source network (bool array, B).

    A row it failed on holds the original image, so every norm of it is 0; a row it solved
    has a positive norm.
    """
    norms = [np.asarray(values, dtype=float) for name, values in rows.items() if name != "success"]
    if not norms:
        raise ValueError("the row record holds no norms, so the rows solved on the source cannot be told apart")
    return np.any([norm > 0 for norm in norms], axis=0)


def transfer_breakdown(rows: dict[str, list], *, targets_per_image: int = 9, seed: int = 0,
                       level: float = 0.95) -> dict[str, float]:
    """How a stored transfer rate splits into success on the source and transfer of those successes.

    ``rows`` is a stored part's row record (:func:`ead_tutorial.metrics.row_record` of the
    transfer successes and the source examples' norms), laid out as
    :func:`ead_tutorial.data.with_all_targets` lays rows out. A row the attack failed on its
    source holds the original image, so every norm of it is 0; a row it solved has a
    positive norm. The transfer rate over all rows is the source success rate times the
    share of solved rows that transfer. It is also what the average case (one random target
    per image) estimates, with nine times the rows, so its bootstrap interval over images
    is narrower.

    Returns percentages: "source ASR" (rows solved on the source), "transfer ASR, all rows",
    its interval "low" and "high" (percentile bootstrap over images, their targets kept
    together), and "transfer ASR, solved rows" (NaN where the source solved none).
    """
    transferred = np.asarray(rows["success"], dtype=bool)
    solved = solved_on_source(rows)
    if (transferred & ~solved).any():
        raise ValueError("a row transfers but its example equals the original image: this is not a transfer "
                         "record of the source examples' norms")
    if len(transferred) % targets_per_image:
        raise ValueError(f"{len(transferred)} rows do not make whole images of {targets_per_image} targets")
    per_image = transferred.reshape(-1, targets_per_image).mean(1)
    low, high = percentile_interval(100.0 * per_image[bootstrap_draws(len(per_image), seed=seed)].mean(1), level)
    return {"source ASR": float(100.0 * solved.mean()), "transfer ASR, all rows": float(100.0 * transferred.mean()),
            "low": low, "high": high,
            "transfer ASR, solved rows": float(100.0 * transferred[solved].mean()) if solved.any() else float("nan")}
