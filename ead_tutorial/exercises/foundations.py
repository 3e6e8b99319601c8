"""Exercises for the chapters on the foundations and the introduction. Each check compares the answer with the package on hidden inputs."""

from __future__ import annotations

import torch
from torch import nn

from ead_tutorial.exercises.checking import exercise, expect, expect_close
from ead_tutorial.exercises.hidden_inputs import tiny_classifier


def _predicted(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


@exercise("row_distortions", chapter="intro")
def _row_distortions(row_distortions) -> None:
    """``row_distortions(x_adv, x)`` returns {"L0", "L1", "L2", "Linf"}, each a tensor with one value per row of x_adv - x."""
    from ead_tutorial.metrics import NORMS, distortions

    generator = torch.Generator().manual_seed(3)
    hints = {"L0": "L0 should count, per row, the entries that changed (any change, however small)",
             "L1": "L1 should add up the absolute changes of each row",
             "L2": "L2 is the square root of the sum of the squared changes of each row",
             "Linf": "Linf is the largest absolute change of each row; mind rows whose largest change is negative"}
    for shape in ((5, 1, 6, 6), (1, 1, 4, 4), (3, 1, 28, 28)):
        x = torch.rand(shape, generator=generator)
        delta = torch.randn(shape, generator=generator) * 0.3
        delta = delta * (torch.rand(shape, generator=generator) < 0.4)  # sparse: most entries unchanged
        delta[0] = -delta[0].abs()  # a row that only darkens
        if shape[0] > 2:
            delta[2] = 0.0  # a row left unchanged
        x_adv = x + delta
        answer = row_distortions(x_adv.clone(), x.clone())
        expect(isinstance(answer, dict) and set(NORMS) <= set(answer),
               'return a dict with the keys "L0", "L1", "L2" and "Linf"')
        expected = distortions(x_adv, x)
        for norm in NORMS:
            expect_close(answer[norm], expected[norm], f"for a batch of shape {shape}: {hints[norm]}", rtol=1e-4)


@exercise("is_adversarial_example", chapter="intro")
def _is_adversarial_example(is_adversarial_example) -> None:
    """``is_adversarial_example(model, x, labels, targeted=True)`` marks the rows of x that are valid adversarial examples."""
    from ead_tutorial.objectives import succeeded

    generator = torch.Generator().manual_seed(5)
    model = tiny_classifier(5)
    x = torch.rand(16, 1, 6, 6, generator=generator)
    x[0, 0, 0, 0], x[1, 0, 2, 3], x[8, 0, 5, 5], x[9, 0, 1, 1] = 1.02, -0.01, 1.5, -0.3  # outside the box
    predicted = _predicted(model, x)
    labels = torch.where(torch.arange(16) % 2 == 0, predicted, (predicted + 1) % 10)
    in_box = ((x >= 0) & (x <= 1)).flatten(1).all(1)
    for targeted in (True, False):
        answer = (is_adversarial_example(model, x.clone(), labels.clone()) if targeted
                  else is_adversarial_example(model, x.clone(), labels.clone(), targeted=False))
        mode = "targeted" if targeted else "untargeted (targeted=False)"
        expect(isinstance(answer, torch.Tensor) and tuple(answer.shape) == (16,),
               f"{mode}: return a tensor with one True/False per row, shape (16,)")
        answer = answer.bool()
        with torch.no_grad():
            expected = succeeded(model(x), labels, 0.0, targeted) & in_box
        goal = ("the model's class equals the label (the target)" if targeted
                else "the model's class differs from the label (the true class)")
        expect(torch.equal(answer[in_box], expected[in_box]),
               f"{mode}, rows inside the box: a row succeeds exactly where {goal}")
        expect(torch.equal(answer[~in_box], expected[~in_box]),
               f"{mode}: some rows have pixels outside [0, 1]; an adversarial example must be a valid image")


@exercise("classifier_accuracy", chapter="foundations/data_and_model")
def _classifier_accuracy(classifier_accuracy) -> None:
    """``classifier_accuracy(model, x, y)`` is the fraction of rows of x (in [0, 1]) that the model labels as y."""
    from ead_tutorial.models import accuracy

    generator = torch.Generator().manual_seed(7)
    model = tiny_classifier(7)
    for n, share_wrong in ((50, 0.3), (7, 0.0), (12, 1.0)):
        x = torch.rand(n, 1, 6, 6, generator=generator)
        predicted = _predicted(model, x)
        wrong = torch.rand(n, generator=generator) < share_wrong
        y = torch.where(wrong, (predicted + 1 + torch.randint(9, (n,), generator=generator)) % 10, predicted)
        answer = classifier_accuracy(model, x.clone(), y.clone())
        expect(not isinstance(answer, torch.Tensor) or answer.numel() == 1, "return one number, not a tensor per row")
        expect_close(answer, accuracy(model, x, y), f"on a batch of {n} rows: the accuracy is the fraction "
                     "(between 0 and 1) of rows whose predicted class equals the label")


@exercise("sample_correct_rows", chapter="foundations/data_and_model")
def _sample_correct_rows(sample_correct_rows) -> None:
    """``sample_correct_rows(model, x, y, n, seed)`` returns the first n correctly classified rows, in a seeded random order."""
    generator = torch.Generator().manual_seed(11)
    model = tiny_classifier(11)
    x = torch.rand(40, 1, 6, 6, generator=generator)
    predicted = _predicted(model, x)
    y = torch.where(torch.rand(40, generator=generator) < 0.5, predicted, (predicted + 3) % 10)
    for n, seed in ((5, 0), (8, 3), (1, 7)):
        answer = sample_correct_rows(model, x.clone(), y.clone(), n, seed)
        expect(isinstance(answer, (tuple, list)) and len(answer) == 2, "return a pair (x_n, y_n)")
        x_n, y_n = answer
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        chosen = order[(predicted == y)[order]][:n]
        expect(isinstance(x_n, torch.Tensor) and tuple(x_n.shape) == (n, 1, 6, 6),
               f"x_n should hold n = {n} images, shape {(n, 1, 6, 6)}")
        expect(isinstance(y_n, torch.Tensor) and tuple(y_n.shape) == (n,), f"y_n should hold n = {n} labels")
        expect(torch.equal(_predicted(model, x_n), y_n.long()),
               f"n = {n}: some of the rows you return are not classified correctly (or their labels are not theirs)")
        expect(torch.equal(x_n, x[chosen]) and torch.equal(y_n.long(), y[chosen]),
               f"n = {n}, seed = {seed}: the rows are correct but not the right ones; visit the rows in the order "
               "torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)) and keep the first n correct ones")


@exercise("most_confused_pair", chapter="foundations/data_and_model")
def _most_confused_pair(most_confused_pair) -> None:
    """``most_confused_pair(confusion)`` returns (true, predicted) of the largest off-diagonal entry of a confusion matrix."""
    generator = torch.Generator().manual_seed(13)
    for size, true, predicted in ((10, 4, 9), (10, 7, 2), (3, 0, 2)):
        confusion = torch.randint(0, 20, (size, size), generator=generator)
        confusion += torch.diag(torch.randint(500, 1000, (size,), generator=generator))  # mostly right
        confusion[true, predicted] = 60  # the largest mistake, and a smaller one the other way round
        confusion[predicted, true] = 40
        answer = most_confused_pair(confusion.clone())
        expect(isinstance(answer, (tuple, list)) and len(answer) == 2, "return a pair (true class, predicted class)")
        answer = tuple(int(value) for value in answer)
        expect(answer[0] != answer[1], "the diagonal counts correct answers, not confusions: leave it out")
        expect(answer != (predicted, true), "rows are the true classes and columns the predicted ones: "
                                            "your pair is the wrong way round")
        expect(answer == (true, predicted), f"for a {size} x {size} matrix, that is not the largest off-diagonal entry")
