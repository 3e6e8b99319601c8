"""The machinery behind ``check_<name>``: run hidden tests on an answer, print a pass or a hint.

An exercise is written as a function that takes the student's answer and raises
:class:`Hint` (most simply through :func:`expect` or :func:`expect_close`) when the
answer is wrong. :func:`exercise` turns it into the public ``check_<name>`` function:

>>> @exercise("square", chapter="intro")
... def _(answer):
...     expect_close(answer(0.5), 0.25, "square the input")

A check never raises for a wrong or unfinished answer; it prints what it found and
returns an :class:`Outcome` that is true only when every test passed. It never prints
the expected value: hints say *where* an answer goes wrong, not what it should be.
Called with ``strict=True`` (as the autograded cells of the nbgrader edition call it),
it prints the same line and then raises :class:`NotPassed` unless the answer passed.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

_HERE = Path(__file__).resolve().parent

__all__ = ["EXERCISES", "Exercise", "Hint", "NotPassed", "Outcome", "exercise", "expect", "expect_close"]


class Hint(AssertionError):
    """A wrong answer, with a message that points toward the mistake without giving the answer."""


class NotPassed(AssertionError):
    """Raised by ``check_<name>(answer, strict=True)`` when the answer did not pass; its message is the check's line."""


@dataclass(frozen=True)
class Outcome:
    """What a check found. True when the answer passed every hidden test."""

    name: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        # The message was printed when the check ran; showing the outcome again would repeat it.
        pass


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: its name, the chapter (path under ``book/`` without suffix) and its check."""

    name: str
    chapter: str
    check: Callable[..., Outcome]


EXERCISES: dict[str, Exercise] = {}


def expect(condition: Any, hint: str) -> None:
    """Raise :class:`Hint` with ``hint`` unless ``condition`` holds."""
    if not bool(condition):
        raise Hint(hint)


def expect_close(actual: Any, expected: Any, hint: str, *, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise :class:`Hint` unless ``actual`` matches ``expected`` (numbers or tensors) in value and shape.

    Shapes, NaNs and wrong types each get a hint of their own; values never appear in it.
    """
    if isinstance(expected, torch.Tensor):
        expect(isinstance(actual, torch.Tensor), f"expected a torch.Tensor, got {type(actual).__name__}")
        expect(tuple(actual.shape) == tuple(expected.shape),
               f"expected a tensor of shape {tuple(expected.shape)}, got {tuple(actual.shape)}")
        expect(not torch.isnan(actual).any(), "your answer contains NaN")
        close = torch.allclose(actual.detach().to(expected.dtype).cpu(), expected.detach().cpu(), rtol=rtol, atol=atol)
    else:
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            raise Hint(f"expected a number, got {type(actual).__name__}") from None
        expect(not math.isnan(actual), "your answer is NaN")
        close = math.isclose(actual, float(expected), rel_tol=rtol, abs_tol=atol)
    expect(close, hint)


def _where_it_failed(error: Exception) -> str:
    """One line on an error raised while checking: in the student's code if it came from there."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename).resolve().parent != _HERE]
    what = f"{type(error).__name__}: {error}"
    if frames and frames[-1].filename.startswith("<"):  # a notebook cell or an interactive definition
        return f"your code raised {what} (line {frames[-1].lineno} of {frames[-1].name})"
    if not frames:
        return f"calling your answer raised {what}; check that it takes the arguments the exercise describes"
    return f"your code raised {what} (in {frames[-1].name}, {Path(frames[-1].filename).name}:{frames[-1].lineno})"


def _report(name: str, passed: bool, message: str) -> Outcome:
    print(message)
    return Outcome(name, passed, message)


def exercise(name: str, *, chapter: str, tests: int | None = None) -> Callable[[Callable[[Any], None]], Callable]:
    """Register ``hidden_tests(answer)`` as exercise ``name``; return the public ``check_<name>(answer)``.

    ``hidden_tests`` raises :class:`Hint` for a wrong answer. The check catches that, an
    unfinished answer (``NotImplementedError``, ``None`` or ``...``) and any other error
    the student's code raises, and reports each in words instead of a traceback.
    """

    def register(hidden_tests: Callable[[Any], None]) -> Callable[..., Outcome]:
        def check(answer: Any, *, strict: bool = False) -> Outcome:
            outcome = _run(answer)
            if strict and not outcome.passed:  # an autograded cell: fail it, after the same printed line
                raise NotPassed(outcome.message)
            return outcome

        def _run(answer: Any) -> Outcome:
            if answer is None or answer is Ellipsis:
                return _report(name, False, f"✗ {name}: no answer yet. Write your answer in the cell above, "
                                            "run it, then run this check again.")
            if not callable(answer):  # every answer is a function, which the hidden tests call
                return _report(name, False, f"✗ {name}: not yet. Hint: pass your function itself, e.g. "
                                            f"check_{name}(my_function), not its result.")
            try:
                hidden_tests(answer)
            except NotImplementedError:
                return _report(name, False, f"✗ {name}: not implemented yet. Replace `raise NotImplementedError` "
                                            "in the cell above with your code, run it, then run this check again.")
            except Hint as hint:
                return _report(name, False, f"✗ {name}: not yet. Hint: {hint}")
            except Exception as error:  # the student's code failed: say where, without a wall of traceback
                return _report(name, False, f"✗ {name}: {_where_it_failed(error)}. Fix that and try again.")
            return _report(name, True, f"✓ {name}: passed every hidden test. Well done.")

        check.__name__ = check.__qualname__ = f"check_{name}"
        check.__doc__ = (f"Check your answer to the exercise {name!r} (chapter {chapter}).\n\n"
                         f"{hidden_tests.__doc__ or ''}\n\nPrints a pass or a hint; returns an Outcome, "
                         "true when the answer passed. With strict=True it also raises NotPassed "
                         "when the answer did not pass.")
        if name in EXERCISES:
            raise ValueError(f"exercise {name!r} is registered twice")
        EXERCISES[name] = Exercise(name, chapter, check)
        return check

    return register
