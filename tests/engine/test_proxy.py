"""The `student` proxy against the real sandbox: data comes back, handles stay behind."""

from __future__ import annotations

import shutil

import pytest
import torch

from grader.assignment import load_assignment
from grader.engine import grade
from grader.errors import GradingTimeout, StudentCodeError
from grader.proxy import Connection, Pending, RemoteObject, StudentProxy
from grader.sandbox.layers import probe

SQUARES = """
import torch

def square(x):
    return x * x
"""


def test_keep_leaves_a_graph_in_the_sandbox_for_the_trusted_side_to_drive(
        probe_assignment, write_submission):
    """`keep` returns a handle on a tensor, whose backward and grad_fn the test then reaches."""
    conn = Connection(write_submission(SQUARES), "module", probe_assignment.limits, probe())
    student = StudentProxy(conn)
    try:
        x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
        plain = student.square(x)
        assert type(plain) is torch.Tensor and torch.equal(plain, x * x)

        leaf = student.put(x.clone().requires_grad_())
        y = student.square.keep(leaf)
        assert isinstance(y, RemoteObject) and y.type_name == "Tensor"
        y.sum.keep().backward()
        assert torch.equal(leaf.grad.get(), 2 * x)
        node = y.grad_fn.get()
        assert isinstance(node, RemoteObject) and node.type_name == "MulBackward0"
        assert torch.equal(y.detach(), x * x)
    finally:
        conn.close()


WORKERS = """
import time

def double(x):
    return 2 * x

def fails():
    raise ValueError("no good")

def spin():
    while True:
        pass
"""


def test_begin_runs_the_call_while_the_test_goes_on(probe_assignment, write_submission):
    """begin() returns at once; result() gives the value or raises as a plain call would."""
    conn = Connection(write_submission(WORKERS), "module", probe_assignment.limits, probe())
    student = StudentProxy(conn)
    try:
        first, second = student.double.begin(21), None
        assert isinstance(first, Pending)
        second = student.double(5)  # a request in flight is read first, and kept
        assert (first.result(), second, first.result()) == (42, 10, 42)
        failing = student.fails.begin()
        with pytest.raises(StudentCodeError, match="ValueError: no good"):
            failing.result()
    finally:
        conn.close()


def test_begin_of_an_endless_call_times_out_and_the_next_call_restarts(probe_assignment,
                                                                     write_submission):
    conn = Connection(write_submission(WORKERS), "module", probe_assignment.limits, probe())
    student = StudentProxy(conn)
    try:
        pending = student.spin.begin()
        with pytest.raises(GradingTimeout, match="time limit while calling spin"):
            pending.result()
        assert student.double(3) == 6 and conn.restarts == 1
    finally:
        conn.close()


UNREAD_BEGIN_TESTS = '''
import pytest


@pytest.mark.points(1)
def test_begins_and_walks_away(student):
    """begins an endless call and never reads it"""
    student.spin.begin()


@pytest.mark.points(1)
@pytest.mark.timeout(2)
def test_next(student):
    """the next test gets its own time"""
    assert student.double(21) == 42
'''


def test_an_unread_begin_does_not_eat_the_next_tests_time(probe_assignment, tmp_path,
                                                        write_submission):
    """The call in flight is settled before the next test's clock starts."""
    folder = tmp_path / "unread"
    shutil.copytree(probe_assignment.path, folder)
    (folder / "tests" / "public" / "test_public.py").write_text(UNREAD_BEGIN_TESTS)
    result = grade(write_submission(WORKERS), load_assignment(folder), suites=("public",))
    assert [t.passed for t in result.tests] == [True, True], [t.message for t in result.tests]
