"""A forbidden use costs the tests of the function that holds it, not the file (issue 9 #8)."""

from __future__ import annotations

import json

import pytest

from grader.assignment import Forbidden, find
from grader.attribution import attribute
from grader.engine import grade
from grader.results import GRADED
from grader.static_checks import find_violations

CONV = Forbidden(calls={"torch.nn.functional.conv2d": "write your own"})


def placed(source: str | list[str], rules: Forbidden = CONV) -> tuple[dict[str, int], list[int]]:
    """(blocked name -> line of its violation, lines that refuse the whole file)."""
    found = find_violations(source, rules)
    got = attribute(source, found)
    return {n: v.line for n, v in got.blocked.items()}, [v.line for v in got.whole_file]


def test_a_use_in_a_function_body_blocks_that_function_only():
    src = ("import torch.nn.functional as F\n"
           "def mine(x, w):\n    return F.conv2d(x, w)\n"
           "def other(x):\n    return x + 1\n")
    assert placed(src) == ({"mine": 3}, [])


def test_code_that_runs_at_load_refuses_the_whole_file():
    """Module level, a class body, a decorator and a default value all run as the file loads."""
    assert placed("import torch.nn.functional as F\ny = F.conv2d(1, 2)\n") == ({}, [2])
    assert placed("import torch.nn.functional as F\nclass A:\n    k = F.conv2d(1, 2)\n") == ({}, [3])
    assert placed("import torch.nn.functional as F\n@F.conv2d\ndef f():\n    pass\n") == ({}, [2])
    assert placed("import torch.nn.functional as F\ndef f(a=F.conv2d(1, 2)):\n    pass\n") == ({}, [2])


def test_methods_block_their_class_and_names_that_use_it_are_blocked_too():
    src = ("import torch.nn.functional as F\n"
           "class Net:\n    def forward(self, x):\n        return F.conv2d(x, self.w)\n"
           "run = Net().forward\n"
           "def train(data):\n    return [run(d) for d in data]\n"
           "def late():\n    return helper()\n"
           "def helper():\n    return train([])\n"
           "def clean(x):\n    return x\n")
    blocked, whole = placed(src)
    assert blocked == {"Net": 4, "run": 4, "train": 4, "late": 4, "helper": 4} and whole == []


def test_a_definition_replaced_later_blocks_nothing():
    """A notebook's first try in one cell, the fixed function in a later one: the last counts."""
    cells = ["import torch.nn.functional as F\n", "def mine(x, w):\n    return F.conv2d(x, w)\n",
             "def mine(x, w):\n    return x * w\n"]
    assert placed(cells) == ({}, [])


def test_notebook_cells_are_placed_by_cell_and_line():
    cells = ["import torch.nn.functional as F\n", "%time y = 1\ndef mine(x, w):\n    return F.conv2d(x, w)\n"]
    assert placed(cells) == ({"mine": 3}, [])


@pytest.mark.usefixtures("require_full_sandbox")
def test_torch_relu_in_one_04_function_costs_only_its_tests(tmp_path):
    """The issue's case: `torch.relu` in MyReLU.forward, as a notebook; the other two
    Functions are hand-written and keep their points."""
    assignment = find("04_custom_functions")
    source = assignment.solution.read_text()
    assert "        return x.clamp(min=0)\n" in source
    source = source.replace("        return x.clamp(min=0)\n", "        return torch.relu(x)\n", 1)
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None, "outputs": [],
         "source": source}]}
    path = tmp_path / "work.ipynb"
    path.write_text(json.dumps(nb))
    result = grade(path, assignment)
    assert result.status == GRADED
    failed = [t for t in result.tests if not t.passed]
    assert failed and all("is not allowed here" in t.message for t in failed)
    assert all("MyReLU" in t.name or "grad_fn" in t.name or "shape" in t.name for t in failed)
    assert 0 < result.score < result.max_score
    assert any("the tests of `MyReLU`" in m for m in result.messages)
