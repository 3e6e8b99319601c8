"""The claims of the EAD paper about its Table 8, as checks: they hold on the paper's numbers and catch a table that breaks them."""

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
