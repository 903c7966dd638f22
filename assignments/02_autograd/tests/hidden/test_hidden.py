"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch

from grader.checks import expect_array, expect_number, expect_tensor, scale_between


def _fit(x, y, w, b, lr, steps, *, zero_grad):
    """The material's loop; zero_grad=False shows the classic slip (gradients accumulate)."""
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    for _ in range(steps):
        loss = (0.5 * (x.pow(2).mm(w) + b - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
            if zero_grad:
                w.grad.zero_()
                b.grad.zero_()
    return w.detach(), b.detach()


@pytest.mark.points(1)
def test_quadratic_generated(student, gen):
    """quadratic_grad on a generated x: y = sum(x^2 + 2x + 1), gradient 2x + 2"""
    x = torch.randn(int(torch.randint(3, 9, (1,), generator=gen)), 2, generator=gen)
    got = student.quadratic_grad(x)
    assert isinstance(got, (tuple, list)) and len(got) == 2, "quadratic_grad returns (y, x.grad)"
    expected = 2 * x + 2
    grad = got[1]
    if isinstance(grad, torch.Tensor) and grad.shape == x.shape:
        c = scale_between(grad.double().numpy(), expected.double().numpy())
        if c is not None and np.isclose(c * x.numel(), 1.0, rtol=1e-3):
            raise AssertionError(f"your gradient is (2x + 2) / {x.numel()}: y is the sum of "
                                 "x^2 + 2x + 1, not its mean")
    expect_number(got[0], float(torch.sum(x ** 2 + 2 * x + 1)), name="y", rtol=1e-5)
    expect_tensor(grad, expected, name="x.grad")


@pytest.mark.points(1)
def test_graph_info_generated(student, scalars):
    """graph_info: requires_grad, grad_fn and the retained gradient of y"""
    x, w, b = scalars
    got = student.graph_info(x, w, b)
    assert isinstance(got, dict), "graph_info should return a dict"
    assert tuple(got.get("requires_grad") or ()) == (False, True, True, True, True), (
        f"requires_grad of (x, w, b, y, z) is {got.get('requires_grad')}; expected "
        "(False, True, True, True, True): y and z depend on w and b")
    if got.get("y_grad") is None:
        raise AssertionError("y.grad is None: y is not a leaf, so backward does not keep its "
                             "gradient; call y.retain_grad() before z.backward()")
    expect_tensor(got.get("y_grad"), torch.ones(1), name="y.grad (dz/dy)")
    expect_tensor(got.get("w_grad"), x, name="w.grad (dz/dw = x)")
    expect_tensor(got.get("b_grad"), torch.ones(1), name="b.grad (dz/db)")


@pytest.mark.points(1)
def test_backward_twice(student, scalars):
    """backward_twice: retain_graph, and gradients accumulate over two passes"""
    x, w, b = scalars
    got = student.backward_twice(x, w, b)
    assert isinstance(got, (tuple, list)) and len(got) == 2, "backward_twice returns (first, second)"
    expect_tensor(got[0], x, name="w.grad after one backward")
    if isinstance(got[1], torch.Tensor) and got[1].shape == x.shape:
        assert not torch.allclose(got[1], x), (
            "w.grad did not grow on the second pass: backward adds into .grad, so it should be "
            "2x now (did you zero it, or return the copy twice?)")
    expect_tensor(got[1], 2 * x, name="w.grad after two backward passes")


@pytest.mark.points(1)
def test_no_grad_detach(student, gen):
    """no_grad_detach: requires_grad under no_grad and after detach; detach shares memory"""
    x = torch.randn(int(torch.randint(2, 6, (1,), generator=gen)), generator=gen)
    got = student.no_grad_detach(x.clone().requires_grad_(True))
    assert isinstance(got, dict), "no_grad_detach should return a dict"
    assert got.get("under_no_grad") is False, (
        "x * 2 computed under torch.no_grad() should not require grad: nothing is recorded there")
    assert got.get("outside") is True, "x * 2 computed normally requires grad, like x"
    assert got.get("detached") is False, "x.detach() returns a tensor that does not require grad"
    assert got.get("shares_memory") is True, (
        "x.detach() shares x's memory (same data_ptr()); a clone or a copy does not")
    expect_array(got.get("numpy"), x.numpy(), name="x as a NumPy array")


@pytest.mark.points(2)
def test_fit_quadratic(student, reference, quadratic_problem):
    """fit_quadratic: 30 steps of gradient descent with the gradients zeroed every step"""
    x, y, w, b = quadratic_problem
    got = student.fit_quadratic(x, y, w, b, lr=0.01, steps=30)
    assert isinstance(got, (tuple, list)) and len(got) == 3, "fit_quadratic returns (w, b, losses)"
    exp_w, exp_b, exp_losses = reference.fit_quadratic(x, y, w, b, lr=0.01, steps=30)
    if isinstance(got[0], torch.Tensor) and got[0].shape == exp_w.shape:
        acc_w, _ = _fit(x, y, w, b, 0.01, 30, zero_grad=False)
        assert not torch.allclose(got[0], acc_w, rtol=1e-4, atol=1e-6), (
            "you forgot to zero the gradients between steps, so they accumulated: backward adds "
            "into w.grad, so call w.grad.zero_() and b.grad.zero_() after each update")
    assert isinstance(got[2], list) and len(got[2]) == 30, "losses should hold one loss a step (30)"
    expect_number(got[2][0], exp_losses[0], name="the first loss", rtol=1e-5)
    expect_tensor(got[0], exp_w, name="trained w", rtol=1e-4)
    expect_tensor(got[1], exp_b, name="trained b", rtol=1e-4)


@pytest.mark.points(2)
def test_jacobian_generated(student, gen):
    """jacobian: one vector-Jacobian product a row, on a generated x"""
    x = torch.randn(1, 2, generator=gen) * 3
    got = student.jacobian(x)
    x0, x1 = float(x[0, 0]), float(x[0, 1])
    J = torch.tensor([[2 * x0, 3.0], [2.0, 2 * x1]])
    if isinstance(got, torch.Tensor) and got.shape == (2, 2):
        g = got.double()
        if torch.allclose(g[0], J.sum(0).double(), atol=1e-5):
            raise AssertionError("the wrong vector for the VJP: y.backward(v) gives v J, so "
                                 "torch.ones gives the sum of J's rows; v = [[1, 0]] picks "
                                 "row 0 and [[0, 1]] row 1")
        if torch.allclose(g[1], (J[0] + J[1]).double(), atol=1e-5):
            raise AssertionError("the second row of J holds the first row plus the second: "
                                 "x.grad accumulated from the first backward; zero it "
                                 "(x.grad = torch.zeros_like(x.grad)) between the two passes")
        if torch.allclose(g, J.T.double(), atol=1e-5):
            raise AssertionError("your J is transposed: the VJP with v = e_i is row i of J "
                                 "(dy_i / dx_j), so store x.grad in J[i], not in a column")
    expect_tensor(got, J, name="J")
