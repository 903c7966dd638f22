"""Hostile timing: a slow conv2d cannot pass 07's threshold by memoising or by spotting the timer.

Each submission is 07's slow conv (examples/loop_conv.py, one small matrix product per
output pixel: 55-80x the reference, far above the 6x limit) with a trick around it,
graded in the real sandbox. Today's way of timing stored one input in the sandbox and
called the function on it again and again, with a request that said so; each trick
below passed the threshold that way (10/10). Now every timed call gets new inputs, is
an ordinary call, and has its answer checked against the reference's: each trick loses
the timing point (9/10), and says why. The ratios here are tens of times the limit, so
no verdict flips with the machine's load; the honest conv is within about 2x.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignment import find

CONV = find("07_convolution")
SLOW = (CONV.path / "examples" / "loop_conv.py").read_text().replace(
    "def my_conv2d(", "def slow_conv2d(")
DEADLINE_S = 150
SLOW_MESSAGE = "as long as the reference"
WRONG_MESSAGE = "gave a wrong answer while it was being timed"

# A test of the harness looks for what sets a timed call apart from inside: the guest's
# request for a stored input ("stored", or a "put" just before), up the call stack.
SPOT_THE_TIMER = '''
import sys

def _timed():
    frame = sys._getframe(1)
    while frame is not None:
        for name, value in list(frame.f_locals.items()):
            if name == "request" and isinstance(value, dict) and (
                    "stored" in value or value.get("op") == "put"):
                return True
        frame = frame.f_back
    return False
'''

TRICKS = {
    # functools.lru_cache keys a tensor by its id: the same stored tensor hits every time
    "memo_by_id": '''
import functools

@functools.lru_cache(maxsize=None)
def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    return slow_conv2d(x, weight, bias, stride, padding)
''',
    "memo_by_bytes_hash": '''
import hashlib

_answers = {}

def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    digest = hashlib.sha1(x.numpy().tobytes() + weight.numpy().tobytes())
    key = (digest.hexdigest(), stride, padding)
    if key not in _answers:
        _answers[key] = slow_conv2d(x, weight, bias, stride, padding)
    return _answers[key]
''',
    "memo_by_shape_and_first_element": '''
_answers = {}

def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    key = (tuple(x.shape), float(x.flatten()[0]), tuple(weight.shape), stride, padding)
    if key not in _answers:
        _answers[key] = slow_conv2d(x, weight, bias, stride, padding)
    return _answers[key]
''',
    # the same shapes again: hand back the answer computed for the first input of them
    "memo_by_shape_only": '''
_answers = {}

def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    key = (tuple(x.shape), tuple(weight.shape), stride, padding)
    if key not in _answers:
        _answers[key] = slow_conv2d(x, weight, bias, stride, padding)
    return _answers[key]
''',
    "repeated_shapes_get_zeros": '''
import torch

_calls = {}

def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    key = (tuple(x.shape), tuple(weight.shape), stride, padding)
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] > 1:  # asked again for these shapes: it must be the timer
        n, _, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        return torch.zeros(n, c_out, (h + 2 * padding - kh) // stride + 1,
                           (w + 2 * padding - kw) // stride + 1)
    return slow_conv2d(x, weight, bias, stride, padding)
''',
    "stack_spotted_returns_last_answer": SPOT_THE_TIMER + '''
_last = {}

def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    key = (tuple(x.shape), tuple(weight.shape), stride, padding)
    if key in _last and _timed():
        return _last[key]
    _last[key] = slow_conv2d(x, weight, bias, stride, padding)
    return _last[key]
''',
    # the library's own conv, only while timed: the exercise rules it out for my_conv2d,
    # but nn.Conv2d cannot be banned (edge_conv needs it), and a static check that folds
    # names would catch F.conv2d itself before anything ran
    "stack_spotted_uses_library_conv": SPOT_THE_TIMER + '''
def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    if _timed():
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride=stride,
                         padding=padding, bias=bias is not None)
        conv.weight.data = weight
        if bias is not None:
            conv.bias.data = bias
        with torch.no_grad():
            return conv(x)
    return slow_conv2d(x, weight, bias, stride, padding)
''',
}

# unfold + matmul again, written another way: Tensor.unfold windows, patches as rows
HONEST = '''
def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    """Every window as a row, times the flattened kernels."""
    c_out, c_in, kh, kw = weight.shape
    x = F.pad(x, (padding, padding, padding, padding))
    windows = x.unfold(2, kh, stride).unfold(3, kw, stride)  # (n, c_in, oh, ow, kh, kw)
    n, _, oh, ow = windows.shape[:4]
    rows = windows.permute(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c_in * kh * kw)
    out = rows @ weight.reshape(c_out, -1).T
    if bias is not None:
        out = out + bias
    return out.reshape(n, oh, ow, c_out).permute(0, 3, 1, 2).contiguous()
'''


def _timing_test(result):
    return next(t for t in result.tests if t.name.startswith("my_conv2d is vectorised"))


def _write(tmp_path: Path, name: str, trick: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(SLOW + trick)
    return path


@pytest.mark.parametrize("name, message", [
    ("memo_by_id", SLOW_MESSAGE),
    ("memo_by_bytes_hash", SLOW_MESSAGE),
    ("memo_by_shape_and_first_element", SLOW_MESSAGE),
    ("memo_by_shape_only", WRONG_MESSAGE),
    ("repeated_shapes_get_zeros", WRONG_MESSAGE),
    ("stack_spotted_returns_last_answer", SLOW_MESSAGE),
    ("stack_spotted_uses_library_conv", SLOW_MESSAGE),
])
def test_slow_conv_cannot_forge_the_threshold(grade_hostile, tmp_path, name, message):
    result = grade_hostile(_write(tmp_path, name, TRICKS[name]), CONV, deadline_s=DEADLINE_S)
    timed = _timing_test(result)
    assert result.score == 9, [(t.name, t.points, t.message[:200]) for t in result.tests]
    assert not timed.passed and message in timed.message, timed.message
    if message == SLOW_MESSAGE:
        # far over the limit: a slow conv, whatever the load
        assert timed.timing["ratio"] > 2 * timed.timing["limit"], timed.timing
    else:
        assert "each on new inputs" in timed.message and "remembered" in timed.message


def test_honest_vectorised_conv_written_another_way_passes(grade_hostile, tmp_path):
    result = grade_hostile(_write(tmp_path, "honest", HONEST), CONV, deadline_s=DEADLINE_S)
    timed = _timing_test(result)
    assert result.score == 10, [(t.name, t.points, t.message[:200]) for t in result.tests]
    assert timed.passed and timed.timing["ratio"] <= timed.timing["limit"], timed.timing


def test_the_same_honest_conv_as_a_notebook_passes_the_threshold(grade_hostile, tmp_path):
    """Issue 9 #3: a notebook's calls go through its kernel, so its reference runs as a
    notebook too; the unfold conv measured 3.6-4.2x as a notebook before, 0.9-1.0x as a module."""
    import json

    source = _write(tmp_path, "honest", HONEST).read_text()
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None,
         "outputs": [], "source": source}]}
    path = tmp_path / "honest.ipynb"
    path.write_text(json.dumps(nb))
    result = grade_hostile(path, CONV, deadline_s=DEADLINE_S, suites=("hidden",))
    timed = _timing_test(result)
    assert timed.passed and timed.timing["ratio"] <= timed.timing["limit"], timed.timing
    assert result.score == result.max_score, [(t.name, t.message[:200]) for t in result.tests]
