"""Public tests: run them with `grader check`."""

import pytest
import torch

from grader.checks import expect_number, expect_tensor
from grader.errors import StudentCodeError


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
def test_jacobian_material(student, explain, check_jacobian):
    """jacobian on the material's y and x = [[2., 3.]]: J = [[4., 3.], [2., 6.]]"""
    # The graph is built in your code's process: y0 = x0^2 + 3 x1, y1 = x1^2 + 2 x0.
    x = student.put(torch.tensor([[2.0, 3.0]], requires_grad=True))
    y = x.pow.keep(2).add.keep(x.flip.keep(1).mul.keep(torch.tensor([[3.0, 2.0]])))
    try:
        got = student.jacobian(y, x)
    except StudentCodeError as exc:
        explain(exc, "jacobian")
    check_jacobian(got, torch.tensor([[4.0, 3.0], [2.0, 6.0]]))


@pytest.mark.points(1)
def test_two_layer_autograd_small(student, explain):
    """train_two_layer_autograd on a small fixed problem: losses, in-place updates, gradients"""
    gen = torch.Generator().manual_seed(2024)
    x, y = torch.randn(8, 10, generator=gen), torch.randn(8, 3, generator=gen)
    w1, w2 = torch.randn(10, 6, generator=gen), torch.randn(6, 3, generator=gen)
    # The weights live in your code's process, so their updates and .grad can be read back.
    h1 = student.put(w1.clone().requires_grad_(True))
    h2 = student.put(w2.clone().requires_grad_(True))
    try:
        losses = student.train_two_layer_autograd(x, y, h1, h2, learning_rate=1e-3, steps=10)
    except StudentCodeError as exc:
        explain(exc, "training")
    assert isinstance(losses, (list, tuple)) and len(losses) == 10, (
        "train_two_layer_autograd should return the list of losses, one a step (10)")
    assert all(isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)
               for v in losses), "each loss should be a number: record loss.item()"
    losses = [float(v) for v in losses]
    first = float((x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum())
    expect_number(losses[0], first, name="the first loss (of the starting weights)", rtol=1e-5)
    assert losses[-1] < losses[0], "the loss should go down during training"
    assert not torch.equal(h1.detach(), w1), (
        "the caller's w1 did not change: update it in place, w1 -= learning_rate * w1.grad "
        "inside torch.no_grad()")
    assert h1.grad.get() is not None and h2.grad.get() is not None, (
        "w1.grad is None after training: the gradients should come from loss.backward() and be "
        "zeroed with w1.grad.zero_()")
