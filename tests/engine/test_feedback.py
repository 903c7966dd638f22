"""Feedback that teaches (issue 9 #9, #10): messages in the lesson's terms, and what a
student sees of a hidden test (its name and the kind of mistake, never its inputs)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.assignment import load_assignment
from grader.checks import Mismatch, expect_array, unusable_message
from grader.engine import grade
from grader.results import MISTAKES

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

HIDDEN_TESTS = '''
import numpy as np
import pytest
from grader.checks import expect_array


@pytest.mark.points(1)
def test_values(student, rng):
    """twice on generated inputs"""
    x = rng.normal(size=4)
    expect_array(student.twice(x), 2 * x, name="twice(x)")


@pytest.mark.points(1)
def test_raises(student, rng):
    """boom on a generated input"""
    student.boom(float(rng.normal()))


@pytest.mark.points(1)
def test_uses_the_result(student):
    """graded_tensor's values, read by the test"""
    assert student.graded_tensor().numpy().sum() == 3
'''

SUBMISSION = '''
import torch

def twice(x):
    return 2 * x + 0.1  # wrong for every input, whatever the seed draws

def boom(value):
    # A class named after the hidden input: its name must not reach the student.
    raise type(f"Leak_{abs(value):.6f}".replace(".", "_"), (Exception,), {})("no")

def graded_tensor():
    return torch.ones(3, requires_grad=True) * 1
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feedback") / "fb"
    (root / "tests" / "hidden").mkdir(parents=True)
    (root / "assignment.toml").write_text('title = "feedback"\npoints = 3\n'
                                          "[limits]\ncall_timeout_s = 10\ntotal_timeout_s = 60\n")
    (root / "solution.py").write_text(textwrap.dedent('''
        import torch
        def twice(x):
            return 2 * x
        def boom(value):
            return value
        def graded_tensor():
            return torch.ones(3)
        '''))
    (root / "starter.py").write_text("def twice(x):\n    raise NotImplementedError\n")
    (root / "tests" / "hidden" / "test_hidden.py").write_text(HIDDEN_TESTS)
    return root


def test_values_message_quotes_the_element_that_breaks_the_tolerance():
    """Not the largest difference: 1000 vs 1000.5 is within rtol=1e-3, 1 vs 1.2 is not."""
    with pytest.raises(Mismatch) as caught:
        expect_array(np.array([1000.0, 1.0]), np.array([1000.5, 1.2]), name="y", rtol=1e-3)
    assert "yours is 1 at index (1,), expected 1.2" in str(caught.value)
    assert "1 of 2 values are off" in str(caught.value) and caught.value.kind == "values"


def test_a_tensor_where_an_array_is_asked_for_is_not_told_numpy_only():
    import torch

    with pytest.raises(Mismatch) as caught:
        expect_array(torch.ones(2), np.ones(2), name="y")
    assert "NumPy only" not in str(caught.value) and caught.value.kind == "type"
    assert "return a NumPy array" in str(caught.value)


def test_the_tests_own_errors_are_told_in_the_lessons_terms():
    import torch

    try:
        torch.ones(1, requires_grad=True).numpy()
    except RuntimeError as exc:
        message = unusable_message(exc)
    assert "numpy()" not in message and "`.detach()`" in message


def test_hidden_tests_show_their_name_and_the_kind_of_mistake_only(course):
    result = grade(_write(course.parent / "sub.py", SUBMISSION), load_assignment(course))
    by_name = {t.name: t for t in result.tests}
    assert by_name["twice on generated inputs"].kind == "values"
    assert by_name["boom on a generated input"].kind == "error"
    assert by_name["boom on a generated input"].hint == MISTAKES["error"], "a made-up class name"
    used = by_name["graded_tensor's values, read by the test"]
    assert used.kind == "unusable" and "`.detach()`" in used.message
    assert "Can't call numpy()" not in used.message
    view = result.for_student(past_due=False)
    shown = {t["name"]: t for t in view["tests"]}
    assert set(shown) == set(by_name) and all(t["withheld"] for t in shown.values())
    assert shown["twice on generated inputs"]["message"] == MISTAKES["values"]
    assert "Leak_" in by_name["boom on a generated input"].message  # instructors see it all
    assert "Leak_" not in json.dumps(view) and "index" not in json.dumps(view)


def test_a_notebook_whose_cell_failed_is_told_so_not_that_it_defines_nothing(course):
    cells = ["import torch\n", "x = 1 / 0\n\ndef twice(x):\n    return 2 * x\n"]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
         "outputs": [], "source": c} for i, c in enumerate(cells)]}
    result = grade(_write(course.parent / "work.ipynb", json.dumps(nb)), load_assignment(course))
    twice = next(t for t in result.tests if t.name == "twice on generated inputs")
    assert "A cell failed (cell 2 raised ZeroDivisionError" in twice.message
    assert "fix that cell" in twice.message and twice.kind == "missing"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
