"""The claims of the EAD paper about its Table 8, as checks: they hold on the paper's numbers and catch a table that breaks them."""

import pandas as pd
import pytest

from ead_tutorial import claims, paper_tables


@pytest.mark.parametrize("case", ["best", "average", "worst"])
def test_every_claim_holds_on_the_papers_own_table(case):
    checks = claims.table_8(paper_tables.table_8_mnist()[case], case)
    assert checks.all(), checks[~checks]
    # FGM's success rate is a claim about the average and worst cases only.
    assert any(name.startswith("FGM") for name in checks.index) == (case != "best")


def test_a_table_that_breaks_a_claim_fails_that_claim_only():
    table = paper_tables.table_8_mnist()["average"].copy()
    table.loc["C&W (L2)", "L1"] = 10.0  # now C&W has less L1 than EAD
    checks = claims.table_8(table, "average")
    assert set(checks.index[~checks]) == {"EAD has less L1 than C&W (L2), with either rule", "EAD has the least L1"}


def test_the_l1_rule_above_the_en_rule_fails():
    table = paper_tables.table_8_mnist()["average"].copy()
    table.loc["EAD (L1 rule)", "L1"] = table.loc["EAD (EN rule)", "L1"] + 0.1
    assert not claims.table_8(table, "average")["the L1 rule's L1 is at most the EN rule's"]


def test_fgm_succeeding_as_often_as_the_iterative_attacks_fails():
    table = paper_tables.table_8_mnist()["average"].copy()
    table.loc["FGM-L2", "ASR"] = 90.0
    assert not claims.table_8(table, "average")["FGM's success rate is under 60% of the lowest iterative attack's"]


def test_bad_input_is_named():
    table = paper_tables.table_8_mnist()["average"]
    with pytest.raises(KeyError, match="I-FGM-Linf"):
        claims.table_8(table.drop(index="I-FGM-Linf"), "average")
    with pytest.raises(ValueError, match="case"):
        claims.table_8(table, "median")


def test_the_defence_claims_hold_on_the_papers_own_tables():
    for checks in (claims.table_11(paper_tables.table_11_mnist()), claims.table_13(paper_tables.table_13_mnist()),
                   claims.table_14(paper_tables.table_14_mnist(), accuracy={"None": 0.993, "EAD + C&W": 0.991})):
        assert checks.all(), checks[~checks]


def test_distillation_stopping_an_attack_fails_the_table_11_claim():
    table = paper_tables.table_11_mnist()
    table.loc[("C&W (L2)", 50), ("average", "ASR")] = 90.0
    checks = claims.table_11(table)
    assert not checks.iloc[0] and checks.iloc[1:].all()
    assert claims.table_11(table, min_asr=90.0).all()  # the margin is the caller's, and named in the claim
    assert "90%" in claims.table_11(table, min_asr=90.0).index[0]
    table.loc[("C&W (L2)", 50), ("average", "ASR")] = 89.99999761581421  # 18 of 20 as a float32 mean stored it
    assert claims.table_11(table, min_asr=90.0).all()
    table.loc[("C&W (L2)", 50), ("average", "ASR")] = 89.9  # a rate below the bound still fails it
    assert not claims.table_11(table, min_asr=90.0).iloc[0]


def test_a_transfer_rate_that_dips_before_its_peak_fails_unless_within_the_slack():
    rates = pd.Series([1.0, 10.0, 8.0, 50.0, 40.0], index=[0, 10, 20, 30, 40])
    assert not claims.rises_to_a_peak(rates) and claims.rises_to_a_peak(rates, slack=2.0)
    assert not claims.rises_to_a_peak(pd.Series([5.0, 4.0, 3.0], index=[0, 10, 20]))  # the peak at kappa = 0
    table = paper_tables.table_13_mnist()
    table.loc[("C&W (L2)", 60), ("average", "ASR")] = 99.0  # C&W now beats EAD's best
    checks = claims.table_13(table)
    assert not checks["EAD's best transfer rate is at least C&W's, with either rule"]


def test_joint_training_that_adds_nothing_fails_the_table_14_claim():
    table = paper_tables.table_14_mnist()
    table.loc[("C&W (L2)", "EAD + C&W"), ("average", "L2")] = 2.0  # below C&W training alone
    checks = claims.table_14(table, accuracy={"None": 0.99, "C&W (L2)": 0.97})
    assert set(checks.index[~checks]) == {
        "joint training raises C&W's and EAD (EN)'s L1 and L2, and EAD (L1)'s L2, above either method alone",
        "every network keeps at least 99% test accuracy"}


def test_stored_parts_become_a_table_the_claims_read():
    from ead_tutorial import report

    paper = paper_tables.table_11_mnist()
    parts = {label: {"cases": {case: paper.loc[label, case].to_dict() for case in ("best", "average", "worst")}}
             for label in paper.index}
    table = report.as_paper_table(parts, ("attack", "T"))
    pd.testing.assert_frame_equal(table, paper, check_dtype=False, check_names=False)
    assert claims.table_11(table).all()


def _table_14_parts(scale: dict[str, float]):
    """Synthetic stored ead-table-14 parts: every network's rows are one draw, scaled per training."""
    import torch

    from ead_tutorial import metrics

    l1 = 5 + 10 * torch.rand(20 * 9, generator=torch.Generator().manual_seed(0))
    success = torch.ones(20 * 9, dtype=torch.bool)
    parts = {}
    for training, factor in scale.items():
        rows = metrics.row_record(success, {"L1": factor * l1, "L2": factor * l1.sqrt(), "Linf": factor * l1 / 30})
        for attack, by in (("C&W (L2)", "L2"), ("EAD (EN rule)", "L1"), ("EAD (L1 rule)", "L1")):
            norms = {name: torch.tensor(values) for name, values in rows.items() if name != "success"}
            parts[attack, training] = {"rows": rows, "cases": metrics.case_table(success, norms, by=by).to_dict("index")}
    return parts


def test_table_14_comparisons_set_each_claimed_network_against_the_one_it_should_beat():
    parts = _table_14_parts({"None": 1.0, "EAD (L1 rule)": 1.2, "EAD (EN rule)": 1.2, "C&W (L2)": 1.3, "EAD + C&W": 2.0})
    table = claims.table_14_comparisons(parts, paper_tables.table_14_mnist())
    assert len(table) == 3 * 2 * 3 + 5  # every single-method distortion, and the five joint ones
    joint = table.xs("joint training raises it over either method alone", level="claim")
    # The joint network is set against the better single-method network, here C&W's, and beats it clearly.
    assert set(joint.index.get_level_values("against")) == {"C&W (L2)"}
    assert (joint["low"] > 0).all()
    single = table.xs("one method raises it over the null model", level="claim")
    assert set(single.index.get_level_values("against")) == {"None"} and (single["difference"] > 0).all()
    # The paper's own differences for the same pairs (C&W against C&W-trained minus null: 2.51 in L1).
    assert single.loc[("C&W (L2)", "L1", "C&W (L2)", "None"), "paper"] == pytest.approx(24.97 - 22.46)
    # A joint network no better than the others: its differences are not resolved.
    equal = claims.table_14_comparisons(_table_14_parts(dict.fromkeys(
        ("None", "EAD (L1 rule)", "EAD (EN rule)", "C&W (L2)", "EAD + C&W"), 1.0)))
    assert ((equal["low"] < 0) & (equal["high"] > 0)).all() and "paper" not in equal
