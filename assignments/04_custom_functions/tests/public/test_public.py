"""Public tests: the material's small examples, run by `grader check` on your machine too.

Each uses the material's x and, appended to it, as many values drawn from the seed, with a
drawn grad_output: answers stored for the inputs written here earn nothing.
"""

import pytest
import torch

from grader.checks import expect_tensor


def _same(a, b):
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6)


@pytest.mark.points(1)
def test_relu_material(student, run, with_drawn, grad_output_kept):
    """MyReLU on a small fixed x: forward is max(x, 0), backward zeroes the gradient where x < 0"""
    x, g = with_drawn(torch.tensor([[-2.0, -0.5, 1.0], [3.0, -1.5, 0.25]]), -3.0, 3.0)
    expect_tensor(student.MyReLU.apply(x), x.clamp(min=0), name="MyReLU.apply(x)")
    _, grad, facts = run("MyReLU", x, g)
    assert not _same(grad, g), ("your backward for MyReLU passes the gradient through where "
                                "x < 0: mask it with x < 0 (grad_input[x < 0] = 0)")
    expect_tensor(grad, torch.where(x < 0, 0.0, g), name="x.grad after MyReLU")
    grad_output_kept("MyReLU", facts)


@pytest.mark.points(1)
def test_softplus_material(student, run, with_drawn, grad_output_kept):
    """MySoftplus on the material's x = linspace(-6, 6, 100): log(1 + e^x), gradient sigmoid(x)"""
    x, g = with_drawn(torch.linspace(-6, 6, 100), -6.0, 6.0)
    expect_tensor(student.MySoftplus.apply(x), torch.log1p(torch.exp(x)), name="MySoftplus.apply(x)")
    _, grad, facts = run("MySoftplus", x, g)
    assert not _same(grad, torch.sigmoid(x)), (
        "your MySoftplus backward returns sigmoid(x) without multiplying by grad_output: "
        "backward must return grad_output * sigmoid(x) (the chain rule)")
    expect_tensor(grad, g * torch.sigmoid(x), name="x.grad after MySoftplus")
    grad_output_kept("MySoftplus", facts)


@pytest.mark.points(1)
def test_legendre_small(student, run, with_drawn, grad_output_kept):
    """LegendreP3 at x = -1, -0.5, 0, 0.5, 1: P3(1) = 1, P3'(0) = -1.5"""
    x, g = with_drawn(torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]), -2.0, 2.0)
    # P3 = [-1, 0.4375, 0, -0.4375, 1] on the material's five points
    expect_tensor(student.LegendreP3.apply(x), 0.5 * (5 * x ** 3 - 3 * x), name="LegendreP3.apply(x)")
    _, grad, facts = run("LegendreP3", x, g)
    # P3'(x) = 1.5 (5x^2 - 1) = [6, 0.375, -1.5, 0.375, 6] there, times grad_output
    try:
        expect_tensor(grad, g * 1.5 * (5 * x ** 2 - 1), name="x.grad after LegendreP3")
    except AssertionError as exc:
        raise AssertionError("your LegendreP3 backward is off: d/dx 0.5(5x^3 - 3x) = "
                             f"1.5(5x^2 - 1), times grad_output; {exc}") from None
    grad_output_kept("LegendreP3", facts)
