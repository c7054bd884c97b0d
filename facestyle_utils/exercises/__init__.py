"""Self-check exercises, one module per lesson (``lesson_00`` ... ``lesson_07``).

The notebooks state each exercise and call its checker; the reference solutions live here, out of
sight, so a learner sees one only when they ask for it (:func:`show_solution`). The convention, in the
manner of CS231n's check cells:

- ``check_<name>(answer, ...) -> str`` returns ``"PASS"`` or one sentence saying what is wrong. The extra
  arguments are whatever the notebook already has (the VGG network, a face tensor); a checker never
  reads notebook globals. A checker is as strict as its exercise's statement, and answers ``"not done
  yet: ..."`` while the learner's stub still returns ``None``.
- ``solution_<name>(...)`` computes the reference answer; ``tests/test_exercises.py`` checks that every
  checker passes its own solution and fails a typical wrong answer.
"""
from __future__ import annotations

import inspect
from typing import Callable

PASS = "PASS"


def not_done(answer: object, what: str) -> str | None:
    """``"not done yet: <what>"`` while ``answer`` is still ``None`` (the stub), else ``None``."""
    return f"not done yet: {what}" if answer is None else None


def report(label: str, verdict: str) -> str:
    """Print ``label: verdict`` (what a check cell shows) and return the verdict, for tests."""
    print(f"{label}: {verdict}")
    return verdict


def show_solution(solution: Callable) -> None:
    """Print the source of a reference solution: call it only once you have tried the exercise."""
    print(inspect.getsource(solution))


__all__ = ["PASS", "not_done", "report", "show_solution"]
