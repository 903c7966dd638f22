"""Bad input gets a clear message and a zero, never a crash."""

from __future__ import annotations

import json

import nbformat
import pytest

from grader.engine import grade
from grader.errors import InvalidSubmission
from grader.notebooks import module_to_notebook
from grader.results import GRADED, REJECTED
from grader.submission import read_submission

GOOD = "def answer(x):\n    return 2 * x\ndef run():\n    return 'ok'\ndef echo(v):\n    return v\n"


@pytest.mark.parametrize("name, data, message", [
    ("work.ipynb", b'{"cells": [', "not valid JSON"),
    ("work.ipynb", b'{"hello": 1}', "not a Jupyter notebook"),
    ("work.ipynb", json.dumps({"cells": [], "nbformat": 3, "metadata": {}}).encode(), "nbformat 3"),
    ("work.ipynb", json.dumps({"cells": [{"cell_type": "code"}], "nbformat": 4,
                               "nbformat_minor": 5, "metadata": {}}).encode(),
     "does not follow the notebook format"),
    ("work.py", b"x = '\xff\xfe'\n", "not UTF-8"),
    ("work.py", b"", "empty"),
    ("work.py", b"x" * (6 << 20), "the limit is 5.2 MB"),
    ("work.pdf", b"%PDF-1.4", "not a .pdf file"),
    ("work.py", json.dumps({"cells": []}).encode(), "rename it to .ipynb"),
])
def test_bad_bytes_are_refused_with_a_message(name, data, message):
    with pytest.raises(InvalidSubmission, match=message):
        read_submission(name, data)


def test_rejected_submission_is_a_result(probe_assignment, tmp_path):
    path = tmp_path / "work.ipynb"
    path.write_bytes(b"not json at all")
    result = grade(path, probe_assignment, mode="local")
    assert result.status == REJECTED and result.score == 0 and result.max_score == 3
    assert "not valid JSON" in result.messages[-1]


def test_syntax_error_scores_zero_with_the_line(probe_assignment, write_submission):
    result = grade(write_submission("def answer(x):\n    return (x\n"), probe_assignment)
    assert result.status == GRADED and result.score == 0
    assert "syntax error on line" in result.messages[0]
    assert all("syntax error" in t.message for t in result.tests)


def test_exception_at_import_is_reported(probe_assignment, write_submission):
    result = grade(write_submission(GOOD + "raise ValueError('bad data path')\n"), probe_assignment)
    assert result.score == 0
    assert "ValueError: bad data path" in result.messages[0]


def test_missing_function_says_which(probe_assignment, write_submission):
    result = grade(write_submission("def answer(x):\n    return 2 * x\n"), probe_assignment)
    assert result.score == 1
    run = next(t for t in result.tests if t.name.startswith("run"))
    assert run.message == "your submission defines no function, class or variable named `run`"


def test_notebook_is_executed_and_kept(probe_assignment, tmp_path):
    nb = module_to_notebook(GOOD + "print('hello from the notebook')\n")
    nb.cells.insert(0, nbformat.v4.new_code_cell("1 / 0"))
    path = tmp_path / "work.ipynb"
    nbformat.write(nb, str(path))
    result = grade(path, probe_assignment)
    assert result.score == 3, result.messages
    assert any("cell 1 raised ZeroDivisionError" in m for m in result.messages)
    executed = nbformat.reads(result.executed_notebook, as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert any("hello from the notebook" in o.get("text", "") for o in outputs)
    assert not any("__tg_bridge__" in c.source for c in executed.cells)


def test_notebook_that_kills_its_kernel(probe_assignment, tmp_path):
    nb = module_to_notebook(GOOD + "import os\nos._exit(3)\n")
    path = tmp_path / "work.ipynb"
    nbformat.write(nb, str(path))
    result = grade(path, probe_assignment)
    assert result.score == 0
    assert any("kernel died while running cell 1" in m for m in result.messages)
