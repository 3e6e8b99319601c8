"""The EAD paper's printed tables, as the book quotes them: shapes, indices and the figures the prose cites."""

import math

from ead_tutorial import paper_tables


def test_table_8_has_nine_attacks_and_twelve_columns():
    table = paper_tables.table_8_mnist()
    assert table.shape == (9, 12) and table.loc["EAD (EN rule)", ("average", "L1")] == 17.4


def test_table_11_covers_three_attacks_at_eleven_temperatures():
    table = paper_tables.table_11_mnist()
    assert table.index.names == ["attack", "T"] and table.shape == (33, 12)
    assert sorted(set(table.index.get_level_values("T"))) == [1] + list(range(10, 101, 10))
    assert table.loc[("EAD (EN rule)", 100), ("average", "L1")] == 22.74
    assert (table[("average", "ASR")] >= 99.9).all()


def test_table_13_peaks_where_the_paper_says():
    table = paper_tables.table_13_mnist()
    average = table[("average", "ASR")]
    assert average["EAD (EN rule)"].idxmax() == 50 and average["EAD (EN rule)"].max() == 98.6
    assert average["C&W (L2)"].idxmax() == 40 and average["C&W (L2)"].max() == 87.4
    assert math.isnan(average["I-FGM-L1"].index[0]) and average["I-FGM-L1"].iloc[0] == 1.6
    assert len(average["EAD (L1 rule)"]) == 13  # kappa = 0, 5, ..., 60


def test_table_14_has_a_null_model_for_each_attack():
    table = paper_tables.table_14_mnist()
    assert table.index.names == ["attack", "training"]
    for attack in ("C&W (L2)", "EAD (L1 rule)", "EAD (EN rule)"):
        assert (attack, "None") in table.index
    # The null rows are the paper's Table 8 rows for the same attacks.
    table_8 = paper_tables.table_8_mnist()
    assert table.loc[("C&W (L2)", "None")].tolist() == table_8.loc["C&W (L2)"].tolist()
