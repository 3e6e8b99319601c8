"""The EAD paper's claims about its Table 8, as checks that run on any table of the same shape.

The paper draws its conclusions about the baselines from the average case of its Table 8
(its Table 2; Chen et al., 2018). :func:`table_8` states each one as a yes-or-no test on a
table of results, so that the same test reads the paper's own numbers, a stored result and
a quick run, and the book can show where they agree.
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
