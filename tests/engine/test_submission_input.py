"""Bad input gets a clear message and a zero, never a crash."""

from __future__ import annotations

import json
import os
import socket
import threading

import nbformat
import pytest

from grader.engine import grade
from grader.errors import InvalidSubmission
from grader.notebooks import module_to_notebook
from grader.results import GRADED, REJECTED
from grader.submission import (
    MAX_CELL_CHARS,
    MAX_CELLS,
    MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
    MAX_OUTPUTS,
    MAX_SOURCE_CHARS,
    NOTEBOOK,
    load_submission,
    read_submission,
    syntax_error,
)

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
    # The cells run in the job's own process (grader.guest.kernel): it ended.
    assert any("ended its own process" in m and "exit status 3" in m for m in result.messages), \
        result.messages


def _nb(cells: list[dict], **top) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": cells, **top},
                      separators=(",", ":")).encode()


def _code(source: str = "x = 1", outputs: list | None = None) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "source": source,
            "outputs": outputs or []}


STREAM = {"output_type": "stream", "name": "stdout", "text": "ok\n"}


@pytest.mark.parametrize("data, message", [
    (_nb([{"cell_type": "raw", "metadata": {}, "source": ""}] * (MAX_CELLS + 1)),
     f"has {MAX_CELLS + 1:,} cells; the limit is {MAX_CELLS:,}"),
    (_nb([_code(outputs=[STREAM] * (MAX_OUTPUTS + 1))]), f"holds {MAX_OUTPUTS + 1:,} outputs"),
    (_nb([_code(outputs=[{**STREAM, "text": ["a\n"] * MAX_JSON_VALUES}])]),
     f"more than {MAX_JSON_VALUES:,} values"),
    (_nb([_code()], metadata={"x": json.loads("[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5))}),
     f"nests more than {MAX_JSON_DEPTH} levels deep"),
    (b'{"cells": ' + b"[" * 100_000, "nested too deeply for the grader to read"),  # nor closed
    (b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply for the grader to read"),
    (_nb([_code("x = 1\n" * (MAX_CELL_CHARS // 6 + 1))]),
     f"cell 1 of your notebook is {(MAX_CELL_CHARS // 6 + 1) * 6:,} characters"),
    (_nb([_code("x = 1\n" * (MAX_CELL_CHARS // 12))] * (MAX_SOURCE_CHARS // (MAX_CELL_CHARS // 2) + 1)),
     f"the limit is {MAX_SOURCE_CHARS:,}"),
    (_nb([_code("x = '\0'")]), "cell 1 of your notebook contains a null byte"),
    (_nb([_code("x = " + "(" * 300 + ")" * 300)]), "nested too deeply for the grader to read (cell 1)"),
], ids=["cells", "outputs", "json-values", "json-depth", "unclosed-deep-json", "json-recursion", "cell-size",
        "code-size", "null-byte", "nested-code"])
def test_notebooks_over_a_bound_are_refused_before_nbformat(data, message):
    with pytest.raises(InvalidSubmission, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_submission("work.ipynb", data)


@pytest.mark.parametrize("data, message", [
    (b"x = 1\n" * (MAX_SOURCE_CHARS // 6 + 1), f"the limit is {MAX_SOURCE_CHARS:,}"),
    (b"x = 1\n\0\n", r"null byte \(line 2\)"),
    (b"# -*- coding: latin-1 -*-\nx = 1\n", "declares the encoding 'latin-1'"),
    (b"#!/usr/bin/env python\n# vim: set fileencoding=utf-7 :\nx = 1\n", "declares the encoding 'utf-7'"),
    (b"x = " + b"-" * 100_000 + b"1\n", "nested too deeply for the grader to read"),
    (b"x = " + b"[" * 1000 + b"]" * 1000 + b"\n", "nested too deeply for the grader to read"),
], ids=["size", "null-byte", "latin-1", "utf-7", "minus", "lists"])
def test_modules_over_a_bound_or_read_differently_by_python_are_refused(data, message):
    with pytest.raises(InvalidSubmission, match=message):
        read_submission("work.py", data)


def test_modules_python_reads_as_we_do_are_accepted():
    for data in (b"\xef\xbb\xbfx = 1\n", b"# -*- coding: utf-8 -*-\nx = 1\n", b"x = 1\n# coding: latin-1\n",
                 b"def broken(:\n"):
        assert read_submission("work.py", data).cells  # a syntax error is graded, not refused
    assert syntax_error("x = " + "-" * 100_000 + "1") is not None  # a message, not a MemoryError


def test_a_notebook_keeps_its_cells_and_bytes():
    data = _nb([_code("%time import numpy"), {"cell_type": "markdown", "metadata": {}, "source": "# hi"},
                _code(["def f(x):\n", "    return x\n"])])
    sub = read_submission("work.ipynb", data)
    assert sub.kind == NOTEBOOK and sub.data == data
    assert sub.cells == ("%time import numpy", "def f(x):\n    return x\n")
    assert sub.source.cells == sub.cells and "def f(x)" in sub.source


def test_load_submission_reads_the_file_once_and_returns_its_bytes(tmp_path):
    path = tmp_path / "work.py"
    path.write_bytes(b"def answer(x):\n    return 2 * x\n")
    sub = load_submission(path)
    assert sub.data == path.read_bytes() and sub.filename == "work.py"
    path.write_bytes(b"x" * (6 << 20))
    with pytest.raises(InvalidSubmission, match="the limit is 5.2 MB"):
        load_submission(path)
    with pytest.raises(InvalidSubmission, match="no such file"):
        load_submission(tmp_path / "missing.py")


def test_load_submission_refuses_what_is_not_a_regular_file(tmp_path):
    target = tmp_path / "solution.py"
    target.write_text("def answer(x):\n    return 2 * x\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    hard = tmp_path / "hard.py"
    os.link(target, hard)
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    cases = [(link, "link.py is a symbolic link"), (hard, "hard.py has other hard links"),
             (fifo, "fifo.py is a named pipe"), (folder, "folder.ipynb is a folder")]
    done: list[str] = []

    def refuse_all() -> None:
        for path, message in cases:
            with pytest.raises(InvalidSubmission, match=message):
                load_submission(path)
            done.append(path.name)

    reader = threading.Thread(target=refuse_all, daemon=True)  # a FIFO that blocked would hang here
    reader.start()
    reader.join(10)
    assert done == [p.name for p, _ in cases]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock.py"))
        with pytest.raises(InvalidSubmission, match="a socket"):
            load_submission(tmp_path / "sock.py")
    with pytest.raises(InvalidSubmission, match="null is a device"):
        load_submission("/dev/null")


def test_a_link_swapped_in_after_the_check_is_still_not_followed(tmp_path, monkeypatch):
    """The lstat and the open are two steps: O_NOFOLLOW and fstat refuse a link swapped between."""
    import grader.submission as submission

    target = tmp_path / "solution.py"
    target.write_text("SECRET = 1\n")
    path = tmp_path / "work.py"
    path.write_text("x = 1\n")
    real_open = submission._open_no_follow

    def swap_then_open(p):
        path.unlink()
        path.symlink_to(target)
        return real_open(p)

    monkeypatch.setattr(submission, "_open_no_follow", swap_then_open)
    with pytest.raises(InvalidSubmission, match="symbolic link"):
        load_submission(path)
