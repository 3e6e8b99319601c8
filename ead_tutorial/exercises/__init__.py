"""Self-checking exercises for the book's chapters.

Each exercise has a check, ``check_<name>(answer)``, which runs hidden tests on your
answer (usually a function you wrote in the chapter) and prints either a pass or a
hint that says what is wrong without giving the answer away::

    from ead_tutorial.exercises import check_median_shrink
    check_median_shrink(median_shrink)

``EXERCISES`` lists them all, with the chapter each belongs to.
"""

from ead_tutorial.exercises.checking import EXERCISES, Exercise, Hint, Outcome

# Importing each part registers its exercises; the check_* names are re-exported here.
from ead_tutorial.exercises import baselines, cw, cw_attacks, defences, ead, foundations  # noqa: E402,F401

globals().update({exercise.check.__name__: exercise.check for exercise in EXERCISES.values()})

__all__ = ["EXERCISES", "Exercise", "Hint", "Outcome"] + sorted(e.check.__name__ for e in EXERCISES.values())
