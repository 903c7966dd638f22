"""Forbidden calls reached by routes the static checks cannot see: refused in the sandbox.

Each submission is the reference solution with one function rewritten to reach an API the
manifest forbids through a route no static check can follow (a name built at run time,
`vars`, `sys.modules`, `importlib`, a library helper that calls what it is handed). The
guest replaces those APIs before the submission loads (grader/guest/forbid.py); the call
fails, its use is reported, and the trusted side fails exactly the tests of that function.
Scores are exact: the honest score of the rest of the file, nothing for the function.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.assignment import find
from grader.results import GRADED

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

CONV = "    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, C_in*kH*kW, L)\n"
CONV_RETURN = "    return out.reshape(n, c_out, out_h, out_w)\n"


def _conv_via(route: str) -> list[tuple[str, str]]:
    """my_conv2d's body replaced by a forbidden conv2d reached through `route`."""
    return [(CONV_RETURN, f"    conv = {route}\n"
                          "    return conv(x, weight, bias, stride=stride, padding=padding)\n")]


MSE = "        diff = outputs - targets\n        return (diff ** 2).mean()\n"
STEP = ("        with torch.no_grad():\n            for param in self.params:\n"
        "                if param.grad is not None:\n"
        "                    param -= self.lr * param.grad\n")
JACOBIAN = "    m, n = y.shape[1], x.shape[1]\n"

# (id, assignment, replacements, exact score, a word the failing tests' message has)
CASES = [
    ("07_getattr_built_name", "07_convolution",
     _conv_via('getattr(F, "conv" + "2d")'), 6, "conv2d"),
    ("07_vars_of_module", "07_convolution",
     _conv_via('vars(torch.nn.functional)["".join(["con", "v2d"])]'), 6, "conv2d"),
    ("07_sys_modules", "07_convolution",
     _conv_via('__import__("sys").modules["torch"].__dict__["conv" + "2d"]'), 6, "conv2d"),
    ("07_importlib", "07_convolution",
     _conv_via('getattr(__import__("importlib").import_module("torch.nn." + "functional"), '
               '"conv2d")'), 6, "conv2d"),
    ("07_executor_calls_it", "07_convolution",
     [(CONV_RETURN, '    fn = getattr(F, "conv" + "2d")\n'
                    "    import concurrent.futures as cf\n"
                    "    with cf.ThreadPoolExecutor(1) as pool:\n"
                    "        return pool.submit(fn, x, weight, bias, stride, padding).result()\n")],
     6, "conv2d"),
    ("07_caught_and_fallen_back", "07_convolution",
     [(CONV, CONV + '    try:\n        getattr(F, "conv" + "2d")(x, weight)\n'
                    "    except Exception:\n        pass\n")], 6, "conv2d"),
    ("05_sgd_by_name", "05_nn_modules",
     [(STEP, '        getattr(torch.optim, "SG" + "D")(self.params, lr=self.lr).step()\n')],
     11, "SGD"),
    ("05_mse_module_by_name", "05_nn_modules",
     [(MSE, '        return getattr(nn, "MSE" + "Loss")()(outputs, targets)\n')], 11, "MSELoss"),
    ("05_mse_functional_by_name", "05_nn_modules",
     [(MSE, '        return getattr(torch.nn.functional, "mse_" + "loss")(outputs, targets)\n')],
     11, "mse_loss"),
    ("02_jacobian_by_name", "02_autograd",
     [(JACOBIAN, "    f = lambda v: v.tanh()\n"
                 '    return getattr(torch.autograd.functional, "jaco" + "bian")(f, x)'
                 ".reshape(y.shape[1], x.shape[1])\n" + JACOBIAN)], 11, "jacobian"),
    ("02_jacrev_by_name", "02_autograd",
     [(JACOBIAN, "    f = lambda v: v.tanh()\n"
                 '    return getattr(__import__("torch.func").func, "jac" + "rev")(f)(x)'
                 ".reshape(y.shape[1], x.shape[1])\n" + JACOBIAN)], 11, "jacrev"),
]


def _derive(slug: str, replacements: list[tuple[str, str]], folder: Path) -> Path:
    source = find(slug).solution.read_text()
    for old, new in replacements:
        assert old in source, f"the reference of {slug} no longer holds {old!r}"
        source = source.replace(old, new, 1)
    path = folder / "submission.py"
    path.write_text(source)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_forbidden_call_by_a_hidden_route_costs_that_function(case, tmp_path, grade_hostile):
    _, slug, replacements, score, word = case
    assignment = find(slug)
    result = grade_hostile(_derive(slug, replacements, tmp_path), assignment, deadline_s=90)
    assert result.status == GRADED, result.messages
    failed = [t for t in result.tests if not t.passed]
    assert result.score == score, [(t.name, t.message[:200]) for t in failed]
    assert failed and all("not allowed here" in t.message and word in t.message for t in failed), (
        [t.message[:300] for t in failed])


def test_use_at_load_time_is_told_and_refused(tmp_path, grade_hostile):
    """A forbidden call in module-level code is refused and said; the functions still count."""
    slug = "07_convolution"
    source = find(slug).solution.read_text() + (
        '\ntry:\n    getattr(F, "conv" + "2d")(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3))\n'
        "except Exception:\n    pass\n")
    path = tmp_path / "submission.py"
    path.write_text(source)
    result = grade_hostile(path, find(slug), deadline_s=90)
    assert result.score == 10
    assert any("while your submission was loading" in m and "conv2d" in m for m in result.messages)


def test_a_notebook_reaches_the_same_bans(tmp_path, grade_hostile):
    """The kernel of a notebook gets the same replacements before the first cell runs."""
    slug = "07_convolution"
    replaced = _derive(slug, _conv_via('getattr(F, "conv" + "2d")'), tmp_path).read_text()
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": "%time import torch\n" + replaced}]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
    path = tmp_path / "work.ipynb"
    path.write_text(json.dumps(nb))
    result = grade_hostile(path, find(slug), deadline_s=120)
    assert result.score == 6, [(t.name, t.message[:200]) for t in result.tests if not t.passed]


def test_the_library_itself_still_uses_what_the_student_may_not(tmp_path, grade_hostile):
    """nn.Conv2d calls F.conv2d inside torch: edge_conv, written as the lesson does, passes."""
    slug = "07_convolution"
    result = grade_hostile(find(slug).solution, find(slug), deadline_s=90)
    assert result.score == 10, [(t.name, t.message[:200]) for t in result.tests if not t.passed]


def test_a_reported_use_the_manifest_does_not_name_is_ignored(tmp_path, grade_hostile):
    """The guest's report is untrusted: a name outside the manifest fails nothing."""
    slug = "07_convolution"
    source = find(slug).solution.read_text() + (
        "\nimport grader.guest.forbid as _f\n_f._uses.append('torch.add')\n")
    path = tmp_path / "submission.py"
    path.write_text(source)
    assert grade_hostile(path, find(slug), deadline_s=90).score == 10
