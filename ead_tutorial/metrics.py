"""Distortion norms, attack success rate, and the EAD paper's best/average/worst-case tables.

Conventions
-----------
- A perturbation ``delta = x_adv - x`` has shape N x C x H x W (or N x D).
- Rows come in the order of :func:`ead_tutorial.data.with_all_targets`: each
  image's K-1 targeted attacks in consecutive rows.
- Distortions are averaged over successful rows only; when an attack never
  succeeds they are undefined (NaN, printed as "N.A." by :func:`format_table`).
"""

from __future__ import annotations

import pandas as pd
import torch

NORMS = ("L0", "L1", "L2", "Linf")
CASES = ("best", "average", "worst")


def l0(delta: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """Number of pixels changed by more than ``tol`` in any channel (float, N).

    For N x C x H x W input a pixel is one (h, w) position, as in C&W; for
    N x D input every coordinate counts.
    """
    changed = delta.abs() > tol
    if changed.dim() == 4:
        changed = changed.any(dim=1)
    return changed.flatten(1).sum(1).to(delta.dtype)


def l1(delta: torch.Tensor) -> torch.Tensor:
    """Sum of absolute changes per row (N)."""
    return delta.flatten(1).abs().sum(1)


def l2(delta: torch.Tensor) -> torch.Tensor:
    """Euclidean norm per row (N)."""
    return delta.flatten(1).norm(dim=1)


def linf(delta: torch.Tensor) -> torch.Tensor:
    """Largest absolute change per row (N)."""
    return delta.flatten(1).abs().amax(1)


def distortions(x_adv: torch.Tensor, x: torch.Tensor, l0_tol: float = 0.0) -> dict[str, torch.Tensor]:
    """All four norms of ``x_adv - x`` per row: ``{"L0", "L1", "L2", "Linf"}`` -> tensors of shape N."""
    delta = (x_adv - x).detach()
    return {"L0": l0(delta, l0_tol), "L1": l1(delta), "L2": l2(delta), "Linf": linf(delta)}


def success_rate(success: torch.Tensor) -> float:
    """Attack success rate in percent, from a boolean tensor of any shape.

    Counted exactly (successes x 100 / rows), so that 18 of 20 is 90.0, not float32's 89.9999976.
    """
    if success.numel() == 0:
        raise ValueError("success is empty: there is no attack to score")
    return 100.0 * int(success.count_nonzero()) / success.numel()


def mean_over(values: torch.Tensor, mask: torch.Tensor) -> float:
    """The mean of ``values`` (float B) over the rows where ``mask`` (bool B) holds, in float64; NaN where none does."""
    return values[mask].double().mean().item() if mask.any() else float("nan")


def case_rows(success: torch.Tensor, norms: dict[str, torch.Tensor], *, targets_per_image: int = 9,
              by: str = "L2", seed: int = 0) -> dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """The row that stands for each image in each case of the EAD paper's tables.

    Takes the arguments of :func:`case_table`. Returns case -> (ok, values): ``ok`` (bool,
    one per image) says whether the case succeeded on that image, and ``values`` maps each
    norm to the chosen row's distortion (float, one per image; meaningful where ``ok``).
    """
    if by not in norms:
        raise KeyError(f"by={by!r} is not among the norms given: {sorted(norms)}")
    if success.numel() % targets_per_image:
        raise ValueError(f"{success.numel()} rows do not split into images of {targets_per_image} targets")
    success = success.bool().cpu().view(-1, targets_per_image)
    values = {name: value.detach().cpu().view(-1, targets_per_image) for name, value in norms.items()}
    n_images = len(success)
    ranked = values[by]
    rows = torch.arange(n_images)

    best_col = ranked.masked_fill(~success, float("inf")).argmin(1)
    best_ok = success.any(1)
    average_col = torch.randint(targets_per_image, (n_images,), generator=torch.Generator().manual_seed(seed))
    average_ok = success[rows, average_col]
    worst_col = ranked.argmax(1)
    worst_ok = success.all(1)
    return {case: (ok, {name: value[rows, column] for name, value in values.items()})
            for case, column, ok in (("best", best_col, best_ok), ("average", average_col, average_ok),
                                     ("worst", worst_col, worst_ok))}


def case_table(success: torch.Tensor, norms: dict[str, torch.Tensor], *, targets_per_image: int = 9,
               by: str = "L2", seed: int = 0) -> pd.DataFrame:
    """The best, average and worst case of a targeted attack, as in the EAD paper.

    Parameters
    ----------
    success : bool tensor, N*(K-1), whether each (image, target) row succeeded
    norms : name -> float tensor, N*(K-1), a distortion of each row
    targets_per_image : K-1, the number of consecutive rows per image
    by : the norm that ranks targets as easy or hard (the attack's own, e.g. "L2" for C&W)
    seed : picks the average case's random target per image (same seed, same targets)

    Returns
    -------
    DataFrame indexed by case, with column "ASR" (percent) and one column per norm:
    - best: per image, the successful target of least ``by``; succeeds if any target does;
    - average: per image, one target drawn at random;
    - worst: per image, the target of largest ``by``; succeeds only if every target does.
    """
    cases = case_rows(success, norms, targets_per_image=targets_per_image, by=by, seed=seed)
    table = {case: {"ASR": success_rate(ok)} | {name: mean_over(value, ok) for name, value in values.items()}
             for case, (ok, values) in cases.items()}
    return pd.DataFrame.from_dict(table, orient="index")


def bootstrap_draws(n_images: int, resamples: int = 2000, seed: int = 0):
    """``resamples`` draws of ``n_images`` image indices with replacement: int array resamples x n_images."""
    import numpy as np

    return np.random.default_rng(seed).integers(n_images, size=(resamples, n_images))


def percentile_interval(statistic, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` of a statistic's bootstrap values (NaN draws ignored; NaN, NaN if all are NaN)."""
    import numpy as np

    tail = 50.0 * (1.0 - level)
    if np.isnan(statistic).all():
        return float("nan"), float("nan")
    low, high = np.nanpercentile(statistic, [tail, 100.0 - tail])
    return float(low), float(high)


def drawn_means(ok: torch.Tensor, values: torch.Tensor, draws):
    """The mean of ``values`` (float, one per image) over the images where ``ok`` (bool) holds, in each
    draw of :func:`bootstrap_draws`: float64 array, one per draw (NaN for a draw without such an image)."""
    import numpy as np

    ok = ok.numpy()[draws]
    return np.where(ok, values.double().numpy()[draws], 0.0).sum(1) / np.where(ok.any(1), ok.sum(1), np.nan)


def case_intervals(success: torch.Tensor, norms: dict[str, torch.Tensor], *, targets_per_image: int = 9,
                   by: str = "L2", seed: int = 0, level: float = 0.95, resamples: int = 2000) -> pd.DataFrame:
    """Percentile bootstrap intervals over images for every number of :func:`case_table`.

    The images are drawn with replacement (an image's targets stay together) ``resamples``
    times, each case's ASR and mean distortions are recomputed on every draw, and the
    interval holds the central ``level`` of them. A mean distortion counts only the draws
    with at least one successful image; with no success at all it is NaN. Returns a
    DataFrame indexed by case, columns (metric, "low" | "high"), in the units of ``case_table``.
    """
    import numpy as np

    cases = case_rows(success, norms, targets_per_image=targets_per_image, by=by, seed=seed)
    draws = bootstrap_draws(len(next(iter(cases.values()))[0]), resamples, seed)
    table = {}
    for case, (ok, values) in cases.items():
        columns = {"ASR": 100.0 * ok.numpy()[draws].mean(1)} | {
            name: drawn_means(ok, value, draws) for name, value in values.items()}
        for name, statistic in columns.items():
            table[case, name, "low"], table[case, name, "high"] = percentile_interval(statistic, level)
    frame = pd.Series(table).unstack([1, 2])
    return frame.reindex(index=list(CASES), columns=pd.MultiIndex.from_product([["ASR", *norms], ["low", "high"]]))


def row_record(success: torch.Tensor, norms: dict[str, torch.Tensor], digits: int = 7) -> dict[str, list]:
    """Each row's success and distortions as plain lists, for the results store.

    ``success`` (bool B) becomes 0/1 integers and each norm (float B) floats rounded to
    ``digits`` significant digits, so that a stored result can recompute its cases and their
    intervals (:func:`case_table`, :func:`case_intervals`) from :func:`rows_from_record`.
    """
    return {"success": [int(value) for value in success.bool().cpu().tolist()]} | {
        name: [float(f"{value:.{digits}g}") for value in norm.detach().double().cpu().tolist()]
        for name, norm in norms.items()}


def rows_from_record(record: dict[str, list]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The inverse of :func:`row_record`: (success, norms) tensors again (bool B, float64 B)."""
    return (torch.tensor(record["success"], dtype=torch.bool),
            {name: torch.tensor(values, dtype=torch.float64) for name, values in record.items() if name != "success"})


def comparison_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack per-attack case tables into one row per attack, columns (case, metric), as the paper prints them."""
    wide = {attack: table.stack() for attack, table in tables.items()}
    return pd.DataFrame(wide).T.reindex(columns=pd.MultiIndex.from_product(
        [CASES, list(next(iter(tables.values())).columns)]))


def format_table(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """A copy for display: numbers rounded, undefined distortions shown as "N.A."."""
    return table.round(decimals).astype(object).where(table.notna(), "N.A.")


def frame_from_rows(rows: dict[tuple, dict[tuple, float]], names: list[str]) -> pd.DataFrame:
    """A DataFrame with one row per key of ``rows`` (a MultiIndex named ``names``) and MultiIndex columns.

    Unlike ``DataFrame.from_dict(orient="index")``, this keeps rows whose key holds a NaN
    (an attack without kappa), which that constructor silently empties.
    """
    table = pd.DataFrame(list(rows.values()), index=pd.MultiIndex.from_tuples(list(rows), names=names))
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table
