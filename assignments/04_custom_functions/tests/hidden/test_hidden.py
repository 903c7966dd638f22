"""Hidden tests: generated float64 inputs from the submission's secret seed.

The student's forward is reached directly (`student.MyReLU.apply(x)`); backward by driving
the graph from this side (the `run` fixture: y stays in the sandbox behind a handle, and this
side calls y.backward). Every verdict is computed here: against the reference solution,
against the formulas, and against finite differences of the student's own forward.

What the sandbox says about itself (the class of y, of y.grad_fn, its saved tensors) is the
student's word: it can cost a point, with feedback for the usual mistakes, but never earns
one. Points come from behaviour on inputs the sandbox has not seen: values against the
formulas (so a Function that is the identity earns nothing, even where its backward agrees
with its forward), the student's own backward called from here agreeing with what autograd
put in x.grad, a second backward adding the same again (the `run` fixture), and, for
ctx.save_for_backward, autograd refusing a backward after x changed in place and backward
following x's values when they change behind autograd's back.
"""

import math

import pytest
import torch

from grader.checks import expect_tensor, scale_between
from grader.errors import StudentCodeError

NAMES = ("MyReLU", "MySoftplus", "LegendreP3")
# Where each Function is tested: the material's [-6, 6] for Softplus; P3 a little past [-1, 1].
RANGES = {"MyReLU": (-3.0, 3.0), "MySoftplus": (-6.0, 6.0), "LegendreP3": (-2.0, 2.0)}
FD_STEP = 1e-6
FORMULAS = {"MyReLU": ("max(x, 0)", "grad_output where x > 0, 0 where x < 0"),
            "MySoftplus": ("log(1 + e^x)", "grad_output * sigmoid(x)"),
            "LegendreP3": ("0.5(5x^3 - 3x)", "grad_output * 1.5(5x^2 - 1)")}
LEGENDRE_RULE = ("your LegendreP3 backward is off: d/dx 0.5(5x^3 - 3x) = 1.5(5x^2 - 1), so "
                 "backward returns grad_output * 1.5 * (5x^2 - 1)")


def _close(a, b, rtol=1e-6, atol=1e-9):
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


def _check_chain_rule(name, grad, g, derivative, formula):
    """backward must multiply by grad_output; with grad_output all ones that cannot be seen."""
    if not torch.all(g == 1) and _close(grad, derivative):
        raise AssertionError(
            f"your {name} backward returns {formula} without multiplying by grad_output: backward "
            f"receives dL/dy and must return dL/dx = grad_output * {formula} (the chain rule)")


def _relu_hints(x, g, grad, expected):
    _check_chain_rule("MyReLU", grad, g, (x > 0).double(), "the mask (x > 0)")
    if _close(grad, g):
        raise AssertionError("your backward for MyReLU passes the gradient through where x < 0: "
                             "mask it with x < 0 (grad_input[x < 0] = 0), where ReLU is flat")
    if _close(grad, g * (x < 0)):
        raise AssertionError("your MyReLU backward keeps the gradient where x < 0 and zeroes it "
                             "where x > 0: the mask is the wrong way round")


def _softplus_hints(x, g, grad, expected):
    _check_chain_rule("MySoftplus", grad, g, torch.sigmoid(x), "sigmoid(x)")
    if _close(grad, g * torch.sigmoid(-x)):
        raise AssertionError("your MySoftplus backward uses sigmoid(-x): d/dx log(1 + e^x) = "
                             "e^x / (1 + e^x) = sigmoid(x)")
    if _close(grad, g * torch.exp(x)):
        raise AssertionError("your MySoftplus backward is grad_output * e^x: the derivative of "
                             "the log divides by 1 + e^x, which gives sigmoid(x)")
    if _close(grad, g * torch.nn.functional.softplus(x)):
        raise AssertionError("your MySoftplus backward multiplies grad_output by the forward "
                             "value log(1 + e^x); the derivative is sigmoid(x)")


def _legendre_hints(x, g, grad, expected):
    derivative = 1.5 * (5 * x ** 2 - 1)
    _check_chain_rule("LegendreP3", grad, g, derivative, "1.5(5x^2 - 1)")
    try:
        expect_tensor(grad, expected, name="x.grad after LegendreP3", check_dtype=False)
    except AssertionError as exc:
        c = (scale_between(grad.double().numpy(), expected.numpy())
             if grad.shape == expected.shape else None)
        detail = (f"yours is {c:.3g} times that (the 0.5 in front of P3 scales its derivative "
                  "too)" if c is not None and not math.isclose(c, 1.0, rel_tol=1e-3) else str(exc))
        raise AssertionError(f"{LEGENDRE_RULE}; {detail}") from None


HINTS = {"MyReLU": _relu_hints, "MySoftplus": _softplus_hints, "LegendreP3": _legendre_hints}


def _apply(student, name, x):
    """The student's forward, called directly on their class."""
    y = getattr(student, name).apply(x)
    assert isinstance(y, torch.Tensor), (
        f"{name}.apply(x) returned {'None' if y is None else type(y).__name__}, not a tensor: "
        "forward must return the output tensor")
    return y


def _check_backward(name, x, g, grad, expected):
    """Known mistakes first, in the lesson's words; then the values."""
    HINTS[name](x, g, grad, expected)
    expect_tensor(grad, expected, name=f"x.grad after {name} (it should be {FORMULAS[name][1]})",
                  check_dtype=False)


def _generated(student, reference, run, draw, grad_output_kept, name):
    x, g = draw(*RANGES[name])
    exp_y, exp_grad, _ = reference.forward_backward(name, x, g)
    _check_forward(student, name, x, exp_y)
    _, grad, facts = run(name, x, g)
    _check_backward(name, x, g, grad, exp_grad)
    grad_output_kept(name, facts)


@pytest.mark.points(1)
def test_relu_generated(student, reference, run, draw, grad_output_kept):
    """MyReLU: forward and backward match on generated float64 inputs"""
    _generated(student, reference, run, draw, grad_output_kept, "MyReLU")


@pytest.mark.points(1)
def test_softplus_generated(student, reference, run, draw, grad_output_kept):
    """MySoftplus: forward and backward match on generated float64 inputs in [-6, 6]"""
    _generated(student, reference, run, draw, grad_output_kept, "MySoftplus")


@pytest.mark.points(1)
def test_legendre_generated(student, reference, run, draw, grad_output_kept):
    """LegendreP3: forward and backward match on generated float64 inputs"""
    _generated(student, reference, run, draw, grad_output_kept, "LegendreP3")


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_softplus_large_inputs(student, reference, run, rng):
    """MySoftplus stays finite and right for |x| up to 1000"""
    x = torch.cat([torch.tensor([-1000.0, -710.0, 710.0, 1000.0], dtype=torch.float64),
                   torch.from_numpy(rng.uniform(-1000, 1000, 12))])
    ones = torch.ones_like(x)
    exp_y, exp_grad, _ = reference.forward_backward("MySoftplus", x, ones)
    y = _apply(student, "MySoftplus", x)
    if y.shape == x.shape and not torch.isfinite(y).all():
        at = float(x[~torch.isfinite(y)][0])
        raise AssertionError(
            f"MySoftplus forward gives {float(y[x == at][0])} at x = {at:g}: e^x overflows float64 "
            "above x = 709; compute log(1 + e^x) as max(x, 0) + log1p(e^-|x|), which never "
            "exponentiates a large positive number")
    expect_tensor(y, exp_y, name="MySoftplus.apply(x) for large |x|", rtol=1e-7, check_dtype=False)
    _, grad, _ = run("MySoftplus", x, ones)
    if grad.shape == x.shape and not torch.isfinite(grad).all():
        at = float(x[~torch.isfinite(grad)][0])
        value = float(grad[x == at][0])
        why = ("e^x / (1 + e^x) is inf / inf there" if math.isnan(value) else
               "e^x overflows there, while the derivative sigmoid(x) never exceeds 1")
        raise AssertionError(f"MySoftplus backward gives {value} at x = {at:g}: {why}; "
                             "torch.sigmoid(x) is computed without overflow")
    _softplus_hints(x, ones, grad, exp_grad)
    expect_tensor(grad, exp_grad, name="x.grad after MySoftplus for large |x|", rtol=1e-7,
                  check_dtype=False)


def _check_forward(student, name, x, expected):
    """Forward computes the function asked for (a consistent wrong pair earns nothing)."""
    y = _apply(student, name, x)
    if name == "MyReLU" and _close(y, x):
        raise AssertionError("MyReLU forward returns x unchanged: ReLU is max(x, 0), "
                             "x.clamp(min=0)")
    expect_tensor(y, expected, name=f"{name}.apply(x) (it should be {FORMULAS[name][0]})",
                  check_dtype=False)


def _finite_difference_check(student, reference, run, x, name):
    ones = torch.ones_like(x)
    # Backward first: a forward that remembered f(x + h) and f(x - h) would have the slope
    # ready for it otherwise.
    _, grad, _ = run(name, x, ones)
    _check_forward(student, name, x, reference.forward_backward(name, x, ones)[0])
    y_plus, y_minus = _apply(student, name, x + FD_STEP), _apply(student, name, x - FD_STEP)
    assert y_plus.dtype == torch.float64 and y_plus.shape == x.shape, (
        f"{name}.apply(x) gave a {str(y_plus.dtype).removeprefix('torch.')} tensor of shape "
        f"{tuple(y_plus.shape)} for float64 x of shape {tuple(x.shape)}; finite differences need "
        "the input's shape and dtype")
    # Elementwise functions: f(x + h) - f(x - h) taken all at once is the Jacobian's diagonal
    # times 2h, which is what backward gives for grad_output = 1.
    slope = (y_plus - y_minus) / (2 * FD_STEP)
    if _close(grad, slope, rtol=1e-5, atol=1e-6):
        return
    expected = reference.forward_backward(name, x, ones)[1]
    if _close(grad, expected):
        raise AssertionError(f"{name}.backward is right, but your {name}.forward does not have "
                             "that slope: the forward is off (compare it with the formula)")
    HINTS[name](x, ones, grad, expected)
    diff = (grad.double() - slope).abs()
    i = int(torch.argmax(torch.nan_to_num(diff, nan=math.inf)))
    raise AssertionError(
        f"{name}.backward disagrees with the slope of your own {name}.forward: at x = "
        f"{float(x.flatten()[i]):.6g} the central difference (f(x + h) - f(x - h)) / 2h with "
        f"h = 1e-6 is {float(slope.flatten()[i]):.6g}, but backward with grad_output = 1 gives "
        f"{float(grad.flatten()[i]):.6g}")


@pytest.mark.points(1)
def test_finite_differences_relu(student, reference, run, draw):
    """MyReLU: backward agrees with finite differences of your own forward (x kept off 0)"""
    _finite_difference_check(student, reference, run, draw(*RANGES["MyReLU"])[0], "MyReLU")


@pytest.mark.points(1)
def test_finite_differences_softplus(student, reference, run, draw):
    """MySoftplus: backward agrees with finite differences of your own forward"""
    _finite_difference_check(student, reference, run, draw(*RANGES["MySoftplus"])[0], "MySoftplus")


@pytest.mark.points(1)
def test_finite_differences_legendre(student, reference, run, draw):
    """LegendreP3: backward agrees with finite differences of your own forward"""
    _finite_difference_check(student, reference, run, draw(*RANGES["LegendreP3"])[0], "LegendreP3")


def _dtype_name(t):
    return str(t.dtype).removeprefix("torch.")


def _check_kept_dtype(student, name, x, expected=None):
    y = _apply(student, name, x)
    assert tuple(y.shape) == tuple(x.shape), (
        f"{name}.apply(x) has shape {tuple(y.shape)} for x of shape {tuple(x.shape)}: an "
        "elementwise function keeps the shape")
    assert y.dtype == x.dtype, (
        f"{name} forward returned {_dtype_name(y)} for {_dtype_name(x)} input: keep x's dtype "
        "(no .float() or .double(); new tensors made with torch.zeros(shape) or "
        "torch.tensor(...) are float32 whatever x is, torch.zeros_like(x) is not)")
    if expected is not None:  # the shape and dtype of a wrong function earn nothing
        expect_tensor(y, expected, name=f"{name}.apply(x) (it should be {FORMULAS[name][0]})",
                      check_dtype=False)


def _check_float64_gradient(name, grad, expected):
    if _close(grad, expected, rtol=1e-10, atol=1e-12) or not _close(grad, expected, 1e-5, 1e-6):
        return  # full precision, or wrong values, which the other tests judge
    err = float((grad.double() - expected).abs().max())
    raise AssertionError(
        f"{name} backward returned float32 for float64 input: autograd cast the gradient back to "
        f"float64, but the digits beyond float32's seven were already lost (off by up to {err:.1g}); "
        "keep grad_output's dtype: no .float(), and build grad_input from grad_output "
        "(grad_output.clone(), torch.zeros_like(grad_output)), since torch.zeros(shape) is float32")


@pytest.mark.points(1)
def test_shapes_and_dtypes(student, reference, run, draw, rng):
    """forward and backward keep the input's shape and dtype (float64 stays float64)"""
    shape = (2, int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    for name in NAMES:
        x, g = draw(*RANGES[name], shape=shape)
        exp_y, exp_grad, _ = reference.forward_backward(name, x, g)
        _check_kept_dtype(student, name, x, exp_y)
        _check_kept_dtype(student, name, x.float())
        _, grad, _ = run(name, x, g)
        _check_float64_gradient(name, grad, exp_grad)


SAVE_RULE = ("{name}: forward must save x with ctx.save_for_backward(x), and backward read it "
             "back with x, = ctx.saved_tensors: x was changed in place between forward and "
             "backward, and autograd did not notice. A tensor stored as an attribute "
             "(ctx.x = x) works by accident but escapes autograd's checks and can leak memory; "
             "a copy of x, or something computed from it (a mask, the output), escapes them too")


def _check_version_counter(student, name, x, g):
    """x changed in place between forward and backward: autograd must refuse the backward.

    It does exactly when backward reads back a tensor forward saved with
    ctx.save_for_backward (the saved tensor's version counter moved on).
    """
    leaf = student.put(x.clone().requires_grad_(True))
    y = getattr(student, name).apply.keep(leaf)
    leaf.detach.keep().mul_(1.0)  # detach() shares x's version counter; mul_ moves it on
    try:
        y.backward(g)
    except StudentCodeError as exc:
        if "modified by an inplace operation" in str(exc):
            return
        raise
    raise AssertionError(SAVE_RULE.format(name=name))


def _check_follows_saved_input(student, run, name, x_before, x_after, g):
    """x's values changed behind autograd's back (x.data): backward must see the new ones.

    The saved tensor is x itself, so an honest backward gives the gradient at the new
    values; a gradient kept from forward (a graph of its own, a stored answer) does not.
    """
    leaf = student.put(x_before.clone().requires_grad_(True))
    y = getattr(student, name).apply.keep(leaf)
    leaf.data.copy_(x_after)  # .data shares x's storage but not its version counter
    y.backward(g)
    after_change = leaf.grad.get()
    _, fresh, _ = run(name, x_after, g)
    assert _close(after_change, fresh, rtol=1e-9, atol=1e-12), (
        f"{name}: when x's values changed between forward and backward, your backward still "
        "gave the gradient for the old values: backward must compute from the x it reads "
        "back from ctx.saved_tensors and from grad_output, not from anything kept from forward")


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_own_function_and_saved_tensors(student, reference, run, draw):
    """y.grad_fn is your Function's node, and forward saves x with ctx.save_for_backward"""
    for name in NAMES:
        x, g = draw(*RANGES[name])
        _check_forward(student, name, x, reference.forward_backward(name, x, g)[0])
        run(name, x, g)
        _check_version_counter(student, name, x, g)
        _check_follows_saved_input(student, run, name, x, draw(*RANGES[name], x.shape)[0], g)
