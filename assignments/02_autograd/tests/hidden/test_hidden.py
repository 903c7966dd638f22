"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch

from grader.checks import expect_array, expect_number, expect_tensor, scale_between
from grader.errors import StudentCodeError


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
        c = scale_between(grad.detach().double().numpy(), expected.double().numpy())
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
    if isinstance(got.get("numpy"), torch.Tensor):
        raise AssertionError("\"numpy\" should be a NumPy array, but your code returned a torch "
                             "tensor: x.detach().numpy() gives the array (sharing x's memory)")
    expect_array(got.get("numpy"), x.numpy(), name="x as a NumPy array")


@pytest.mark.points(2)
@pytest.mark.visibility("after_due_date")
def test_fit_quadratic(student, reference, quadratic_problem):
    """fit_quadratic: gradient descent with the gradients zeroed every step"""
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


def _secret_graph(student, gen):
    """x (1, n), a leaf that requires grad, and y = tanh(x) A + (x * x) B of shape (1, m), built
    in the sandbox from secret A, B; the Jacobian dy/dx, (m, n), computed here; and x's value."""
    n, m = (int(v) for v in torch.randint(2, 5, (2,), generator=gen))
    x = torch.randn(1, n, generator=gen)
    A, B = torch.randn(n, m, generator=gen), torch.randn(n, m, generator=gen)
    xh = student.put(x.clone().requires_grad_(True))
    yh = xh.tanh.keep().mm.keep(A).add.keep(xh.pow.keep(2).mm.keep(B))
    J = A.T * (1 - torch.tanh(x) ** 2) + B.T * (2 * x)
    return yh, xh, J, x


@pytest.mark.points(2)
@pytest.mark.visibility("after_due_date")
def test_jacobian_generated(student, gen, explain, check_jacobian):
    """jacobian: one vector-Jacobian product a row, through a graph you do not see"""
    y, x, J, x_value = _secret_graph(student, gen)
    try:
        got = student.jacobian(y, x)
    except StudentCodeError as exc:
        explain(exc, "jacobian")
    x0, x1 = (float(v) for v in x_value[0, :2])
    by_hand = torch.tensor([[2 * x0, 3.0], [2.0, 2 * x1]])
    if (isinstance(got, torch.Tensor) and got.shape == (2, 2) and got.is_floating_point()
            and torch.allclose(got.detach().float(), by_hand, atol=1e-5)):
        raise AssertionError("your J is the material's Jacobian written out by hand, but this y "
                             "is another function of x: compute J from y's graph, one "
                             "vector-Jacobian product y.backward(v) a row")
    check_jacobian(got, J)


def _two_layer(x, y, w1, w2, lr, steps, *, zero_grad):
    """The material's loop; zero_grad=False shows the classic slip (gradients accumulate)."""
    w1, w2 = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
    for _ in range(steps):
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            w1 -= lr * w1.grad
            w2 -= lr * w2.grad
            if zero_grad:
                w1.grad.zero_()
                w2.grad.zero_()
    return w1.detach(), w2.detach()


@pytest.mark.points(2)
def test_two_layer_autograd_generated(student, reference, gen, explain):
    """train_two_layer_autograd: loss.backward(), in-place updates under no_grad, zeroed gradients"""
    n, d_in, h, d_out = 16, int(torch.randint(20, 41, (1,), generator=gen)), 12, 4
    x, y = torch.randn(n, d_in, generator=gen), torch.randn(n, d_out, generator=gen)
    w1, w2 = torch.randn(d_in, h, generator=gen), torch.randn(h, d_out, generator=gen)
    lr, steps = 1e-4, 8
    # The weights live in your code's process, so their updates and .grad can be read back.
    h1 = student.put(w1.clone().requires_grad_(True))
    h2 = student.put(w2.clone().requires_grad_(True))
    call = student.train_two_layer_autograd.begin(x, y, h1, h2, learning_rate=lr, steps=steps)
    r1, r2 = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
    expected = reference.train_two_layer_autograd(x, y, r1, r2, learning_rate=lr, steps=steps)
    try:
        losses = call.result()
    except StudentCodeError as exc:
        explain(exc, "training")
    assert isinstance(losses, (list, tuple)) and len(losses) == steps, (
        f"train_two_layer_autograd should return the list of losses, one a step ({steps})")
    assert all(isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)
               for v in losses), "each loss should be a number: record loss.item()"
    losses = torch.tensor([float(v) for v in losses], dtype=torch.float64)
    got_w1, got_w2 = h1.detach(), h2.detach()
    if torch.equal(got_w1, w1) and torch.equal(got_w2, w2):
        raise AssertionError("the caller's w1 and w2 did not change: update them in place, "
                             "w1 -= learning_rate * w1.grad inside torch.no_grad(); a copy "
                             "(w1.clone()) or a new tensor (w1 = w1 - ...) leaves them as they were")
    if h1.grad.get() is None or h2.grad.get() is None:
        raise AssertionError("w1.grad is None after training, so the gradients did not come from "
                             "loss.backward() through w1 and w2 (or were set to None): this is "
                             "the material's second way, loss.backward() computes them, and "
                             "w1.grad.zero_() zeroes them after each update")
    acc_w1, _ = _two_layer(x, y, w1, w2, lr, steps, zero_grad=False)
    if torch.allclose(got_w1, acc_w1, rtol=1e-4, atol=1e-5):
        raise AssertionError("you forgot to zero the gradients between steps, so they "
                             "accumulated: backward adds into w1.grad, so call w1.grad.zero_() "
                             "and w2.grad.zero_() after each update")
    exp = torch.tensor(expected, dtype=torch.float64)
    final = float((x.mm(r1).clamp(min=0).mm(r2) - y).pow(2).sum())
    after = torch.cat([exp[1:], torch.tensor([final], dtype=torch.float64)])
    if torch.allclose(losses, after, rtol=1e-4):
        raise AssertionError("your losses are measured after each update: record loss.item() of "
                             "the forward pass that the update then uses, before updating")
    expect_tensor(got_w1, r1.detach(), name="trained w1", rtol=1e-4, atol=1e-5)
    expect_tensor(got_w2, r2.detach(), name="trained w2", rtol=1e-4, atol=1e-5)
    expect_tensor(losses, exp, name="losses", rtol=1e-4, atol=1e-3)
