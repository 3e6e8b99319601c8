"""The benchmark against the peers: its pass counter agrees with the attacks' own counts."""

import pytest
import torch

from ead_tutorial.benchmark import PassCounter, as_frame, race


@pytest.fixture(scope="module")
def rows():
    from ead_tutorial.data import sample_correct, with_all_targets
    from ead_tutorial.models import pretrained

    torch.set_num_threads(1)
    model = pretrained("mnist")
    x, y = sample_correct(model, 1, seed=0)
    images, targets, _ = with_all_targets(x, y)
    return model, images[:3], targets[:3]


def test_the_counter_sees_every_pass_our_attacks_report(rows):
    from ead_tutorial.attacks import cw_l2, ead

    model, images, targets = rows
    for attack in (cw_l2, ead):
        counter = PassCounter(model)
        result = attack(model, images, targets, search_steps=2, steps=40, initial_c=1.0)
        counter.remove()
        assert counter.backward == result.gradient_evaluations.sum().item()
        # Every forward pass the attack reports, and the one of its input checks.
        assert counter.forward == result.forward_passes.sum().item() + len(images)


def test_the_race_runs_every_contender_on_the_same_rows(rows):
    model, images, targets = rows
    budget = dict(search_steps=2, steps=40, initial_c=1.0, beta=1e-3, cw_box="projected")
    table = race(model, images, targets, budget)
    assert {"C&W L2 (ours)", "EAD EN (ours)", "EAD L1 (ours)", "EAD L1 (ours, no abort early)"} <= set(table)
    patient = table["EAD L1 (ours, no abort early)"]
    assert patient["backward passes per row"] == 2 * 40
    assert table["EAD L1 (ours)"]["backward passes per row"] <= patient["backward passes per row"]
    # Skipped checks: fewer than one forward pass per gradient on top of the gradients' own.
    assert patient["forward passes per row"] < 2 * patient["backward passes per row"]
    frame = as_frame(table)
    assert list(frame.index) == list(table)
