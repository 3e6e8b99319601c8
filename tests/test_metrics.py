import math

import pandas as pd
import pytest
import torch

from ead_tutorial import metrics


def test_norms_by_hand():
    delta = torch.zeros(2, 1, 2, 2)
    delta[0, 0] = torch.tensor([[3.0, -4.0], [0.0, 0.0]])
    delta[1, 0] = torch.tensor([[0.5, 0.5], [-0.5, 0.5]])
    torch.testing.assert_close(metrics.l0(delta), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(metrics.l1(delta), torch.tensor([7.0, 2.0]))
    torch.testing.assert_close(metrics.l2(delta), torch.tensor([5.0, 1.0]))
    torch.testing.assert_close(metrics.linf(delta), torch.tensor([4.0, 0.5]))


def test_l0_counts_pixels_not_channels():
    delta = torch.zeros(1, 3, 2, 2)
    delta[0, :, 0, 0] = 0.1  # one pixel, all three channels
    delta[0, 1, 1, 1] = -0.2  # another pixel, one channel
    assert metrics.l0(delta).item() == 2
    assert metrics.l0(delta.flatten(1)).item() == 4  # flat input: every coordinate counts
    assert metrics.l0(delta, tol=0.15).item() == 1


def test_distortions_of_an_unchanged_image_are_zero():
    x = torch.rand(3, 1, 4, 4)
    assert all((value == 0).all() for value in metrics.distortions(x.clone(), x).values())


def test_success_rate_is_a_percentage():
    assert metrics.success_rate(torch.tensor([True, False, True, True])) == 75.0
    assert metrics.success_rate(torch.arange(20) < 18) == 90.0  # exactly: float32's mean gives 89.9999976
    with pytest.raises(ValueError):
        metrics.success_rate(torch.tensor([], dtype=torch.bool))


def _two_images():
    # Two images, three targets each (rows 0-2 and 3-5).
    success = torch.tensor([True, True, False, True, True, True])
    norms = {"L1": torch.tensor([1.0, 2.0, 9.0, 4.0, 5.0, 6.0]),
             "L2": torch.tensor([3.0, 1.0, 0.5, 2.0, 7.0, 4.0])}
    return success, norms


def test_case_table_by_hand():
    success, norms = _two_images()
    table = metrics.case_table(success, norms, targets_per_image=3, by="L2", seed=0)
    # best by L2 among successes: image 0 -> target 1 (L2 1, L1 2); image 1 -> target 0 (L2 2, L1 4)
    assert table.loc["best", "ASR"] == 100.0
    assert table.loc["best", "L2"] == pytest.approx((1 + 2) / 2)
    assert table.loc["best", "L1"] == pytest.approx((2 + 4) / 2)
    # worst: image 0 failed one target, so only image 1 counts: its largest L2 is target 1
    assert table.loc["worst", "ASR"] == 50.0
    assert table.loc["worst", "L2"] == pytest.approx(7.0)
    assert table.loc["worst", "L1"] == pytest.approx(5.0)
    # average: the seeded random target of each image
    picked = torch.randint(3, (2,), generator=torch.Generator().manual_seed(0))
    ok = success.view(2, 3)[torch.arange(2), picked]
    assert table.loc["average", "ASR"] == pytest.approx(100.0 * ok.float().mean().item())
    l2 = norms["L2"].view(2, 3)[torch.arange(2), picked][ok]
    assert table.loc["average", "L2"] == pytest.approx(l2.mean().item())


def test_ranking_norm_changes_the_best_case():
    success, norms = _two_images()
    by_l1 = metrics.case_table(success, norms, targets_per_image=3, by="L1")
    # best by L1: image 0 -> target 0 (L1 1), image 1 -> target 0 (L1 4)
    assert by_l1.loc["best", "L1"] == pytest.approx(2.5)


def test_never_successful_gives_na():
    success = torch.zeros(6, dtype=torch.bool)
    norms = {"L2": torch.ones(6)}
    table = metrics.case_table(success, norms, targets_per_image=3)
    assert (table["ASR"] == 0).all()
    assert table["L2"].isna().all()
    shown = metrics.format_table(table)
    assert (shown["L2"] == "N.A.").all() and (shown["ASR"] == 0).all()


def test_case_table_rejects_ragged_rows_and_unknown_norm():
    success, norms = _two_images()
    with pytest.raises(ValueError, match="do not split"):
        metrics.case_table(success, norms, targets_per_image=4)
    with pytest.raises(KeyError, match="Linf"):
        metrics.case_table(success, norms, targets_per_image=3, by="Linf")


def test_comparison_table_layout():
    success, norms = _two_images()
    table = metrics.case_table(success, norms, targets_per_image=3)
    wide = metrics.comparison_table({"A": table, "B": table})
    assert list(wide.index) == ["A", "B"]
    assert wide.columns.nlevels == 2 and list(wide.columns.get_level_values(0).unique()) == list(metrics.CASES)
    assert list(wide.columns.get_level_values(0)[:3]) == ["best"] * 3
    assert wide.loc["A", ("worst", "L2")] == pytest.approx(7.0)
    assert isinstance(metrics.format_table(wide), pd.DataFrame)
    assert not math.isnan(wide.loc["B", ("best", "ASR")])


def _random_rows(n_images, seed=0):
    generator = torch.Generator().manual_seed(seed)
    success = torch.rand(n_images * 9, generator=generator) > 0.2
    norms = {name: torch.rand(n_images * 9, generator=generator) * 10 for name in ("L0", "L1", "L2", "Linf")}
    return success, norms


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_images():
    from ead_tutorial.metrics import case_intervals, case_table

    success, norms = _random_rows(20)
    table = case_table(success, norms, by="L1")
    spread = case_intervals(success, norms, by="L1")
    for case in ("best", "average", "worst"):
        for metric in table.columns:
            assert spread.loc[case, (metric, "low")] <= table.loc[case, metric] <= spread.loc[case, (metric, "high")]
    assert spread[("ASR", "low")].min() >= 0 and spread[("ASR", "high")].max() <= 100
    # Four times the images (the same ones, four times over): the interval about halves.
    many = case_intervals(success.repeat(4), {k: v.repeat(4) for k, v in norms.items()}, by="L1")
    width = spread[("L1", "high")] - spread[("L1", "low")]
    many_width = many[("L1", "high")] - many[("L1", "low")]
    ratio = many_width / width
    assert (ratio[["best", "average"]] - 0.5).abs().max() < 0.2 and ratio["worst"] < 1  # few images succeed on all 9


def test_bootstrap_interval_of_a_sure_success_is_a_point_and_of_no_success_is_nan():
    from ead_tutorial.metrics import case_intervals

    success, norms = _random_rows(5)
    always = case_intervals(torch.ones_like(success), norms, by="L1")
    assert (always[("ASR", "low")] == 100).all() and (always[("ASR", "high")] == 100).all()
    never = case_intervals(torch.zeros_like(success), norms, by="L1")
    assert never[("L1", "low")].isna().all() and (never[("ASR", "high")] == 0).all()


def test_stored_rows_give_back_the_case_table():
    from ead_tutorial.metrics import case_table, row_record, rows_from_record

    success, norms = _random_rows(6)
    back_success, back_norms = rows_from_record(row_record(success, norms))
    assert torch.equal(back_success, success)
    pd.testing.assert_frame_equal(case_table(back_success, back_norms, by="L2"), case_table(success, norms, by="L2"),
                                  rtol=1e-6)


def test_beside_paper_gives_ours_the_interval_the_paper_and_the_gap():
    from ead_tutorial.metrics import row_record
    from ead_tutorial.report import beside_paper, outside_interval
    from ead_tutorial.experiments import case_summary
    from ead_tutorial.attacks.result import AttackResult

    success, norms = _random_rows(20)
    result = AttackResult(adversarial=torch.zeros(180, 1), success=success, norms=norms, c=torch.ones(180),
                          gradient_evaluations=torch.ones(180, dtype=torch.int64), labels=torch.zeros(180, dtype=torch.int64))
    part = {"cases": case_summary(result, "L1"), "rows": row_record(success, norms)}
    ours_l1 = part["cases"]["average"]["L1"]
    paper = pd.DataFrame({"ASR": [100.0], "L1": [ours_l1 + 100], "L2": [ours_l1], "Linf": [float("nan")]}, index=["A"])
    table = beside_paper({"A": part}, paper, by="L1")
    assert table.loc["A", ("L1", "gap")] == round(ours_l1 - (ours_l1 + 100), 2)
    assert " to " in table.loc["A", ("L1", "95% interval")]
    outside = outside_interval({"A": part}, paper, by="L1")
    assert ("A", "L1") in outside and ("A", "Linf") not in outside  # far off, and not given by the paper


def test_beside_paper_reads_the_section_it_is_given():
    from ead_tutorial.metrics import row_record
    from ead_tutorial.report import beside_paper, outside_interval
    from ead_tutorial.experiments import case_summary
    from ead_tutorial.attacks.result import AttackResult

    success, norms = _random_rows(20)
    result = AttackResult(adversarial=torch.zeros(180, 1), success=success, norms=norms, c=torch.ones(180),
                          gradient_evaluations=torch.ones(180, dtype=torch.int64), labels=torch.zeros(180, dtype=torch.int64))
    transfer = case_summary(result, "L1")
    # A part shaped like Table 13's: its transfer cases under "transfer", and other cases under "cases".
    other = {case: {metric: value + 1000 for metric, value in row.items()} for case, row in transfer.items()}
    part = {"cases": other, "transfer": transfer, "rows": row_record(success, norms)}
    paper = pd.DataFrame({"ASR": [100.0], "L1": [transfer["average"]["L1"] + 100]}, index=["A"])
    table = beside_paper({"A": part}, paper, by="L1", metrics=("ASR", "L1"), section="transfer")
    assert table.loc["A", ("L1", "ours")] == round(transfer["average"]["L1"], 2)
    assert table.loc["A", ("ASR", "ours")] == round(transfer["average"]["ASR"], 1)
    assert beside_paper({"A": part}, paper, by="L1", metrics=("L1",)).loc["A", ("L1", "ours")] == round(
        other["average"]["L1"], 2)  # the default section is "cases"
    assert outside_interval({"A": part}, paper, by="L1", metrics=("L1",)) == [("A", "L1")]


def test_part_keys_round_trip():
    from ead_tutorial.report import part_key, split_part_key

    # The keys the stored results use, value written with :g (20.0 as "20").
    assert part_key("EAD (EN rule)", "beta", 0.01) == "EAD (EN rule) / beta=0.01"
    assert part_key("EAD (EN rule)", "beta", 1e-5) == "EAD (EN rule) / beta=1e-05"
    assert part_key("C&W (L2)", "kappa", 20.0) == part_key("C&W (L2)", "kappa", 20) == "C&W (L2) / kappa=20"
    for name, setting, value in [("COV (Adam)", "beta", 0.0), ("EAD (EN rule)", "beta", 1e-5),
                                 ("EAD (EN rule), exact proximal step", "beta", 1e-3), ("C&W (L2)", "kappa", 20.0)]:
        assert split_part_key(part_key(name, setting, value), setting) == (name, value)


def test_a_part_without_the_setting_has_its_name_alone_and_a_nan_value():
    from ead_tutorial.report import part_key, split_part_key

    assert part_key("I-FGM-L2", "kappa", float("nan")) == "I-FGM-L2"
    assert part_key("I-FGM-L2", "kappa", None) == "I-FGM-L2"
    name, value = split_part_key("I-FGM-L2", "kappa")
    assert name == "I-FGM-L2" and math.isnan(value)
    # Another setting's suffix is part of the name.
    name, value = split_part_key("C&W (L2) / kappa=20", "beta")
    assert name == "C&W (L2) / kappa=20" and math.isnan(value)


def _stored_part(success, l1):
    return {"rows": metrics.row_record(success, {"L1": l1, "L2": l1.sqrt(), "Linf": l1 / 10})}


def test_the_l1_saved_by_the_l1_rule_is_the_share_of_the_en_rules_l1_with_an_interval_over_images():
    from ead_tutorial import report

    generator = torch.Generator().manual_seed(0)
    en_l1 = 5 + 10 * torch.rand(6 * 9, generator=generator)
    everywhere = torch.ones(6 * 9, dtype=torch.bool)
    # The L1 rule with 20% less L1 on every row saves exactly 20%, in every case and every draw.
    saved = report.l1_saved(_stored_part(everywhere, en_l1), _stored_part(everywhere, 0.8 * en_l1))
    assert list(saved.index) == ["best", "average", "worst"]
    assert ((saved - 0.2).abs() < 1e-6).all().all()
    # Where one rule fails an image's row, that image leaves the case for both rules.
    failed = everywhere.clone()
    failed[:9] = False  # the first image: every target fails under the L1 rule
    l1_rule = 0.8 * en_l1
    l1_rule[:9] = 0.0  # (its recorded L1 is meaningless there)
    saved = report.l1_saved(_stored_part(everywhere, en_l1), _stored_part(failed, l1_rule))
    assert ((saved["saved"] - 0.2).abs() < 1e-6).all()
    # Savings that differ by image give an interval around the saving, narrowing with agreement.
    varied = en_l1 * (0.6 + 0.4 * torch.rand(6 * 9, generator=generator))
    saved = report.l1_saved(_stored_part(everywhere, en_l1), _stored_part(everywhere, varied))
    assert (saved["low"] < saved["saved"]).all() and (saved["saved"] < saved["high"]).all()
    assert (saved["low"] > 0).all() and (saved["high"] < 0.4).all()


def test_the_difference_between_two_networks_needs_is_the_gap_of_their_case_means_with_an_interval():
    from ead_tutorial import report

    generator = torch.Generator().manual_seed(1)
    l1 = 5 + 10 * torch.rand(20 * 9, generator=generator)
    everywhere = torch.ones(20 * 9, dtype=torch.bool)
    base = _stored_part(everywhere, l1)
    # A part against itself: no difference, and an interval about zero from the independent draws.
    same = report.difference(base, base, "L1", by="L1")
    assert same["difference"] == 0 and same["low"] < 0 < same["high"]
    # Twice the L1 on every row: the difference is the case mean itself, and resolved.
    mean = metrics.case_table(everywhere, {"L1": l1}, by="L1")["L1"]
    doubled = report.difference(_stored_part(everywhere, 2 * l1), base, "L1", by="L1")
    assert abs(doubled["difference"] - mean["average"]) < 1e-4 and doubled["low"] > 0
    worst = report.difference(_stored_part(everywhere, 2 * l1), base, "L1", by="L1", case="worst")
    assert abs(worst["difference"] - mean["worst"]) < 1e-4
    # A failed row leaves its image out of the case mean (its recorded distortion is meaningless).
    failed = everywhere.clone()
    failed[:9] = False
    spoiled = l1.clone()
    spoiled[:9] = 1e6
    kept = report.difference(_stored_part(failed, spoiled), _stored_part(failed, l1), "L1", by="L1", case="best")
    assert kept["difference"] == pytest.approx(0, abs=1e-4) and kept["high"] < 1e3


def test_the_cw_suspects_tables_count_each_variants_solved_rows():
    from ead_tutorial import report

    record = {"rows": [3, 7], "true labels": [1, 9], "targets": [0, 6], "target margin at x0": [-12.34, -5.0],
              "variants": {"C&W, as in the table": {"success": [False, False], "gradients per row": 900.4,
                                                    "seconds": 2.6},
                           "C&W, box projected": {"success": [True, False], "gradients per row": 450.0,
                                                  "seconds": 1.2}}}
    rows, variants = report.cw_suspects_tables(record, "row of Table 2")
    assert rows.index.tolist() == [3, 7] and rows.index.name == "row of Table 2"
    assert rows["target's logit margin at x0"].tolist() == [-12.3, -5.0] and rows["target"].tolist() == [0, 6]
    assert variants["rows solved"].tolist() == [0, 1] and variants["of"].tolist() == [2, 2]
    assert variants.loc["C&W, as in the table", "gradients per row"] == 900 and variants.dtypes.eq(int).all()
