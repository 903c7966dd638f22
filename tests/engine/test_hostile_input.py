"""Hostile input before anything runs: forbidden APIs by other routes, crashing and costly files, links.

Each case is graded end to end in service mode against a real assignment (`grade_hostile`:
within a deadline, nothing left behind) and asserts the exact score and status. Issue 13:
item 1 (static checks read every notebook cell, magics included, and follow aliases), item 4
(bounded trusted work before the sandbox), item 5 (no crash on hostile source) and item 7
(a submission is read without following links).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from grader.assignment import find
from grader.results import GRADED, REJECTED

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

QUICK_S = 30  # a refusal before the sandbox: no process starts


def _reference(slug: str, *replacements: tuple[str, str]) -> str:
    source = find(slug).solution.read_text()
    for old, new in replacements:
        assert old in source, f"the reference of {slug} no longer holds {old!r}"
        source = source.replace(old, new, 1)
    return source


def _module(tmp_path: Path, source: str, name: str = "submission.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def _notebook(tmp_path: Path, cells: list[str], name: str = "work.ipynb") -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": c} for i, c in enumerate(cells)]}
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return path


def _rejected(result, slug: str, *words: str) -> None:
    """REJECTED with a zero out of the assignment's points, and each word in the messages."""
    text = "\n".join(result.messages)
    assert result.status == REJECTED, (result.status, result.score, text[:2000])
    assert result.score == 0 and result.max_score == find(slug).points
    assert not result.tests
    for word in words:
        assert word in text, (word, text[:2000])


def _blocked(result, slug: str, *words: str) -> None:
    """Graded, and the forbidden use cost exactly the tests that reach its function (issue 9 #8).

    The rest of each case is the reference, so every other test passes.
    """
    text = "\n".join(result.messages)
    assert result.status == GRADED, (result.status, text[:2000])
    for word in words:
        assert word in text, (word, text[:2000])
    assert "score zero)" in text, text[:2000]
    failed = [t for t in result.tests if not t.passed]
    assert failed and all("is not allowed here" in t.message for t in failed), \
        [(t.name, t.message[:200]) for t in failed]
    assert 0 < result.score < result.max_score == find(slug).points


CONV_RETURN = "    return out.reshape(n, c_out, out_h, out_w)\n"
STEP = "                    param -= self.lr * param.grad\n"
MSE = "        diff = outputs - targets\n        return (diff ** 2).mean()\n"
RELU_BACKWARD = ("        grad_input = grad_output.clone()\n        grad_input[x < 0] = 0\n"
                 "        return grad_input\n")
JACOBIAN = "    m, n = y.shape[1], x.shape[1]\n"
F_CONV = "calling `torch.nn.functional.conv2d` is not allowed here"

# (id, assignment, submission source, words the rejection says)
MODULE_CASES = [
    ("07_namespace_alias", "07_convolution",
     _reference("07_convolution", (CONV_RETURN, "    g = torch.nn.functional\n"
                                   "    return g.conv2d(x, weight, bias, stride, padding)\n")),
     [F_CONV]),
    ("07_function_alias", "07_convolution",
     _reference("07_convolution", (CONV_RETURN, "    f = F.conv2d\n"
                                   "    return f(x, weight, bias, stride, padding)\n")),
     ["`torch.nn.functional.conv2d` is not allowed here", F_CONV]),
    ("07_partial_names_it", "07_convolution",
     _reference("07_convolution", (CONV_RETURN, "    import functools\n"
                                   "    return functools.partial(F.conv2d, stride=stride)(x, weight)\n")),
     ["`torch.nn.functional.conv2d` is not allowed here"]),
    ("07_import_module_literal", "07_convolution",
     _reference("07_convolution", (CONV_RETURN, "    import importlib\n"
                                   "    G = importlib.import_module('torch.nn.functional')\n"
                                   "    return G.conv2d(x, weight, bias, stride, padding)\n")),
     [F_CONV]),
    ("07_exec_of_a_literal", "07_convolution",
     _reference("07_convolution", (CONV_RETURN, "    exec('global y; y = torch.conv2d(x, weight)')\n"
                                   "    return y\n")),
     ["calling `torch.conv2d` is not allowed here"]),
    ("05_sgd_by_getattr", "05_nn_modules",
     _reference("05_nn_modules", (STEP, "                    pass\n"),
                ("        self.lr = lr\n", "        self.lr = lr\n"
                 "        self.inner = getattr(torch.optim, 'SGD')(self.params, lr=lr)\n")),
     ["calling `torch.optim.SGD` is not allowed here"]),
    ("05_mse_by_getattr", "05_nn_modules",
     _reference("05_nn_modules", (MSE, "        return getattr(nn, 'MSELoss')()(outputs, targets)\n")),
     ["calling `torch.nn.MSELoss` is not allowed here"]),
    ("04_autograd_grad_in_a_method", "04_custom_functions",
     _reference("04_custom_functions", ("import torch\n",
                                        "import torch\nfrom torch import autograd as ag\n"),
                (RELU_BACKWARD, "        derivative = ag.grad\n        with torch.enable_grad():\n"
                 "            x = x.detach().requires_grad_(True)\n"
                 "            return derivative(x.clamp(min=0), x, grad_output)[0]\n")),
     ["calling `torch.autograd.grad` is not allowed here"]),
    ("02_jacobian_by_getattr", "02_autograd",
     _reference("02_autograd", (JACOBIAN, "    f = lambda v: v\n"
                                "    return getattr(torch.autograd.functional, 'jacobian')(f, x)\n"
                                + JACOBIAN)),
     ["calling `torch.autograd.functional.jacobian` is not allowed here"]),
    ("02_jacobian_module_alias", "02_autograd",
     _reference("02_autograd", ("import torch\n",
                                "import torch\nimport torch.autograd.functional as taf\n"),
                (JACOBIAN, "    jac = taf.jacobian\n    return jac(lambda v: v, x)\n" + JACOBIAN)),
     ["calling `torch.autograd.functional.jacobian` is not allowed here"]),
    ("03_importlib", "03_numpy_backprop",
     _reference("03_numpy_backprop", ("import numpy as np\n", "import numpy as np\nimport importlib\n"
                                      "ag = importlib.import_module('torch.autograd')\n")),
     ["importing importlib is not allowed here", "importing torch.autograd is not allowed here"]),
    ("03_pkgutil_and_sys_modules", "03_numpy_backprop",
     _reference("03_numpy_backprop", ("import numpy as np\n", "import numpy as np\nimport sys\n"
                                      "import pkgutil\nt = sys.modules.get('tor' 'ch')\n")),
     ["importing pkgutil is not allowed here", "`sys.modules.get` is not allowed here"]),
    ("03_compile_with_a_spoofed_name", "03_numpy_backprop",
     _reference("03_numpy_backprop", ("import numpy as np\n", "import numpy as np\n"
                                      "build = compile\n"
                                      "code = build(open(__file__).read(), 'solution.py', 'exec')\n")),
     ["`compile` is not allowed here", "dynamic imports"]),
    ("03_shell_from_python", "03_numpy_backprop",
     _reference("03_numpy_backprop", ("import numpy as np\n", "import numpy as np\nimport os\n"
                                      "os.system('python3 -c \"import torch\"')\n")),
     ["`os.system` is not allowed here", "starting other programs"]),
]

WHOLE_FILE = {"03_importlib", "03_pkgutil_and_sys_modules", "03_compile_with_a_spoofed_name",
              "03_shell_from_python"}


@pytest.mark.parametrize("case", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_forbidden_api_by_an_alias_is_refused(case, tmp_path, grade_hostile):
    name, slug, source, words = case
    if name in WHOLE_FILE:  # module-level code: it would run as the file loads
        _rejected(grade_hostile(_module(tmp_path, source), find(slug), deadline_s=QUICK_S),
                  slug, *words)
    else:  # inside one function: that function's tests score zero, the others count
        _blocked(grade_hostile(_module(tmp_path, source), find(slug), deadline_s=120), slug, *words)


TORCH = "importing torch is not allowed here"
NOTEBOOK_CASES = [
    ("line_magic", ["%time import torch\n"], ["cell 2, line 1: " + TORCH]),
    ("timeit_with_options", ["x = 1\n%timeit -n 1 -r 1 import torch.autograd\n"],
     ["cell 2, line 2: importing torch"]),
    ("cell_magic", ["%%time\nimport numpy\nimport torch\n"], ["cell 2, line 3: " + TORCH]),
    ("capture_around_a_magic", ["%%capture out\n%prun -q import torch\n"], ["cell 2, line 2: " + TORCH]),
    ("syntax_error_elsewhere", ["def broken(:\n    pass\n", "import torch\n"], ["cell 3, line 1: " + TORCH]),
    ("shell_escape", ["!python3 -c 'import torch'\n"], ["shell command", "starting other programs"]),
    ("shell_assignment", ["out = !pip install torch\n"], ["shell command `!pip install torch`"]),
    ("bash_cell", ["%%bash\npython3 -c 'import torch'\n"], ["shell magic `%bash`"]),
    ("script_python_cell", ["%%script python3\nimport torch\n"], ["shell magic `%script python3`", TORCH]),
    ("run_magic", ["%run helper.py\n"], ["the magic `%run` is not allowed here"]),
    ("load_ext", ["%load_ext torch\n"], [TORCH]),
    ("unknown_magic", ["%alias_magic t time\n%t import torch\n"], ["`%alias_magic`", "`%t`"]),
    ("help_syntax", ["import numpy as np\nnp.linalg?\n", "torch.autograd?\n"], ["`torch.autograd`"]),
    ("run_cell_literal", ["get_ipython().run_cell('import torch')\n"], [TORCH]),
]


@pytest.mark.parametrize("case", NOTEBOOK_CASES, ids=[c[0] for c in NOTEBOOK_CASES])
def test_every_notebook_cell_is_checked_magics_included(case, tmp_path, grade_hostile):
    """03 forbids torch: the reference as a notebook, plus cells that reach it through IPython."""
    _, cells, words = case
    slug = "03_numpy_backprop"
    path = _notebook(tmp_path, [find(slug).solution.read_text(), *cells])
    _rejected(grade_hostile(path, find(slug), deadline_s=QUICK_S), slug, *words)


def test_honest_magics_and_a_broken_scratch_cell_still_get_full_marks(tmp_path, grade_hostile):
    """The control: what honest students put in notebooks is neither refused nor scored down."""
    slug = "03_numpy_backprop"
    cells = ["%matplotlib inline\nimport numpy as np\n", find(slug).solution.read_text(),
             "%time y = forward(np.ones((2, 1000)), np.ones((1000, 100)), np.ones((100, 10)))\n",
             "%%timeit -n 1 -r 1\nloss(np.zeros(3), np.ones(3))\n", "np.maximum?\n",
             "def scratch(:\n    unfinished\n"]
    result = grade_hostile(_notebook(tmp_path, cells), find(slug), deadline_s=300)
    assert result.status == GRADED, result.messages
    assert result.score == result.max_score == find(slug).points, [
        (t.name, t.message[:200]) for t in result.tests if not t.passed]


NESTED = "your file is nested too deeply for the grader to read"
DEEP = 100_000
DEEP_SOURCES = [
    ("parentheses", "x = " + "(" * DEEP + "1" + ")" * DEEP + "\n"),
    ("unary_minus", "x = " + "-" * DEEP + "1\n"),
    ("list_display", "x = " + "[" * DEEP + "]" * DEEP + "\n"),
    ("attribute_chain", "import numpy as np\nx = np" + ".T" * DEEP + "\n"),
    ("binary_chain", "x = 1" + " + 1" * (DEEP // 2) + "\n"),  # 200 KB: under the source limit
    ("call_chain", "f = print\nx = f" + "()" * DEEP + "\n"),
    ("nested_blocks", "".join("    " * i + "if True:\n" for i in range(120)) + "    " * 120 + "pass\n"),
]


@pytest.mark.parametrize("slug", ["01_tensors", "03_numpy_backprop"])
@pytest.mark.parametrize("name, source", DEEP_SOURCES, ids=[c[0] for c in DEEP_SOURCES])
def test_deeply_nested_source_is_rejected_not_a_crash(name, source, slug, tmp_path, grade_hostile):
    """01 forbids nothing (the checks never run) and 03 forbids torch: both refuse it, clearly."""
    result = grade_hostile(_module(tmp_path, _reference(slug) + source), find(slug), deadline_s=QUICK_S)
    _rejected(result, slug, NESTED, "intermediate variables")


def test_deep_code_in_a_notebook_cell_and_in_a_magic(tmp_path, grade_hostile):
    slug = "03_numpy_backprop"
    cell = _notebook(tmp_path, [find(slug).solution.read_text(), "y = " + "-" * 90_000 + "1\n"])
    _rejected(grade_hostile(cell, find(slug), deadline_s=QUICK_S), slug, NESTED, "(cell 2)")
    magic = _notebook(tmp_path, [find(slug).solution.read_text(), "%time y = " + "-" * 90_000 + "1\n"],
                      name="magic.ipynb")
    _rejected(grade_hostile(magic, find(slug), deadline_s=QUICK_S), slug, "cell 2, line 1:", NESTED)


def test_null_bytes_are_rejected(tmp_path, grade_hostile):
    slug = "01_tensors"
    module = tmp_path / "submission.py"
    module.write_bytes(_reference(slug).encode() + b"\nx = 1\x00\n")
    _rejected(grade_hostile(module, find(slug), deadline_s=QUICK_S), slug, "null byte (line")
    notebook = _notebook(tmp_path, [_reference(slug), "x = '\x00'\n"])
    _rejected(grade_hostile(notebook, find(slug), deadline_s=QUICK_S), slug, "cell 2", "null byte")


def test_a_coding_declaration_that_python_would_decode_differently(tmp_path, grade_hostile):
    """UTF-7 hides `import torch` in a comment from a UTF-8 reader; Python reads the cookie."""
    slug = "03_numpy_backprop"
    path = _module(tmp_path, "# -*- coding: utf-7 -*-\n" + _reference(slug) + "#+AAo-import torch\n")
    _rejected(grade_hostile(path, find(slug), deadline_s=QUICK_S), slug, "declares the encoding 'utf-7'")


def test_deeply_nested_notebook_json_is_rejected(tmp_path, grade_hostile):
    slug = "01_tensors"
    nb = json.loads(_notebook(tmp_path, [_reference(slug)]).read_text())
    text = json.dumps(nb).replace('"metadata": {}', '"metadata": {"x": ' + "[" * DEEP + "]" * DEEP + "}", 1)
    path = tmp_path / "deep.ipynb"
    path.write_text(text)
    _rejected(grade_hostile(path, find(slug), deadline_s=QUICK_S), slug, NESTED, "JSON")
    moderate = tmp_path / "moderate.ipynb"  # parses, but deeper than any notebook
    moderate.write_text(json.dumps(nb).replace('"metadata": {}', '"metadata": {"x": ' + "[" * 500
                                               + "]" * 500 + "}", 1))
    _rejected(grade_hostile(moderate, find(slug), deadline_s=QUICK_S), slug, NESTED, "more than 64 levels")


@pytest.mark.parametrize("cells, words", [
    (100_000, ["100,000 cells; the limit is 1,000"]),
    (1, ["60,000 outputs; the limit is 2,000", "Clear Output"]),
], ids=["cells", "outputs"])
def test_notebooks_over_the_bounds_cost_the_grader_little(cells, words, tmp_path, grade_hostile):
    """nbformat validated 10^5 cells in about 10 s of trusted CPU before; now a refusal in well under 2 s."""
    slug = "01_tensors"
    stream = {"output_type": "stream", "name": "stdout", "text": ""}
    body = [{"cell_type": "raw", "metadata": {}, "source": ""}] * cells if cells > 1 else [
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": _reference(slug),
         "outputs": [stream] * 60_000}]
    path = tmp_path / "big.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": body},
                               separators=(",", ":")))
    assert path.stat().st_size < 5 << 20  # under the file limit: the bound is what stops it
    started = time.process_time()
    result = grade_hostile(path, find(slug), deadline_s=QUICK_S)
    assert time.process_time() - started < 2.0
    _rejected(result, slug, *words)


def test_a_symlink_to_the_solution_is_refused(tmp_path, grade_hostile):
    slug = "03_numpy_backprop"
    link = tmp_path / "submission.py"
    link.symlink_to(find(slug).solution)
    _rejected(grade_hostile(link, find(slug), deadline_s=QUICK_S), slug, "symbolic link")
    hard = tmp_path / "hard.py"
    os.link(_module(tmp_path, _reference(slug), "original.py"), hard)
    _rejected(grade_hostile(hard, find(slug), deadline_s=QUICK_S), slug, "hard links")


def test_a_fifo_a_socket_and_a_folder_are_refused_without_blocking(tmp_path, grade_hostile):
    slug = "01_tensors"
    fifo = tmp_path / "submission.py"
    os.mkfifo(fifo)  # nobody writes to it: opening it to read would block
    _rejected(grade_hostile(fifo, find(slug), deadline_s=10), slug, "named pipe")
    folder = tmp_path / "work.ipynb"
    folder.mkdir()
    _rejected(grade_hostile(folder, find(slug), deadline_s=10), slug, "a folder")
    sock_path = tmp_path / "s.py"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        _rejected(grade_hostile(sock_path, find(slug), deadline_s=10), slug, "a socket")
    _rejected(grade_hostile(Path("/dev/zero"), find(slug), deadline_s=10), slug, "a device")
