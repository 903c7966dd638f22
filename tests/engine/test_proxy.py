"""The `student` proxy against the real sandbox: data comes back, handles stay behind."""

from __future__ import annotations

import torch

from grader.proxy import Connection, RemoteObject, StudentProxy
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
