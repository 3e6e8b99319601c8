"""Stored results beside the papers' numbers: ours, a bootstrap interval over images, the paper's, and the gap."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ead_tutorial.metrics import (CASES, bootstrap_draws, case_intervals, case_rows, drawn_means, mean_over,
                                  percentile_interval, rows_from_record)

# Decimals that mean something for each metric (success rate in percent, distortions).
DECIMALS = {"ASR": 1, "L0": 1, "L1": 2, "L2": 3, "Linf": 3}


def part_key(name: str, setting: str, value: float | None) -> str:
    """The key of one stored part: "name / setting=value", or ``name`` alone for a part without the setting.

    ``value`` is a number written with :g, as the experiments write it; None or NaN (I-FGM,
    which has no kappa) gives ``name`` alone. :func:`split_part_key` reads the key back.

    >>> part_key("EAD (EN rule)", "beta", 1e-3)
    'EAD (EN rule) / beta=0.001'
    >>> part_key("C&W (L2)", "kappa", 20.0)
    'C&W (L2) / kappa=20'
    >>> part_key("I-FGM-L2", "kappa", float("nan"))
    'I-FGM-L2'
    """
    if value is None or math.isnan(value):
        return name
    return f"{name} / {setting}={value:g}"


def split_part_key(key: str, setting: str) -> tuple[str, float]:
    """(name, value) of a key made by :func:`part_key`; value is a float, NaN where the key has no " / setting=".

    >>> split_part_key("EAD (EN rule) / beta=0.01", "beta")
    ('EAD (EN rule)', 0.01)
    >>> split_part_key("I-FGM-L2", "kappa")
    ('I-FGM-L2', nan)
    """
    name, _, value = key.partition(f" / {setting}=")
    return name, float(value) if value else float("nan")


def intervals(part: dict[str, Any], by: str, seed: int = 0, level: float = 0.95,
              targets_per_image: int = 9) -> pd.DataFrame | None:
    """The bootstrap intervals (:func:`~ead_tutorial.metrics.case_intervals`) of one stored part.

    ``part`` is what an experiment stores for one attack: its "cases", and its "rows" where
    it kept them (None is returned for results stored before they did). A percentile
    interval need not contain the stored estimate: on a few images, with a skewed
    distribution or failed rows, the estimate can lie at or beyond an end, so an error bar
    drawn from it must be clipped at zero length.
    """
    if "rows" not in part:
        return None
    success, norms = rows_from_record(part["rows"])
    return case_intervals(success, norms, by=by, seed=seed, level=level, targets_per_image=targets_per_image)


def beside_paper(parts: dict[Any, dict[str, Any]], paper: pd.DataFrame, *, by: str | dict[Any, str],
                 case: str = "average", seed: int = 0, metrics: tuple[str, ...] = ("ASR", "L1", "L2", "Linf"),
                 level: float = 0.95, targets_per_image: int = 9, section: str = "cases") -> pd.DataFrame:
    """One case of stored results beside the paper's, row by row.

    Parameters
    ----------
    parts : label -> stored part (with its cases under ``section``, and "rows" for the intervals)
    paper : the paper's numbers for ``case``, indexed by the same labels, one column per metric
        (labels the paper lacks get NaN)
    by : the norm that ranks each part's targets, one for all or label -> norm
    case : "best", "average" or "worst"
    targets_per_image : consecutive rows per image in the stored rows (1: one target each,
        as in Table 1, where every case is the image's one row)
    section : the part's entry that holds its cases: "cases", or "transfer" for Table 13,
        whose "rows" are the transfer rows

    Returns
    -------
    DataFrame indexed by label, columns (metric, "ours" | "95% interval" | "paper" | "gap"),
    numbers rounded to :data:`DECIMALS`; the gap is ours minus the paper's, and the
    interval reads "low to high" ("n.a." where the rows were not stored).
    """
    table: dict[Any, dict[tuple[str, str], Any]] = {}
    for label, part in parts.items():
        ranked_by = by[label] if isinstance(by, dict) else by
        spread = intervals(part, ranked_by, seed, level, targets_per_image)
        row = {}
        for metric in metrics:
            digits = DECIMALS[metric]
            ours = part[section][case][metric]
            theirs = paper.loc[label, metric] if label in paper.index and metric in paper.columns else float("nan")
            if spread is None or pd.isna(spread.loc[case, (metric, "low")]):
                interval = "n.a."
            else:
                interval = f"{spread.loc[case, (metric, 'low')]:.{digits}f} to {spread.loc[case, (metric, 'high')]:.{digits}f}"
            row[metric, "ours"] = round(ours, digits)
            row[metric, f"{level:.0%} interval"] = interval
            row[metric, "paper"] = theirs
            row[metric, "gap"] = round(ours - theirs, digits)
        table[label] = row
    frame = pd.DataFrame(table).T
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def outside_interval(parts: dict[Any, dict[str, Any]], paper: pd.DataFrame, *, by: str | dict[Any, str],
                     case: str = "average", seed: int = 0, metrics: tuple[str, ...] = ("L1", "L2", "Linf"),
                     level: float = 0.95, targets_per_image: int = 9) -> list[tuple[Any, str]]:
    """The (label, metric) pairs whose paper value lies outside our bootstrap interval.

    The arguments are those of :func:`beside_paper`; the intervals come from each part's
    "rows" alone, whichever section holds its cases.
    """
    found = []
    for label, part in parts.items():
        spread = intervals(part, by[label] if isinstance(by, dict) else by, seed, level, targets_per_image)
        if spread is None or label not in paper.index:
            continue
        for metric in metrics:
            low, high, theirs = spread.loc[case, (metric, "low")], spread.loc[case, (metric, "high")], paper.loc[label, metric]
            if pd.notna(theirs) and pd.notna(low) and not low <= theirs <= high:
                found.append((label, metric))
    return found


def l1_saved(en_part: dict[str, Any], l1_part: dict[str, Any], *, seed: int = 0, level: float = 0.95,
             resamples: int = 2000, targets_per_image: int = 9) -> pd.DataFrame:
    """The share of the EN rule's L1 that the L1 rule saves, per case, with a bootstrap interval over images.

    ``en_part`` and ``l1_part`` are stored parts (with "rows") of EAD on the same rows, one per
    decision rule; each ranks an image's targets by L1. In each case the images both rules
    solved count, and the saving is 1 - (their L1 under the L1 rule) / (their L1 under the EN
    rule), summed over those images. The images are drawn again with replacement, the same draw
    for both rules, so the interval is that of the saving itself.

    Returns a DataFrame indexed by case ("best", "average", "worst"), columns "saved", "low"
    and "high" (fractions; positive: the L1 rule has less L1).
    """
    import numpy as np

    chosen = [case_rows(*rows_from_record(part["rows"]), by="L1", seed=seed, targets_per_image=targets_per_image)
              for part in (en_part, l1_part)]
    n_images = len(chosen[0]["best"][0])
    draws = bootstrap_draws(n_images, resamples, seed)
    table = {}
    for case in CASES:
        (en_ok, en), (l1_ok, l1) = chosen[0][case], chosen[1][case]
        both = (en_ok & l1_ok).numpy()
        en_l1, l1_l1 = en["L1"].double().numpy() * both, l1["L1"].double().numpy() * both

        def saving(images):
            with np.errstate(invalid="ignore", divide="ignore"):  # a draw with no image both rules solved
                return 1.0 - l1_l1[images].sum(-1) / en_l1[images].sum(-1)

        low, high = percentile_interval(saving(draws), level)
        table[case] = {"saved": float(saving(np.arange(n_images))), "low": low, "high": high}
    return pd.DataFrame(table).T


def difference(part: dict[str, Any], other: dict[str, Any], metric: str, *, by: str, case: str = "average",
               seed: int = 0, level: float = 0.95, resamples: int = 2000,
               targets_per_image: int = 9) -> dict[str, float]:
    """How much more ``metric`` one stored attack part needs than another in ``case``, with a bootstrap interval.

    ``part`` and ``other`` are stored parts (with "rows") of one attack on two networks, each
    ranking an image's targets by ``by``. The difference is the mean of ``metric`` over the
    case's successful images of ``part`` minus that of ``other``. The stored rows do not name
    their images, so the two parts' images are drawn with replacement independently (seeds
    ``seed`` and ``seed + 1``): the interval holds whether or not the networks were attacked
    on the same images, and is wider than a paired one would be where they were.

    Returns {"difference", "low", "high"}, in the metric's units (positive: ``part`` needs more).
    """
    means = []
    for offset, stored in enumerate((part, other)):
        ok, values = case_rows(*rows_from_record(stored["rows"]), by=by, seed=seed,
                               targets_per_image=targets_per_image)[case]
        drawn = drawn_means(ok, values[metric], bootstrap_draws(len(ok), resamples, seed + offset))
        means.append((mean_over(values[metric], ok), drawn))
    low, high = percentile_interval(means[0][1] - means[1][1], level)
    return {"difference": float(means[0][0] - means[1][0]), "low": low, "high": high}


def cw_suspects_tables(record: dict[str, Any], rows_of: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of a stored ``cw-hard-targets`` or ``distilled-cw-misses`` record.

    Returns (rows, variants): each row C&W missed (indexed by its row in the source table,
    named ``rows_of``) with its true label, target and the target's logit margin at x0; and
    each variant's rows solved, of how many, gradients per row and seconds, as integers.
    """
    rows = pd.DataFrame({"true label": record["true labels"], "target": record["targets"],
                         "target's logit margin at x0": record["target margin at x0"]},
                        index=pd.Index(record["rows"], name=rows_of)).round(1)
    variants = pd.DataFrame({name: {"rows solved": sum(variant["success"]), "of": len(variant["success"]),
                                    "gradients per row": variant["gradients per row"], "seconds": variant["seconds"]}
                             for name, variant in record["variants"].items()}).T
    return rows, variants.astype(float).round(0).astype(int)


def as_paper_table(parts: dict[tuple, dict[str, Any]], names: tuple[str, str], section: str = "cases",
                   metrics: tuple[str, ...] = ("ASR", "L1", "L2", "Linf")) -> pd.DataFrame:
    """Stored parts as a table shaped like the paper's (:mod:`ead_tutorial.paper_tables`).

    ``parts`` maps (attack, setting) -> stored part, e.g. ("EAD (EN rule)", 100.0) -> the part of
    Table 11 at T = 100; ``section`` names the part's entry that holds its cases ("cases", or
    "transfer" for Table 13). Returns rows (attack, setting) named ``names``, columns (case,
    metric), unrounded, for :mod:`ead_tutorial.claims` to read.
    """
    rows = {label: {(case, metric): part[section][case][metric] for case in CASES for metric in metrics}
            for label, part in parts.items()}
    frame = pd.DataFrame(rows).T
    frame.index = pd.MultiIndex.from_tuples(list(rows), names=list(names))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame
