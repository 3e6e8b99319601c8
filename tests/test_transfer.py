"""Transfer of adversarial examples from one model to another."""

import dataclasses
import math

import pytest
import torch

from ead_tutorial.attacks import cw_l2, ifgm
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.metrics import row_record
from ead_tutorial.transfer import transfer_breakdown, transfer_cases, transfer_success, transfer_table


class AlwaysSays(torch.nn.Module):
    """A judge that predicts ``label`` for every input."""

    def __init__(self, label: int, classes: int = 10):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.nn.functional.one_hot(torch.tensor(label), classes).float(),
                                         requires_grad=False)

    def forward(self, x):
        return self.logits.expand(len(x), -1)


@pytest.fixture(scope="module")
def attacked(shipped_model):
    x, y = sample_correct(shipped_model, 2, seed=0)
    images, targets, _ = with_all_targets(x, y)
    return images, targets, cw_l2(shipped_model, images, targets, box="projected", search_steps=2, steps=100,
                                  initial_c=1.0)


def test_transfer_to_the_source_model_is_the_attack_itself(attacked, shipped_model):
    _, _, result = attacked
    assert result.success.any()
    assert torch.equal(transfer_success(result, shipped_model, batch_size=5), result.success)


def test_only_rows_the_judge_labels_as_the_target_transfer(attacked):
    _, targets, result = attacked
    judged = transfer_success(result, AlwaysSays(3))
    assert torch.equal(judged, result.success & (targets == 3))
    # A failed attack never transfers, even to a judge that happens to say the target.
    failed = dataclasses.replace(result, success=torch.zeros_like(result.success))
    assert not transfer_success(failed, AlwaysSays(3)).any()


def test_transfer_cases_follow_the_paper_definitions(attacked):
    images, targets, result = attacked
    cases = transfer_cases(result, AlwaysSays(3), by="L2")
    # Each image has exactly one row with target 3, so the best case is that row where it succeeded ...
    per_image = (result.success & (targets == 3)).view(-1, 9).any(1).float().mean().item() * 100
    assert cases.loc["best", "ASR"] == pytest.approx(per_image)
    # ... and the worst case needs all nine targets: never.
    assert cases.loc["worst", "ASR"] == 0 and math.isnan(cases.loc["worst", "L2"])


def test_transfer_table_runs_kappa_attacks_per_kappa_and_others_once(attacked, shipped_model):
    images, targets, _ = attacked
    calls = []

    def cw(kappa):
        calls.append(("cw", kappa))
        return cw_l2(shipped_model, images, targets, kappa=kappa, box="projected", search_steps=2, steps=50,
                     initial_c=1.0)

    def fast(kappa):
        calls.append(("ifgm", kappa))
        return ifgm(shipped_model, images, targets, norm="linf", eps=0.3)

    table = transfer_table({"C&W": (cw, "L2", True), "I-FGM": (fast, "Linf", False)}, shipped_model, [0, 5])
    assert calls == [("cw", 0), ("cw", 5), ("ifgm", None)]
    assert list(table.index.get_level_values("attack")) == ["C&W", "C&W", "I-FGM"]
    assert math.isnan(table.index.get_level_values("kappa")[2])
    # Judged by the source model itself, transfer equals success on the source.
    source = cw(0).case_table(by="L2")
    for case in ("best", "average", "worst"):
        assert table.loc[("C&W", 0.0), (case, "ASR")] == source.loc[case, "ASR"]
    assert ("source", "ASR") in table.columns and ("worst", "Linf") in table.columns
    # The attack without kappa keeps its numbers (its key holds a NaN).
    assert table.iloc[2][("source", "ASR")] == fast(None).success_rate


def test_the_transfer_rate_is_the_source_rate_times_the_transfer_of_solved_rows(attacked, shipped_model):
    """On a real attack's record: a failed row holds x0 (zero norms), and the three rates multiply."""
    _, targets, result = attacked
    failed = dataclasses.replace(result, success=result.success & (torch.arange(len(targets)) % 3 != 0))
    failed.adversarial[~failed.success] = attacked[0][~failed.success]
    norms = {name: torch.where(failed.success, value, torch.zeros_like(value)) for name, value in result.norms.items()}
    judged = transfer_success(failed, AlwaysSays(3))
    parts = transfer_breakdown(row_record(judged, norms))
    assert parts["source ASR"] == pytest.approx(100 * failed.success.float().mean().item())
    assert parts["transfer ASR, all rows"] == pytest.approx(
        parts["source ASR"] * parts["transfer ASR, solved rows"] / 100)
    assert parts["low"] <= parts["transfer ASR, all rows"] <= parts["high"]


def test_the_transfer_breakdown_by_hand():
    # Two images of three targets: the source solved rows 0, 1, 3, 4 and 5; rows 1 and 4 transfer.
    rows = {"success": [0, 1, 0, 0, 1, 0], "L2": [0.5, 1.0, 0.0, 2.0, 1.5, 0.1]}
    parts = transfer_breakdown(rows, targets_per_image=3)
    assert parts["source ASR"] == pytest.approx(500 / 6)
    assert parts["transfer ASR, all rows"] == pytest.approx(100 / 3)
    assert parts["transfer ASR, solved rows"] == pytest.approx(40.0)
    # Both images transfer one row in three: no draw of images changes the rate.
    assert parts["low"] == pytest.approx(100 / 3) and parts["high"] == pytest.approx(100 / 3)
    assert math.isnan(transfer_breakdown({"success": [0, 0, 0], "L2": [0, 0, 0]},
                                         targets_per_image=3)["transfer ASR, solved rows"])


def test_the_transfer_breakdown_refuses_records_it_cannot_read():
    with pytest.raises(ValueError, match="no norms"):
        transfer_breakdown({"success": [1, 0, 0]}, targets_per_image=3)
    with pytest.raises(ValueError, match="equals the original image"):
        transfer_breakdown({"success": [1, 0, 0], "L2": [0.0, 1.0, 1.0]}, targets_per_image=3)
    with pytest.raises(ValueError, match="whole images"):
        transfer_breakdown({"success": [0, 0, 0, 0], "L2": [1.0] * 4}, targets_per_image=3)
