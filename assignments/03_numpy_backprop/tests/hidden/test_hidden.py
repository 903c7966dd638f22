"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest

from grader.checks import expect_array, scale_between


def _pair(grads):
    assert isinstance(grads, (tuple, list)) and len(grads) == 2, (
        "backward should return a pair (grad_w1, grad_w2)")
    return grads


@pytest.mark.points(2)
def test_forward_generated(student, reference, problem):
    """forward matches on the material's sizes (N=64, D_in=1000, H=100, D_out=10)"""
    x, _, w1, w2 = problem
    call = student.forward.begin(x, w1, w2)  # runs while the reference computes
    expected = reference.forward(x, w1, w2)
    got = call.result()
    if isinstance(got, np.ndarray) and got.shape == expected.shape:
        no_relu = (x @ w1) @ w2
        assert not np.allclose(got, no_relu), (
            "forward skips the ReLU: apply np.maximum(h, 0) to the hidden layer before w2")
    expect_array(got, expected, name="forward(x, w1, w2)", rtol=1e-7)


@pytest.mark.points(2)
def test_grad_w2(student, reference, problem):
    """grad_w2 matches the chain rule"""
    x, y, w1, w2 = problem
    call = student.backward.begin(x, y, w1, w2)
    expected = reference.backward(x, y, w1, w2)[1]
    grad_w2 = _pair(call.result())[1]
    c = scale_between(grad_w2, expected) if isinstance(grad_w2, np.ndarray) else None
    if c is not None and np.isclose(c, 0.5, rtol=1e-3):
        raise AssertionError("your gradient for w2 is off by the factor 2 from the squared "
                             "loss: d/dy_pred of (y_pred - y)**2 is 2 * (y_pred - y)")
    if c is not None and np.isclose(c, -1, rtol=1e-3):
        raise AssertionError("your gradient for w2 has the wrong sign: the gradient points "
                             "uphill; the update subtracts it")
    expect_array(grad_w2, expected, name="grad_w2", rtol=1e-6)


@pytest.mark.points(2)
def test_grad_w1(student, reference, problem):
    """grad_w1 matches the chain rule through the ReLU"""
    x, y, w1, w2 = problem
    call = student.backward.begin(x, y, w1, w2)
    expected = reference.backward(x, y, w1, w2)[0]
    grad_w1 = _pair(call.result())[0]
    if isinstance(grad_w1, np.ndarray) and grad_w1.shape == expected.shape:
        h = x @ w1
        unmasked = x.T @ ((2.0 * (np.maximum(h, 0) @ w2 - y)) @ w2.T)
        assert not np.allclose(grad_w1, unmasked, rtol=1e-6), (
            "grad_w1 ignores the ReLU: where h < 0 the ReLU passes no gradient, so set "
            "grad_h[h < 0] = 0 before computing x.T.dot(grad_h)")
        c = scale_between(grad_w1, expected)
        if c is not None and np.isclose(c, 0.5, rtol=1e-3):
            raise AssertionError("your gradient for w1 is off by the factor 2 from the squared "
                                 "loss: d/dy_pred of (y_pred - y)**2 is 2 * (y_pred - y)")
    expect_array(grad_w1, expected, name="grad_w1", rtol=1e-6)


@pytest.mark.points(1)
def test_train_matches_reference(student, reference, problem):
    """train: 20 steps of gradient descent land on the reference's weights"""
    x, y, w1, w2 = problem
    call = student.train.begin(x, y, w1, w2, learning_rate=1e-6, steps=20)
    exp_w1, exp_w2, exp_losses = reference.train(x, y, w1, w2, learning_rate=1e-6, steps=20)
    got = call.result()
    assert isinstance(got, (tuple, list)) and len(got) == 3, "train should return (w1, w2, losses)"
    assert len(got[2]) == 20, f"losses should have one entry per step (20), not {len(got[2])}"
    assert got[2][-1] < got[2][0], "the loss should go down during training"
    expect_array(got[0], exp_w1, name="trained w1", rtol=1e-6)
    expect_array(got[1], exp_w2, name="trained w2", rtol=1e-6)
