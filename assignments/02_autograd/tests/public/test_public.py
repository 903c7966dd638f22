"""Public tests: run them with `grader check`."""

import pytest
import torch

from grader.checks import expect_number, expect_tensor


@pytest.mark.points(1)
def test_quadratic_material(student):
    """quadratic_grad on the material's x = [[1], [2], [3], [4]]: y = 54, grad = 2x + 2"""
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    got = student.quadratic_grad(x)
    assert isinstance(got, (tuple, list)) and len(got) == 2, "quadratic_grad returns (y, x.grad)"
    expect_number(got[0], 54.0, name="y")
    expect_tensor(got[1], 2 * x + 2, name="x.grad")


@pytest.mark.points(1)
def test_graph_info_material(student):
    """graph_info on the material's x = 5: leaves, grad_fn, w.grad = 5, b.grad = 1"""
    got = student.graph_info(torch.tensor([5.0]), torch.tensor([0.5]), torch.tensor([-0.2]))
    assert isinstance(got, dict), "graph_info should return a dict"
    assert tuple(got.get("is_leaf") or ()) == (True, True, True, False, False), (
        f"is_leaf of (x, w, b, y, z) is {got.get('is_leaf')}; expected "
        "(True, True, True, False, False)")
    assert tuple(got.get("grad_fn") or ()) == (None, None, None, "MulBackward0", "AddBackward0"), (
        f"grad_fn of (x, w, b, y, z) is {got.get('grad_fn')}; expected "
        "(None, None, None, 'MulBackward0', 'AddBackward0')")
    expect_tensor(got.get("w_grad"), torch.tensor([5.0]), name="w.grad")
    expect_tensor(got.get("b_grad"), torch.tensor([1.0]), name="b.grad")


@pytest.mark.points(1)
def test_jacobian_material(student):
    """jacobian on the material's x = [[2., 3.]]: J = [[4., 3.], [2., 6.]]"""
    got = student.jacobian(torch.tensor([[2.0, 3.0]]))
    expect_tensor(got, torch.tensor([[4.0, 3.0], [2.0, 6.0]]), name="J")
