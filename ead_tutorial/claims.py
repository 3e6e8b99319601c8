"""The EAD paper's claims about its tables, as checks that run on any table of the same shape.

The paper draws its conclusions from its tables: about the baselines from the average case of
Table 8 (its Table 2), about defensive distillation from Table 11, about transferability from
Table 13 and about adversarial training from Table 14 (Chen et al., 2018). Each function here
states those conclusions as yes-or-no tests on a table shaped like the paper's
(:mod:`ead_tutorial.paper_tables`), so that the same tests read the paper's own numbers, a
stored result and a quick run, and the book can show where they agree.
"""

from __future__ import annotations

import pandas as pd

EAD_RULES = ("EAD (EN rule)", "EAD (L1 rule)")
ONE_STEP = ("FGM-L1", "FGM-L2", "FGM-Linf")
ITERATIVE = ("I-FGM-L1", "I-FGM-L2", "I-FGM-Linf", "C&W (L2)") + EAD_RULES


def table_8(table: pd.DataFrame, case: str) -> pd.Series:
    """Each claim of the paper about its Table 8, tested on one case of ``table``.

    Parameters
    ----------
    table : one row per attack, labelled as in :func:`ead_tutorial.paper_tables.table_8_mnist`
        (at least C&W (L2), both EAD rules, I-FGM-L1 and I-FGM-Linf), columns "ASR" (percent),
        "L1", "L2" and "Linf" (means over the successful images; NaN where none succeeded).
        Rows of other attacks take part in the "least" claims.
    case : "best", "average" or "worst". The claim about FGM's success rate is tested only
        in the average and worst cases: in the best case an image counts if any of its
        nine targets succeeds, and FGM then succeeds almost always (99.4% or more in the paper).

    Returns
    -------
    Series of bools, one per claim, named by what it tests and the margin it allows.
    """
    if case not in ("best", "average", "worst"):
        raise ValueError(f"case must be 'best', 'average' or 'worst', not {case!r}")
    missing = [name for name in ("C&W (L2)", *EAD_RULES, "I-FGM-L1", "I-FGM-Linf") if name not in table.index]
    if missing:
        raise KeyError(f"the table lacks the attacks {missing}; it has {list(table.index)}")
    l1, l2, linf = table["L1"], table["L2"], table["Linf"]
    checks = {
        "EAD has less L1 than C&W (L2), with either rule": all(l1[rule] < l1["C&W (L2)"] for rule in EAD_RULES),
        "the L1 rule's L1 is at most the EN rule's": l1["EAD (L1 rule)"] <= l1["EAD (EN rule)"],
        "EAD has the least L1": l1.idxmin() in EAD_RULES,
        "EAD (EN rule) has at least 25% less L1 than I-FGM-L1": l1["EAD (EN rule)"] <= 0.75 * l1["I-FGM-L1"],
        "C&W (L2) has the least L2, or within 5% of it": l2["C&W (L2)"] <= 1.05 * l2.min(),
        "I-FGM-Linf has the least Linf": linf.idxmin() == "I-FGM-Linf",
    }
    one_step = [name for name in ONE_STEP if name in table.index]
    iterative = [name for name in ITERATIVE if name in table.index]
    if case != "best" and one_step:
        checks["FGM's success rate is under 60% of the lowest iterative attack's"] = (
            table.loc[one_step, "ASR"].max() < 0.6 * table.loc[iterative, "ASR"].min())
    return pd.Series(checks, dtype=bool)


def _average(table: pd.DataFrame, attack: str, metric: str) -> pd.Series:
    """One attack's average-case ``metric`` from a (attack, setting) x (case, metric) table, indexed by the setting."""
    return table.loc[attack, ("average", metric)].astype(float)


def _require(table: pd.DataFrame, attacks: tuple[str, ...]) -> None:
    have = set(table.index.get_level_values(0))
    missing = [name for name in attacks if name not in have]
    if missing:
        raise KeyError(f"the table lacks the attacks {missing}; it has {sorted(have)}")


def _at_least(rates: pd.Series, bound: float) -> bool:
    """Whether every success rate (percent) is at least ``bound``, read at the precision a rate of rows has.

    Results stored before rates were counted exactly hold float32 means: 18 rows of 20 was stored
    as 89.9999976, which is 90% and must pass a bound of 90.
    """
    return bool((rates.round(4) >= bound).all())


def table_11(table: pd.DataFrame, min_asr: float = 99.0) -> pd.Series:
    """The paper's claims about its Table 11 (C&W and EAD against defensive distillation), on ``table``.

    ``table`` is shaped like :func:`ead_tutorial.paper_tables.table_11_mnist`: rows (attack, T),
    columns (case, metric). Distillation does not stop the attacks: each one's average-case
    success rate is at least ``min_asr`` percent at every T (the paper's lowest is 99.9%; on a
    few images one failed image costs more than a point, so pass a lower bound there and say so).
    And EAD keeps its L1 advantage at every T.
    """
    _require(table, ("C&W (L2)", *EAD_RULES))
    asr = {name: _average(table, name, "ASR") for name in ("C&W (L2)", *EAD_RULES)}
    l1 = {name: _average(table, name, "L1") for name in ("C&W (L2)", *EAD_RULES)}
    return pd.Series({
        f"every attack succeeds at least {min_asr:g}% of the time at every T (average case)":
            all(_at_least(rates, min_asr) for rates in asr.values()),
        "EAD has less L1 than C&W (L2) at every T, with either rule":
            all((l1[rule] < l1["C&W (L2)"]).all() for rule in EAD_RULES),
        "the L1 rule's L1 is at most the EN rule's at every T": bool((l1["EAD (L1 rule)"] <= l1["EAD (EN rule)"]).all()),
    }, dtype=bool)


def rises_to_a_peak(rates: pd.Series, slack: float = 0.0) -> bool:
    """Whether ``rates`` (indexed by kappa, ascending) never falls by more than ``slack`` before its maximum,
    and the maximum lies above the first value."""
    rates = rates.sort_index()
    before = rates.loc[: rates.idxmax()]
    return bool((before.diff().dropna() >= -slack).all() and rates.max() > rates.iloc[0])


def table_13(table: pd.DataFrame, slack: float = 0.0) -> pd.Series:
    """The paper's claims about its Table 13 (transfer from the undefended network to the T = 100 one), on ``table``.

    ``table`` is shaped like :func:`ead_tutorial.paper_tables.table_13_mnist`: rows (attack, kappa)
    with kappa NaN for the I-FGM rows, columns (case, metric), "ASR" the average-case transfer rate.
    The transfer rate of C&W and of both EAD rules rises with kappa to a peak (falling by at most
    ``slack`` points on the way, for the noise of a small sample); EAD's peak, with either rule,
    is at least C&W's; and every one of those peaks is far above I-FGM's transfer rate (more than
    twice the best of them).
    """
    _require(table, ("C&W (L2)", *EAD_RULES))
    rates = {name: _average(table, name, "ASR") for name in ("C&W (L2)", *EAD_RULES)}
    ifgm = [name for name in ("I-FGM-L1", "I-FGM-L2", "I-FGM-Linf") if name in set(table.index.get_level_values(0))]
    checks = {
        "C&W's and EAD's transfer rates rise with kappa to a peak":
            all(rises_to_a_peak(series, slack) for series in rates.values()),
        "EAD's best transfer rate is at least C&W's, with either rule":
            all(rates[rule].max() >= rates["C&W (L2)"].max() for rule in EAD_RULES),
    }
    if ifgm:
        best_ifgm = max(float(table.loc[name, ("average", "ASR")].max()) for name in ifgm)
        checks["every peak is more than twice I-FGM's best transfer rate"] = all(
            series.max() > 2 * best_ifgm for series in rates.values())
    return pd.Series(checks, dtype=bool)


# Table 14's networks trained on one method's examples, per attack block, as the paper labels them.
TABLE_14_SINGLE = {"C&W (L2)": ("EAD (L1 rule)", "C&W (L2)"), "EAD (L1 rule)": ("EAD (L1 rule)", "C&W (L2)"),
                   "EAD (EN rule)": ("EAD (EN rule)", "C&W (L2)")}
# The distortions that, by the paper's text, joint training raises above either method alone, per attack.
TABLE_14_JOINT_RAISES = {"C&W (L2)": ("L1", "L2"), "EAD (EN rule)": ("L1", "L2"), "EAD (L1 rule)": ("L2",)}


def table_14_comparisons(parts: dict[tuple[str, str], dict], paper: pd.DataFrame | None = None,
                         seed: int = 0) -> pd.DataFrame:
    """Every average-case comparison behind :func:`table_14`'s two distortion claims, with its interval.

    ``parts`` maps (attack, training) to a stored part of ``ead-table-14`` (with "rows"). For
    each claim, attack and metric it compares a network with the one the claim says it
    beats: each single-method network with the null model ("None"), and the joint network
    with the better of the two single-method ones in our table. The difference and its 95%
    interval come from :func:`ead_tutorial.report.difference` (images drawn independently
    per network), ranked by each attack's own norm (L2 for C&W, L1 for EAD). ``paper`` (the
    paper's table, as :func:`table_14` reads it) adds the paper's difference for the same pair.

    Returns a DataFrame indexed by (claim, attack, metric, network, against), columns
    "difference", "low", "high" and, with ``paper``, "paper"; positive: the network needs more.
    """
    from ead_tutorial import report

    ranked_by = {"C&W (L2)": "L2", **{rule: "L1" for rule in EAD_RULES}}
    pairs = [("one method raises it over the null model", attack, metric, training, "None")
             for attack, trainings in TABLE_14_SINGLE.items() for training in trainings for metric in ("L1", "L2", "Linf")]
    for attack, metrics in TABLE_14_JOINT_RAISES.items():
        for metric in metrics:
            better = max(TABLE_14_SINGLE[attack], key=lambda training: parts[attack, training]["cases"]["average"][metric])
            pairs.append(("joint training raises it over either method alone", attack, metric, "EAD + C&W", better))
    rows = {}
    for claim, attack, metric, network, against in pairs:
        row = report.difference(parts[attack, network], parts[attack, against], metric, by=ranked_by[attack], seed=seed)
        if paper is not None:
            row["paper"] = paper.loc[(attack, network), ("average", metric)] - paper.loc[(attack, against), ("average", metric)]
        rows[claim, attack, metric, network, against] = row
    frame = pd.DataFrame(rows).T
    frame.index = pd.MultiIndex.from_tuples(list(rows), names=["claim", "attack", "metric", "network", "against"])
    return frame


def table_14(table: pd.DataFrame, accuracy: dict[str, float] | None = None, min_accuracy: float = 0.99) -> pd.Series:
    """The paper's claims about its Table 14 (adversarial training), on ``table``.

    ``table`` is shaped like :func:`ead_tutorial.paper_tables.table_14_mnist`: rows (attack,
    training) with training "None" for the null model, "C&W (L2)", the EAD rule the attack uses
    ("EAD (L1 rule)" for C&W's own block) and "EAD + C&W", columns (case, metric). In the
    average case, the paper's text says (Chen et al., 2018, Table 14 and its discussion):

    - every attack still succeeds on every network (100%);
    - training with either method alone raises every distortion (L1, L2, Linf) of every
      attack above the null model's;
    - joint training raises the L1 and L2 of C&W and EAD (EN rule), and the L2 of EAD (L1
      rule), above what either method alone gives.

    ``accuracy`` (training -> test accuracy, a fraction) adds the claim that every network
    keeps at least ``min_accuracy`` (the paper: all of them at least 99%).
    """
    _require(table, ("C&W (L2)", *EAD_RULES))
    average = table.xs("average", axis=1, level=0)
    single, joint_raises = TABLE_14_SINGLE, TABLE_14_JOINT_RAISES
    checks = {
        "every attack succeeds on every network (average case)": bool((average["ASR"] >= 100).all()),
        "training with one method raises every distortion of every attack":
            all(average.loc[(attack, training), metric] > average.loc[(attack, "None"), metric]
                for attack, trainings in single.items() for training in trainings for metric in ("L1", "L2", "Linf")),
        "joint training raises C&W's and EAD (EN)'s L1 and L2, and EAD (L1)'s L2, above either method alone":
            all(average.loc[(attack, "EAD + C&W"), metric] > max(average.loc[(attack, t), metric] for t in single[attack])
                for attack, metrics in joint_raises.items() for metric in metrics),
    }
    if accuracy is not None:
        checks[f"every network keeps at least {min_accuracy:.0%} test accuracy"] = min(accuracy.values()) >= min_accuracy
    return pd.Series(checks, dtype=bool)
