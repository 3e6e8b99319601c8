"""Numbers printed in the EAD paper (Chen et al., 2018), for the book to set beside its own.

Each function returns a fresh DataFrame laid out as :func:`ead_tutorial.metrics.comparison_table`
lays out ours: one row per attack, columns (case, metric). "N.A." in the paper is NaN here.
"""

from __future__ import annotations

import pandas as pd

from ead_tutorial.metrics import CASES

METRICS = ("ASR", "L1", "L2", "Linf")
NA = float("nan")

# EAD Table 8 (MNIST): best, average and worst case. Its average-case block is Table 2.
_TABLE_8 = {
    "C&W (L2)": [100, 13.93, 1.377, 0.379, 100, 22.46, 1.972, 0.514, 99.9, 32.3, 2.639, 0.663],
    "FGM-L1": [99.9, 26.56, 2.29, 0.577, 39, 53.5, 4.186, 0.782, 0, NA, NA, NA],
    "FGM-L2": [99.4, 25.84, 2.245, 0.574, 34.6, 39.15, 3.284, 0.747, 0, NA, NA, NA],
    "FGM-Linf": [99.9, 83.82, 4.002, 0.193, 42.5, 127.2, 6.09, 0.296, 0, NA, NA, NA],
    "I-FGM-L1": [100, 18.34, 1.605, 0.403, 100, 32.94, 2.606, 0.591, 100, 53.02, 3.979, 0.807],
    "I-FGM-L2": [100, 17.6, 1.543, 0.387, 100, 30.32, 2.41, 0.561, 99.8, 47.8, 3.597, 0.771],
    "I-FGM-Linf": [100, 49.8, 2.45, 0.147, 100, 71.39, 3.472, 0.227, 99.9, 95.48, 4.604, 0.348],
    "EAD (EN rule)": [100, 9.808, 1.427, 0.452, 100, 17.4, 2.001, 0.594, 100, 25.52, 2.582, 0.748],
    "EAD (L1 rule)": [100, 7.153, 1.639, 0.593, 100, 14.11, 2.211, 0.768, 100, 22.05, 2.747, 0.934],
}


def table_8_mnist(attacks: list[str] | None = None) -> pd.DataFrame:
    """EAD Table 8, MNIST: rows ``attacks`` (default all, in the paper's order), columns (case, metric)."""
    names = list(_TABLE_8) if attacks is None else attacks
    unknown = [name for name in names if name not in _TABLE_8]
    if unknown:
        raise KeyError(f"the paper's Table 8 has no row {unknown[0]!r}; it has {', '.join(_TABLE_8)}")
    return pd.DataFrame([_TABLE_8[name] for name in names], index=names,
                        columns=pd.MultiIndex.from_product([list(CASES), list(METRICS)]))
