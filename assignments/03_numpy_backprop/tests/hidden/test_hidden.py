"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest

from grader.checks import expect_array, kind_of, scale_between
from grader.errors import StudentCodeError


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
@pytest.mark.visibility("after_due_date")
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


def _descend(backward, x, y, w1, w2, learning_rate, steps):
    """Plain gradient descent with the given backward: the weights before every step and after
    the last one (steps + 1 pairs)."""
    path = [(w1, w2)]
    for _ in range(steps):
        grads = backward(x, y, w1, w2)
        if not (isinstance(grads, (tuple, list)) and len(grads) == 2
                and all(isinstance(g, np.ndarray) and g.shape == w.shape and g.dtype.kind == "f"
                        for g, w in zip(grads, (w1, w2), strict=True))):
            return None
        w1, w2 = w1 - learning_rate * grads[0], w2 - learning_rate * grads[1]
        path.append((w1, w2))
    return path


def _close(got, expected, rtol=1e-6):
    return (isinstance(got, np.ndarray) and got.shape == expected.shape
            and bool(np.allclose(got, expected, rtol=rtol, atol=1e-8)))


def _train_result(got, steps):
    """(w1, w2, losses as float64) from what train returned, or an AssertionError."""
    assert isinstance(got, (tuple, list)) and len(got) == 3, (
        "train should return (w1, w2, losses)")
    losses = got[2]
    assert isinstance(losses, (tuple, list, np.ndarray)), (
        f"losses should be a list of numbers, but your code returned {kind_of(losses)}")
    try:
        losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise AssertionError("losses should be a list of numbers, one loss a step") from None
    assert losses.size == steps, (
        f"losses should have one entry per step ({steps}), not {losses.size}")
    return got[0], got[1], losses


def _trained_path(student, path, x, y, w1, w2, got_w1, got_w2, learning_rate, steps,
                  losses=None):
    """The path of weights train followed: the reference's gradient descent (`path`), or
    (when your backward is wrong, which its own tests count) gradient descent with your
    backward. Fails when the trained weights come from neither."""
    if _close(got_w1, path[-1][0]) and _close(got_w2, path[-1][1]):
        return path
    try:
        own = _descend(student.backward, x, y, w1, w2, learning_rate, steps)
    except StudentCodeError:
        own = None
    if own is not None and _close(got_w1, own[-1][0]) and _close(got_w2, own[-1][1]):
        return own
    if losses is not None and losses.size > 1 and not losses[-1] < losses[0]:  # or nan
        raise AssertionError("the loss went up during training: the gradient points uphill, "
                             "so the update subtracts it, w1 -= learning_rate * grad_w1")
    expect_array(got_w1, path[-1][0], name="trained w1", rtol=1e-6)
    expect_array(got_w2, path[-1][1], name="trained w2", rtol=1e-6)
    raise AssertionError("the trained weights are not those of plain gradient descent, "
                         "w -= learning_rate * grad, repeated steps times")


def _reference_curve(reference, x, y, path):
    """The reference's loss at every weights on the path."""
    return [reference.loss(reference.forward(x, w1, w2), y) for w1, w2 in path]


def _loss_curves(student, reference, x, y, path, ref_curve):
    """The loss of every weights on the path: the reference's curve, then the curves with your
    forward or your loss (so a mistake in those is counted by their own tests only)."""
    yield ref_curve
    ref_preds = [reference.forward(x, w1, w2) for w1, w2 in path]
    try:
        own_preds = [student.forward(x, w1, w2) for w1, w2 in path]
    except StudentCodeError:
        own_preds = None
    if own_preds is not None and all(isinstance(p, np.ndarray) for p in own_preds):
        yield [reference.loss(p, y) for p in own_preds]
    for preds in (ref_preds, own_preds):
        if preds is None:
            continue
        try:
            curve = [student.loss(p, y) for p in preds]
        except StudentCodeError:
            continue
        if all(isinstance(v, (int, float, np.generic)) for v in curve):
            yield [float(v) for v in curve]


# train is worth one point, as before: half for what it returns, half for leaving the
# caller's arrays alone (each mistake costs its half).
@pytest.mark.points(0.5)
def test_train_matches_reference(student, reference, problem):
    """train: gradient descent lands on the reference's weights, with the loss before each update"""
    x, y, w1, w2 = problem
    lr, steps = 1e-6, 20
    call = student.train.begin(x, y, w1, w2, learning_rate=lr, steps=steps)
    ref_path = _descend(reference.backward, x, y, w1, w2, lr, steps)  # while train runs
    ref_curve = _reference_curve(reference, x, y, ref_path)
    got_w1, got_w2, losses = _train_result(call.result(), steps)
    path = _trained_path(student, ref_path, x, y, w1, w2, got_w1, got_w2, lr, steps, losses)
    if path is not ref_path:
        ref_curve = _reference_curve(reference, x, y, path)
    first = None
    for curve in _loss_curves(student, reference, x, y, path, ref_curve):
        curve = np.asarray(curve)
        if np.allclose(losses, curve[:-1], rtol=1e-6):
            return
        if np.allclose(losses, curve[1:], rtol=1e-6):
            raise AssertionError(
                "your losses are measured after each update: losses[t] should be the loss of "
                "the forward pass that step t's update then uses (the material prints it "
                "before backprop), so losses[0] is the loss of the starting weights; record "
                "the loss before updating w1 and w2")
        first = curve if first is None else first
    expect_array(losses, first[:-1], name="losses", rtol=1e-6)


@pytest.mark.points(0.5)
def test_train_keeps_arguments(student, reference, train_problem):
    """train: the caller's x, y, w1 and w2 are left unchanged"""
    x, y, w1, w2 = train_problem
    lr, steps = 1e-4, 5
    # The arrays stay in the sandbox, so what train does to them in place can be read back.
    handles = [student.put(a) for a in (x, y, w1, w2)]
    call = student.train.begin(*handles, learning_rate=lr, steps=steps)
    ref_path = _descend(reference.backward, x, y, w1, w2, lr, steps)
    got_w1, got_w2, losses = _train_result(call.result(), steps)
    changed = []
    for name, before, handle in zip(("x", "y", "w1", "w2"), (x, y, w1, w2), handles, strict=True):
        after = handle.copy()
        if not (isinstance(after, np.ndarray) and np.array_equal(after, before)):
            changed.append(name)
    weights = [n for n in changed if n in ("w1", "w2")]
    if weights:
        raise AssertionError(
            f"train changed the caller's {' and '.join(weights)} in place: after the call the "
            "starting weights are gone. Start from copies, w1, w2 = w1.copy(), w2.copy(), so "
            "that w1 -= learning_rate * grad_w1 updates your copy, not the caller's array")
    if changed:
        raise AssertionError(
            f"train changed the caller's {' and '.join(changed)} in place: compute new arrays "
            "(y_pred - y, np.maximum(h, 0)) instead of writing into the arguments")
    _trained_path(student, ref_path, x, y, w1, w2, got_w1, got_w2, lr, steps, losses)
