"""The shipped distilled students: they load, match their records, keep their accuracy, and saturate."""

import pytest
import torch

from ead_tutorial.models import WEIGHTS, accuracy, distilled_temperatures, pretrained, training_record
from ead_tutorial.experiments import PAPER_TEMPERATURES
from ead_tutorial.models.distill import weights_name

TEMPERATURES = distilled_temperatures()


def test_every_temperature_the_paper_attacks_is_shipped():
    assert set(TEMPERATURES) == {float(t) for t in PAPER_TEMPERATURES}


@pytest.mark.parametrize("temperature", TEMPERATURES, ids=lambda t: f"T{t:g}")
def test_a_shipped_student_meets_its_accuracy_and_its_record(temperature, mnist_test):
    name = weights_name(temperature)
    record = training_record(name)
    assert record["temperature"] == temperature
    assert record["sha256"] == WEIGHTS[name].sha256 and record["command"] == WEIGHTS[name].command
    assert f"--temperature {temperature:g}" in record["command"]
    assert record["config"]["epochs"] == 50, "every student follows the published recipe: 50 + 50 epochs"
    x, y = mnist_test
    measured = accuracy(pretrained(name, device="cpu"), x, y)
    assert measured >= 0.985
    assert measured == pytest.approx(record["test_accuracy"], abs=1e-4)


@torch.no_grad()
def _share_saturated(model, x) -> float:
    probability = torch.cat([model(chunk).softmax(1).max(1).values for chunk in x.split(1000)])
    return (probability > 0.999).float().mean().item()


def test_the_T100_students_softmax_saturates(mnist_test, shipped_model):
    x, _ = mnist_test
    student = _share_saturated(pretrained("mnist-distilled-T100", device="cpu"), x)
    assert student > 0.9
    assert student > _share_saturated(shipped_model, x)


def test_an_unknown_record_names_the_known_ones():
    with pytest.raises(KeyError, match="mnist-distilled-T100"):
        training_record("mnist-distilled-T7")
