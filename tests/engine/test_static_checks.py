"""Forbidden APIs are found in the source before it runs."""

from grader.assignment import Forbidden
from grader.static_checks import find_violations

RULES = Forbidden(modules={"torch": "NumPy only"}, calls={".backward": "by hand"},
                  attributes={"torch.autograd": "by hand"})


def whats(source):
    return [v.what for v in find_violations(source, RULES)]


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
        "`importlib.import_module`"]


def test_clean_source_and_no_rules():
    assert whats("import numpy as np\nx = np.zeros(3)\n") == []
    assert find_violations("import torch\n", Forbidden()) == []
    assert find_violations("def broken(:\n", RULES) == []  # reported as a syntax error instead
