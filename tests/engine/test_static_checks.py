"""Forbidden APIs are found in the source before it runs: every cell, magics and aliases included."""

from __future__ import annotations

import time

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from grader.assignment import Forbidden, discover, find
from grader.static_checks import MAX_NESTED, UnreadableCode, find_violations, ipython_to_python, read_code
from grader.submission import load_submission

RULES = Forbidden(modules={"torch": "NumPy only"}, calls={".backward": "by hand"},
                  attributes={"torch.autograd": "by hand"})
CONV = Forbidden(calls={"torch.nn.functional.conv2d": "your own", "torch.conv2d": "your own"})
SGD = Forbidden(calls={"torch.optim.SGD": "your own", "torch.nn.MSELoss": "your own"})


def whats(source, rules=RULES):
    return [v.what for v in find_violations(source, rules)]


def messages(source, rules=RULES):
    return [v.message() for v in find_violations(source, rules)]


def test_imports_calls_and_attributes_are_found_with_lines():
    found = find_violations("import numpy\nimport torch as T\ny = T.autograd.grad\nz.backward()\n",
                            RULES)
    assert [(v.line, v.what) for v in found] == [
        (2, "importing torch"), (3, "`torch.autograd`"), (4, "calling `backward`")]
    assert "NumPy only" in found[0].message()


def test_from_imports_and_dynamic_imports():
    assert whats("from torch import nn\n") == ["importing torch"]
    assert whats("from torch.autograd import grad\n") == ["importing torch.autograd"]
    assert whats("m = __import__('to' + 'rch')\n") == ["`__import__`"]
    assert whats("import importlib\nimportlib.import_module('torch')\n") == [
        "importing importlib", "`importlib.import_module`", "importing torch"]


def test_clean_source_and_no_rules():
    assert whats("import numpy as np\nx = np.zeros(3)\n") == []
    assert find_violations("import torch\n", Forbidden()) == []
    assert find_violations("def broken(:\n", RULES) == []  # reported as a syntax error instead


# --- notebooks: every cell, as IPython reads it --------------------------------------------


@pytest.mark.parametrize("cell, expected", [
    ("%time import torch\n", ["cell 1, line 1: importing torch"]),
    ("x = 1\n%timeit -n 3 -r 1 import torch\n", ["cell 1, line 2: importing torch"]),
    ("%prun -s cumulative -q import torch\n", ["cell 1, line 1: importing torch"]),
    ("%debug --breakpoint a.py:1 import torch\n", ["cell 1, line 1: importing torch"]),
    ("%%time\nx = 1\nimport torch\n", ["cell 1, line 3: importing torch"]),
    ("%%timeit -n 1 import torch\nx = 1\n", ["cell 1, line 1: importing torch"]),
    ("%%capture out\n%time import torch\n", ["cell 1, line 2: importing torch"]),
    ("for i in range(2):\n    %time import torch\n", ["cell 1, line 2: importing torch"]),
    ("x = %time import torch\n", ["cell 1, line 1: importing torch"]),
    (">>> import torch\n", ["cell 1, line 1: importing torch"]),
    ("%%writefile helper.py\nimport torch\n", ["cell 1, line 2: importing torch"]),
    ("%load_ext torch\n", ["cell 1, line 1: importing torch"]),
    ("get_ipython().run_cell('import torch')\n", ["cell 1, line 1: importing torch"]),
    ("ip = get_ipython()\nip.run_line_magic('time', 'import torch')\n", ["cell 1, line 2: importing torch"]),
    ("torch.autograd?\n", ["cell 1, line 1: `torch.autograd`"]),
])
def test_magics_are_read_as_the_python_they_run(cell, expected):
    found = messages([cell])
    assert [m.split(" is not allowed")[0] for m in found] == expected, found


@pytest.mark.parametrize("cell, what", [
    ("!pip install torch\n", "the shell command `!pip install torch`"),
    ("files = !ls\n", "the shell command `!ls`"),
    ("!!ls\n", "the shell command `!ls`"),
    ("%%bash\nls\n", "the shell magic `%bash`"),
    ("%%sh\nls\n", "the shell magic `%sh`"),
    ("%%script bash\nls\n", "the shell magic `%script bash`"),
    ("%%python3\nx = 1\n", "the shell magic `%python3`"),
    ("%system ls\n", "the shell magic `%system ls`"),
    ("%pip install numpy\n", "the shell magic `%pip install numpy`"),
    ("%sx ls\n", "the shell magic `%sx ls`"),
    ("get_ipython().system('ls')\n", "the shell command `!ls`"),
    ("%run helper.py\n", "the magic `%run`"),
    ("%load helper.py\n", "the magic `%load`"),
    ("%macro m 1\n", "the magic `%macro`"),
    ("%store -r x\n", "the magic `%store`"),
    ("%autocall 2\n", "the magic `%autocall`"),
    ("%config InteractiveShell.autocall = 2\n", "the magic `%config`"),
    ("%alias_magic t time\n", "the magic `%alias_magic`"),
    ("%frobnicate x\n", "the magic `%frobnicate`"),
    ("get_ipython().run_cell(code)\n", "`get_ipython().run_cell` with code built at run time"),
    ("get_ipython().input_transformers_post.append(f)\n", "`get_ipython().input_transformers_post.append`"),
])
def test_shell_escapes_and_unreadable_magics_are_refused_where_modules_are_forbidden(cell, what):
    assert [what] == whats([cell]), messages([cell])


def test_shell_escapes_are_allowed_where_no_module_is_forbidden_and_their_python_still_read():
    assert whats(["!pip install scipy\n", "%%bash\nls\n", "%run helper.py\n"], Forbidden()) == []
    assert whats(["!pip install scipy\n", "%%bash\nls\n"], CONV) == []
    assert whats(["%run helper.py\n"], CONV) == ["the magic `%run`"]  # it runs code no check reads
    assert whats(["%%python3\nimport torch\ntorch.conv2d(1, 2)\n"], CONV) == ["calling `torch.conv2d`"]
    assert whats(["%frob F.conv2d(x, w)\n", "import torch.nn.functional as F\n"], CONV) == [
        "calling `torch.nn.functional.conv2d`"]  # an unknown magic's argument is read as code


def test_honest_magics_are_allowed():
    cells = ["%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n", "%config InlineBackend.x = 1\n",
             "import numpy as np\n%precision 3\n%who\n", "%time y = np.zeros(3)\n", "np.zeros?\n",
             "%%timeit -n 1\nnp.ones(3)\n", "%%capture\nprint(1)\n", "%%html\n<b>x</b>\n", "%env X=1\n",
             "s = '''\n%d items\n!not a shell\n'''\n", "x = 5 % 2\ny = x != 1\n"]
    assert find_violations(cells, RULES) == []


def test_a_cell_that_does_not_parse_switches_off_nothing():
    cells = ["def broken(:\n", "import torch\n", "x = (\n", "%time import torch\n"]
    assert messages(cells) == [
        "cell 2, line 1: importing torch is not allowed here: NumPy only",
        "cell 4, line 1: importing torch is not allowed here: NumPy only"]


def test_a_submission_source_carries_its_cells(tmp_path):
    path = tmp_path / "work.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": ['
                    '{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, '
                    '"source": "def f(:"}, {"cell_type": "code", "metadata": {}, "outputs": [], '
                    '"execution_count": null, "source": "%time import torch"}]}')
    sub = load_submission(path)
    assert sub.cells == ("def f(:", "%time import torch")
    assert "%time import torch" in sub.source
    assert [v.message() for v in find_violations(sub.source, RULES)] == [
        "cell 2, line 1: importing torch is not allowed here: NumPy only"]


# --- names followed through aliases --------------------------------------------------------


@pytest.mark.parametrize("source, rules, expected", [
    ("import torch\nx = getattr(torch, 'autograd')\n", RULES, ["importing torch", "`torch.autograd`"]),
    ("import torch\ng = torch.nn.functional\ny = g.conv2d(1, 2)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import torch.nn.functional as F\nf = F.conv2d\ny = f(1, 2)\n", CONV,
     ["`torch.nn.functional.conv2d`", "calling `torch.nn.functional.conv2d`"]),
    ("import torch.nn.functional as F\nclass A:\n    def __init__(self):\n        self.g = F\n"
     "    def f(self, x):\n        return self.g.conv2d(x, x)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import torch\na, b = torch.nn, 1\ny = a.functional.conv2d(1, 2)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import torch\ndef f(x, m=torch.nn.functional):\n    return m.conv2d(x, x)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import torch\nif (g := torch.nn.functional):\n    g.conv2d(1, 2)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import torch\ny = list(map(torch.nn.functional.conv2d, [1]))\n", CONV,
     ["`torch.nn.functional.conv2d`"]),
    ("import torch\ny = torch.nn.functional.conv2d.__call__(1, 2)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import torch\ny = torch.nn.functional.__dict__['conv2d']\n", CONV, ["`torch.nn.functional.conv2d`"]),
    ("import torch\ny = vars(torch.nn.functional)['conv2d']\n", CONV, ["`torch.nn.functional.conv2d`"]),
    ("import torch, operator\ny = operator.attrgetter('nn.functional.conv2d')(torch)\n", CONV,
     ["`torch.nn.functional.conv2d`"]),
    ("import torch\ny = torch.__getattribute__('conv2d')\n", CONV, ["`torch.conv2d`"]),
    ("F = __import__('torch.nn.functional', fromlist=['x'])\nF.conv2d(1)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("import importlib\nF = importlib.import_module('torch.nn.functional')\nF.conv2d(1)\n", CONV,
     ["calling `torch.nn.functional.conv2d`"]),
    ("from torch.nn.functional import *\ny = conv2d(1, 2)\n", CONV, ["calling `torch.nn.functional.conv2d`"]),
    ("from torch.nn.functional import conv2d as c\n", CONV, ["importing `torch.nn.functional.conv2d`"]),
    ("exec('import torch; torch.conv2d(1, 2)')\n", CONV, ["calling `torch.conv2d`"]),
    ("import torch\nS = getattr(torch.optim, 'SGD')\nopt = S([], lr=1)\n", SGD,
     ["`torch.optim.SGD`", "calling `torch.optim.SGD`"]),
    ("from torch import nn\nloss = getattr(nn, 'MSELoss')()\n", SGD, ["calling `torch.nn.MSELoss`"]),
    ("import torch\nclass F(torch.autograd.Function):\n    @staticmethod\n    def backward(ctx, g):\n"
     "        return torch.autograd.grad(ctx.y, ctx.x, g)\n", Forbidden(calls={"torch.autograd.grad": "x"}),
     ["calling `torch.autograd.grad`"]),
    ("import torch\ny = getattr(x, 'backward')()\nz = type(x).backward\n", RULES,
     ["importing torch", "calling `backward`", "`backward`"]),
])
def test_aliases_getattr_and_literal_imports_are_followed(source, rules, expected):
    assert whats(source, rules) == expected, messages(source, rules)


@pytest.mark.parametrize("source, rules", [
    ("def backward(x):\n    return x\ndef train():\n    return backward(1)\n", RULES),
    ("from re import compile\nr = compile('a')\n", RULES),
    ("class MSELoss:\n    pass\nloss = MSELoss()\n", SGD),
    ("from torch.nn.functional import *\ndef conv2d(a, b):\n    return a\ny = conv2d(1, 2)\n", CONV),
    ("import torch\nimport torch.nn.functional as F\ncols = F.unfold(x, 3)\nnode = y.grad_fn\n"
     "n = getattr(node, 'saved_tensors', ())\nconv = torch.nn.Conv2d(1, 2, 3)\n", CONV),
    ("import torch\nF = torch.nn.functional\nF = None\ny = getattr(F, 'conv' + '2d')\n", CONV),
])
def test_honest_code_and_what_is_left_to_the_run_time_bans_are_not_flagged(source, rules):
    """The last: a name built from pieces is computed at run time, and the sandbox bans it."""
    assert find_violations(source, rules) == []


@pytest.mark.parametrize("source, what", [
    ("import pkgutil\n", "importing pkgutil"),
    ("import runpy\n", "importing runpy"),
    ("import ctypes\n", "importing ctypes"),
    ("import pickle\n", "importing pickle"),
    ("import subprocess\n", "importing subprocess"),
    ("from importlib import import_module\n", "importing importlib"),
    ("f = eval\n", "`eval`"),
    ("exec(code)\n", "`exec`"),
    ("c = compile(src, 'solution.py', 'exec')\n", "`compile`"),
    ("import builtins\nbuiltins.exec(x)\n", "`builtins.exec`"),
    ("import sys\nm = sys.modules\n", "`sys.modules`"),
    ("import sys\nf = sys._getframe().f_globals\n", "`.f_globals`"),
    ("import os\nos.system('ls')\n", "`os.system`"),
    ("import os\nos.execv('/bin/sh', [])\n", "`os.execv`"),
    ("from os import popen\n", "`os.popen`"),
    ("x = ().__class__.__base__.__subclasses__()\n", "`.__class__.__base__.__subclasses__`"),
    ("b = __builtins__\n", "`__builtins__`"),
])
def test_dynamic_imports_and_programs_are_refused_where_modules_are_forbidden(source, what):
    assert whats(source) == [what], messages(source)
    assert whats(source, CONV) == []


# --- bounded reading ---------------------------------------------------------------------


def test_code_too_deep_inside_a_string_or_magic_is_a_violation_not_a_crash():
    deep = "-" * 90_000 + "1"
    for cells, rules in ((["exec('x = " + deep + "')\n"], CONV), (["%time y = " + deep + "\n"], RULES)):
        found = [v.message() for v in find_violations(cells, rules)]
        assert len(found) == 1 and found[0].startswith(
            "cell 1, line 1: your file is nested too deeply for the grader to read"), found


def test_long_chains_that_parse_are_read_without_recursion():
    source = "import numpy as np\nx = np" + ".T" * 900 + "\ny = 1" + " + 1" * 900 + "\n"
    started = time.process_time()
    assert find_violations(source, RULES) == []
    assert time.process_time() - started < 2


def test_too_many_magics_or_too_much_code_in_strings_is_refused_quickly():
    started = time.process_time()
    found = find_violations(["%time x = 1\n" * (MAX_NESTED + 10)], RULES)
    assert [v.message() for v in found] == [
        f"cell 1 runs more than {MAX_NESTED} pieces of code from magics and strings (%time, exec, ...), "
        "more than the grader reads; write the code out directly"]
    assert time.process_time() - started < 5


def test_read_code_refuses_what_python_cannot_parse_for_depth():
    with pytest.raises(UnreadableCode, match="nested too deeply .*cell 2"):
        read_code(["x = 1\n", "y = " + "(" * 300 + ")" * 300 + "\n"], notebook=True)
    with pytest.raises(UnreadableCode, match="nested too deeply"):
        read_code(["y = " + "-" * 50000 + "1\n"], notebook=False)
    read_code(["def broken(:\n", "%time x\n"], notebook=True)  # a syntax error is not this


CELLS = ["%time import torch\n", "%%time\nimport torch\n", "!pip install x\n", "x = !ls\n",
         "%timeit -n 3 import torch\n", "a?\n", "torch??\n", "x = %time import torch\n",
         "for i in range(3):\n    %time import torch\n    !ls\n", "%time (\n%time x\n", "x = %time y?\n",
         "  %%time\n  import torch\n", 's = """\n%d items\n"""\n', "y = (1 +\n%time)\n", "/f x\n",
         ",f a b\n", ";f a b\n", ">>> import torch\n", "In [1]: import torch\n", "%time x \\\n  + 1\n",
         "%time x)\n    !echo\n", '%time """\n%time x \\\n', "print('a?')\n"]


@pytest.mark.parametrize("cell", CELLS)
def test_cells_are_read_as_ipython_reads_them(cell):
    assert ipython_to_python(cell) == TransformerManager().transform_cell(cell)


def test_a_cell_of_many_magics_is_read_in_one_pass():
    """IPython's TransformerManager tokenises the cell again after each magic: 400 magics ~10 s."""
    cell = "%time x = 1\n" * 400
    started = time.process_time()
    python = ipython_to_python(cell + "!ls\n")
    assert python.count("run_line_magic('time', 'x = 1')") == 400 and python.endswith("system('ls')\n")
    assert time.process_time() - started < 1


def test_the_course_itself_is_not_flagged():
    """Every reference and starter, module and notebook, passes its own assignment's checks."""
    for slug, assignment in discover().items():
        for path in (assignment.solution, assignment.starter_module, assignment.starter_notebook):
            if path.exists():
                sub = load_submission(path)
                assert find_violations(sub.source, assignment.forbidden) == [], (slug, path.name)
    assert find("03_numpy_backprop").forbidden.modules  # the rules are really there
