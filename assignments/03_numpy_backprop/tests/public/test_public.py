"""Public tests: run them with `grader check`."""

import numpy as np
import pytest

from grader.checks import expect_array, expect_number


@pytest.mark.points(1)
def test_forward_small(student, small_problem):
    """forward: shape and values on a small fixed problem"""
    x, _, w1, w2 = small_problem
    expected = np.maximum(x @ w1, 0) @ w2
    expect_array(student.forward(x, w1, w2), expected, name="forward(x, w1, w2)")


@pytest.mark.points(1)
def test_loss_small(student):
    """loss: sum of squared errors on a small fixed example"""
    y_pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [5.0, 4.5]])
    got = student.loss(y_pred, y)
    value = got.item() if isinstance(got, (np.generic, np.ndarray)) and np.size(got) == 1 else got
    if isinstance(value, float) and np.isclose(value * y.size, 5.25):
        raise AssertionError("your loss is the mean of the squared errors; the material's loss "
                             "is their sum, np.square(y_pred - y).sum()")
    if isinstance(value, float) and np.isclose(value * 2, 5.25):
        raise AssertionError("your loss is half the sum of squared errors; the material's loss "
                             "has no 1/2 (its gradient, 2.0 * (y_pred - y), comes from the "
                             "plain sum np.square(y_pred - y).sum())")
    expect_number(got, 1.0 + 4.0 + 0.25, name="loss(y_pred, y)")


@pytest.mark.points(1)
def test_backward_shapes(student, small_problem):
    """backward: returns (grad_w1, grad_w2) with the shapes of w1 and w2"""
    x, y, w1, w2 = small_problem
    grads = student.backward(x, y, w1, w2)
    assert isinstance(grads, (tuple, list)) and len(grads) == 2, (
        "backward should return a pair (grad_w1, grad_w2)")
    for grad, w, name in zip(grads, (w1, w2), ("grad_w1", "grad_w2"), strict=True):
        assert isinstance(grad, np.ndarray), f"{name} should be a NumPy array"
        assert grad.shape == w.shape, (
            f"{name} has shape {grad.shape}; a gradient has the shape of its weight, {w.shape}")
