"""The papers' qualitative claims, asserted on the results the package ships (the larger profiles).

The chapters show these results; here each claim the prose makes about them is checked, so
that a recomputed result that no longer bears a claim out fails a test instead of leaving
the prose wrong. A result not computed yet is skipped, and says how to compute it.
"""

import numpy as np
import pytest

from ead_tutorial import store
from ead_tutorial.metrics import case_table, rows_from_record


def _stored(name, profile="standard"):
    try:
        return store.load_result(name, profile)
    except FileNotFoundError as missing:
        pytest.skip(str(missing))


def test_batching_is_faster_than_one_row_at_a_time():
    data = _stored("cw-batch-speedup").data
    assert data["cw_l0"]["speed-up"] > 1.5 and data["cw_linf"]["speed-up"] > 1
    for attack in ("cw_l0", "cw_linf"):  # and no faster by doing less: the same rows succeed
        assert abs(data[attack]["ASR batched"] - data[attack]["ASR one at a time"]) <= 100 / data[attack]["rows"] + 1e-6


def _cases(name, attacks_key="attacks"):
    attacks = _stored(name).data[attacks_key]
    return {attack: part["cases"] for attack, part in attacks.items()}


@pytest.mark.parametrize("case", ["best", "average", "worst"])
def test_ead_table_2_ead_has_less_l1_than_cw_in_every_case(case):
    cases = _cases("ead-table-2")
    for rule in ("EAD (EN rule)", "EAD (L1 rule)"):
        assert cases[rule][case]["L1"] < cases["C&W (L2)"][case]["L1"], (rule, case)
        assert cases[rule][case]["ASR"] >= cases["C&W (L2)"][case]["ASR"], (rule, case)
    # and the L1 rule picks examples of less L1, and more Linf, than the EN rule
    assert cases["EAD (L1 rule)"][case]["L1"] <= cases["EAD (EN rule)"][case]["L1"]
    assert cases["EAD (L1 rule)"][case]["Linf"] >= cases["EAD (EN rule)"][case]["Linf"]


def test_stored_rows_give_back_the_stored_cases():
    """Where a result keeps each row (for the intervals), its cases are those of its rows."""
    result = _stored("ead-table-2")
    for attack, part in result.data["attacks"].items():
        if "rows" not in part:
            pytest.skip("ead-table-2 was stored before it kept its rows; recompute it for intervals")
        success, norms = rows_from_record(part["rows"])
        table = case_table(success, norms, by=result.data["ranked_by"][attack], seed=result.config["seed"])
        for case in ("best", "average", "worst"):
            for metric, value in part["cases"][case].items():
                assert np.isclose(table.loc[case, metric], value, rtol=1e-5, equal_nan=True), (attack, case, metric)


def _sweep(rule, metric, case="average"):
    result = _stored("ead-beta-sweep")
    betas = [beta for beta in result.config["betas"] if f"{rule}/{beta:g}" in result.data["cells"]]
    if len(betas) < len(result.config["betas"]):
        pytest.skip("ead-beta-sweep is not complete")
    return np.array(betas), np.array([result.data["cells"][f"{rule}/{beta:g}"][case][metric] for beta in betas])


@pytest.mark.parametrize("rule", ["en", "l1"])
def test_beta_sweep_trades_l1_for_l2_and_linf(rule):
    """EAD's Table 6: as beta grows over the paper's range (1e-5 to 5e-2), L1 falls while L2 and Linf rise."""
    from scipy.stats import spearmanr

    for metric, sign in (("L1", -1), ("L2", 1), ("Linf", 1)):
        betas, values = _sweep(rule, metric)
        paper_range = betas <= 5e-2
        correlation = spearmanr(betas[paper_range], values[paper_range]).statistic
        assert sign * correlation > 0.8, (rule, metric, values)


def test_beta_sweep_the_l1_rule_has_less_l1_than_the_en_rule_at_every_beta():
    betas, en = _sweep("en", "L1")
    _, l1 = _sweep("l1", "L1")
    assert (l1 <= en * (1 + 1e-9)).all()


def test_table_1_cov_hardly_moves_with_beta_while_ead_trades_l1_for_l2():
    """EAD's Table 1: under the change of variables L1 is nearly the same for every beta; EAD's falls."""
    cells = _stored("ead-table-1").data["cells"]

    def average(method, beta, metric="L1"):
        return cells[f"{method} / beta={beta:g}"]["cases"]["average"][metric]

    cov_change = average("COV (Adam)", 1e-2) / average("COV (Adam)", 0.0) - 1
    ead_change = average("EAD (EN rule)", 1e-2) / average("EAD (EN rule)", 0.0) - 1
    assert abs(cov_change) < 0.1 and ead_change < -0.2
    assert average("EAD (EN rule)", 1e-2, "L2") > average("EAD (EN rule)", 0.0, "L2")
    for beta in (1e-4, 1e-3, 1e-2):  # EAD's L1 below COV's wherever beta matters
        assert average("EAD (EN rule)", beta) < average("COV (Adam)", beta)


@pytest.mark.parametrize("case", ["best", "average", "worst"])
def test_ead_table_2_the_papers_l1_and_l2_lie_inside_our_intervals(case):
    """What the ead_vs_cw chapter says of the stored standard result: the paper's L1 and L2 lie within our
    95% bootstrap intervals over images in every case; the gaps it reports are in L-infinity (and C&W's worst-case ASR)."""
    from ead_tutorial import paper_tables, report

    result = _stored("ead-table-2")
    paper = paper_tables.table_8_mnist(list(result.data["attacks"]))
    outside = report.outside_interval(result.data["attacks"], paper[case], by=result.data["ranked_by"], case=case,
                                      metrics=("L1", "L2"))
    assert outside == []
    if case != "best":  # and the L-infinity the chapter reports below the paper's
        cases = _cases("ead-table-2")
        assert all(cases[attack][case]["Linf"] < paper.loc[attack, (case, "Linf")] for attack in cases)


# The claims of Table 8 that fail on our stored standard result, as the all_attacks chapter reports: in the
# worst case our C&W (L2), short of iterations under the change of variables, solves every target of only 14
# of the 20 images, and with more L2 than EAD on those (ead_vs_cw, "Where our C&W fails").
TABLE_8_FAILURES = {"best": set(), "average": set(), "worst": {"C&W (L2) has the least L2, or within 5% of it"}}


@pytest.mark.parametrize("case", ["best", "average", "worst"])
def test_ead_table_8_bears_out_the_papers_claims_about_the_baselines(case):
    """The all_attacks chapter's claims table, on the stored standard result: EAD has the least L1 (with less
    than C&W and I-FGM-L1, by the paper's margin), the L1 rule at most the EN rule's, C&W (L2) the least L2 or
    nearly, I-FGM-Linf the least Linf, and FGM (outside the best case) a far lower success rate. Exactly the
    claims the chapter reports as failing fail."""
    import pandas as pd

    from ead_tutorial import claims, paper_tables

    cases = _cases("ead-table-8")
    table = pd.DataFrame({attack: values[case] for attack, values in cases.items()}).T
    checks = claims.table_8(table.loc[paper_tables.table_8_mnist().index], case)
    assert set(checks.index[~checks]) == TABLE_8_FAILURES[case], checks


def test_ead_table_11_distillation_stops_neither_attack_at_any_temperature():
    """The breaking_distillation chapter's claims on the stored result. Our C&W already fails one image in 20 on
    the undefended network (ead_vs_cw), so the success-rate claim allows two images in 20: 90%."""
    from ead_tutorial import claims, report

    results = _stored("ead-table-11").data["results"]
    parts = {(attack, float(network.removeprefix("T="))): part for network, by_attack in results.items()
             if network.startswith("T=") for attack, part in by_attack.items()}
    assert len({t for _, t in parts}) == 11, "Table 11 needs all eleven distilled networks"
    checks = claims.table_11(report.as_paper_table(parts, ("attack", "T")), min_asr=90.0)
    assert checks.all(), checks[~checks]


def test_ead_table_13_transfer_rises_with_kappa_and_ead_transfers_at_least_as_well_as_cw():
    """The transferability chapter's claims on the stored result; on 20 images a rate may dip by one image's
    share of the average case (5 points) on its way to the peak."""
    from ead_tutorial import claims, report

    results = _stored("ead-table-13").data["results"]
    parts = {report.split_part_key(key, "kappa"): part for key, part in results.items()}
    checks = claims.table_13(report.as_paper_table(parts, ("attack", "kappa"), section="transfer"), slack=5.0)
    assert checks.all(), checks[~checks]


def _transferred_and_solved(part):
    from ead_tutorial.transfer import solved_on_source

    return np.asarray(part["rows"]["success"], dtype=bool), solved_on_source(part["rows"])


def test_ead_table_13_eads_edge_comes_from_the_rows_cw_misses_on_the_source():
    """The transferability chapter's account of EAD's edge, on the stored result: C&W's success on the source
    falls as kappa grows while EAD's stays at 95% or more; on the rows both solve, C&W's examples transfer at
    least as often as EAD's, less 5 points; from kappa = 40 on EAD's edge over all rows is real (its
    paired interval over images lies above 0), and EAD's examples on the rows C&W missed mostly transfer."""
    from ead_tutorial import report
    from ead_tutorial.metrics import bootstrap_draws, percentile_interval

    stored = _stored("ead-table-13")
    results, seed = stored.data["results"], stored.config["seed"]
    cw = {kappa: _transferred_and_solved(part) for (attack, kappa), part in
          ((report.split_part_key(key, "kappa"), part) for key, part in results.items()) if attack == "C&W (L2)"}
    kappas = sorted(cw)
    assert cw[max(kappas)][1].mean() <= cw[0.0][1].mean() - 0.10
    for rule in ("EAD (EN rule)", "EAD (L1 rule)"):
        for kappa in kappas:
            moved, solved = _transferred_and_solved(results[report.part_key(rule, "kappa", kappa)])
            cw_moved, cw_solved = cw[kappa]
            assert solved.mean() >= 0.95, (rule, kappa)
            both = solved & cw_solved
            assert cw_moved[both].mean() >= moved[both].mean() - 0.05, (rule, kappa)
            if kappa >= 40:
                per_image = (moved.astype(float) - cw_moved).reshape(-1, 9).mean(1)
                low, _ = percentile_interval(per_image[bootstrap_draws(len(per_image), seed=seed)].mean(1))
                assert low > 0, (rule, kappa)
                missed = solved & ~cw_solved
                assert missed.sum() >= 20 and moved[missed].mean() >= 0.8, (rule, kappa)


def test_transfer_cw_misses_c_and_w_with_the_box_projected_closes_most_of_eads_edge():
    """The transferability chapter's account of the rows C&W missed: they are the stored Table 13's misses;
    C&W with the box projected solves at least half of them, and at least 90% of what it solves transfers;
    with those rows redone, at most half of EAD's edge over all rows is left, at every kappa."""
    from ead_tutorial import report

    misses, table_13 = _stored("transfer-cw-misses"), _stored("ead-table-13")
    assert misses.data["source created"] == table_13.created
    for key, part in misses.data["results"].items():
        kappa = report.split_part_key(key, "kappa")[1]
        cw_moved, cw_solved = _transferred_and_solved(table_13.data["results"][report.part_key("C&W (L2)", "kappa", kappa)])
        redone, solved, moved = (np.asarray(part[name]) for name in ("rows", "source success", "transfer"))
        assert sorted(redone) == sorted(np.flatnonzero(~cw_solved)), kappa
        assert solved.mean() >= 0.5 and moved[solved].mean() >= 0.9, kappa
        ead_moved, _ = _transferred_and_solved(table_13.data["results"][report.part_key("EAD (EN rule)", "kappa", kappa)])
        with_redone = cw_moved.astype(float)
        with_redone[redone] = moved
        assert ead_moved.mean() - with_redone.mean() <= (ead_moved.mean() - cw_moved.mean()) / 2, kappa


def test_ead_table_14_adversarial_training_raises_the_distortion_attacks_need():
    """The adversarial_training chapter's account of the stored result: accuracy kept and every single-method
    rise as the paper says; C&W misses hard targets and the joint claim fails on the means, but no joint
    comparison is resolved and every one of the paper's differences lies inside our interval."""
    from ead_tutorial import claims, paper_tables, report

    stored = _stored("ead-table-14")
    data = stored.data
    parts = {(attack, training): part for training, by_attack in data["results"].items()
             for attack, part in by_attack.items()}
    accuracy = {training: network["test accuracy"] for training, network in data["networks"].items()}
    checks = claims.table_14(report.as_paper_table(parts, ("attack", "training")), accuracy=accuracy)
    assert set(checks.index[~checks]) == {
        "every attack succeeds on every network (average case)",
        "joint training raises C&W's and EAD (EN)'s L1 and L2, and EAD (L1)'s L2, above either method alone"}
    # Only C&W misses rows; EAD succeeds on every row of every network.
    for (attack, training), part in parts.items():
        assert attack == "C&W (L2)" or all(part["rows"]["success"]), (attack, training)
    paper = paper_tables.table_14_mnist()
    comparisons = claims.table_14_comparisons(parts, paper, seed=stored.config.get("seed", 0))
    joint = comparisons.xs("joint training raises it over either method alone", level="claim")
    single = comparisons.xs("one method raises it over the null model", level="claim")
    assert ((joint["low"] < 0) & (joint["high"] > 0)).all()
    assert (single["difference"] > 0).all() and (single["low"] > 0).mean() >= 1 / 3
    assert comparisons["paper"].between(comparisons["low"], comparisons["high"]).all()


def test_cw_fails_its_hard_targets_for_want_of_budget_not_for_its_first_c():
    """The ead_vs_cw chapter's finding on the rows its stored C&W failed: recomputed they fail again, the paper's
    first c does not help, more iterations or the projected box do, and EAD with the same budget solves them all."""
    data = _stored("cw-hard-targets").data
    solved = {name: sum(variant["success"]) for name, variant in data["variants"].items()}
    longer = next(name for name in solved if name.endswith("steps per round"))
    assert solved["C&W, as in the table"] == solved["C&W, c from 1e-2"] == 0
    assert solved[longer] > 0 and solved["C&W, box projected"] > 0
    assert solved["EAD (EN rule), as in the table"] == len(data["rows"])


def test_distilled_cw_misses_come_from_cws_budget_not_from_the_defence():
    """The breaking_distillation chapter's account of C&W's misses on the student where it missed the most."""
    data, table_11 = _stored("distilled-cw-misses").data, _stored("ead-table-11").data["results"]
    cw_rows = table_11[data["network"]]["C&W (L2)"]["rows"]["success"]
    assert data["rows"] == [row for row, ok in enumerate(cw_rows) if not ok]  # exactly Table 11's misses there
    assert len(data["rows"]) == max(data["misses per network"].values())
    solved = {name: sum(variant["success"]) for name, variant in data["variants"].items()}
    longer = next(name for name in solved if name.endswith("steps per round"))
    assert solved["C&W, as in the table"] == solved["C&W, c from 1e-2"] == 0
    assert solved["C&W, box projected"] > len(data["rows"]) / 2 and solved["C&W, box projected"] > solved[longer] > 0
    assert solved["EAD (EN rule), as in the table"] == len(data["rows"])


def test_exact_minimum_no_attack_beats_a_verified_optimum_in_any_norm():
    """The exact-minimum chapter's floor, on the stored standard result: every optimum is verified on the
    network, and no attack's example (whatever norm it minimises) is closer than the optimum in any norm solved."""
    data = _stored("exact-minimum").data
    assert len(data["targets"]) >= 100 and set(data["exact"]) == {"l1", "l2", "linf"}
    names = {"l1": "L1", "l2": "L2", "linf": "Linf"}
    optima = 0
    for norm, solved in data["exact"].items():
        for row, exact in enumerate(solved):
            assert exact["status"] in ("optimal", "time limit", "infeasible"), (norm, row, exact)
            if exact["status"] != "optimal":
                continue
            optima += 1
            assert exact["verified"], (norm, row)
            for attack, part in data["attacks"].items():
                if part["rows"]["success"][row]:
                    assert part["rows"][names[norm]][row] >= exact["distance"] * (1 - 1e-3) - 1e-5, (attack, norm, row)
    assert optima >= 0.9 * sum(len(solved) for solved in data["exact"].values())
