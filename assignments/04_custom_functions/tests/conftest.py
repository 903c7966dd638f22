"""Inputs shared by the public and hidden tests (no answers live here)."""

import numpy as np
import pytest
import torch

from grader.errors import StudentCodeError

# Inputs stay this far from 0: ReLU has its kink there, where backward has no one right answer
# and a finite difference straddling it measures neither slope.
KINK_GAP = 1e-3
# Errors torch raises for this lesson's usual slips, and what to do about them.
ERROR_HINTS = (
    ("dtypes match", "a tensor made with torch.zeros(shape) is float32 whatever x is; build the "
     "gradient from grad_output (grad_output.clone(), torch.zeros_like(grad_output))"),
    ("(expected 1, got 0)", "ctx.saved_tensors is empty: forward must save x with "
     "ctx.save_for_backward(x)"),
)


def make_input(rng, shape, low, high):
    """x uniform in [low, high] and grad_output standard normal, float64, x kept off 0."""
    x = rng.uniform(low, high, shape)
    x[np.abs(x) < KINK_GAP] = 0.5
    return torch.from_numpy(x), torch.from_numpy(rng.standard_normal(shape))


@pytest.fixture
def draw(rng):
    """draw(low, high, shape=None) -> (x, grad_output) from this submission's seed."""

    def _draw(low, high, shape=None):
        if shape is None:
            shape = (int(rng.integers(3, 9)), int(rng.integers(2, 7)))
        return make_input(rng, shape, low, high)

    return _draw


def _hinted(exc: StudentCodeError) -> AssertionError | StudentCodeError:
    """The student's error, with what to do when it is one of the lesson's usual slips."""
    hints = [hint for clue, hint in ERROR_HINTS if clue in str(exc)]
    if not hints:
        return exc
    first, _, rest = str(exc).partition("\n")
    return AssertionError(f"{first}\nhint: {hints[0]}\n{rest}")


@pytest.fixture
def with_drawn(draw):
    """with_drawn(x, low, high) -> (x with as many drawn values appended, a drawn grad_output).

    The public tests' inputs are released with them, so answers stored for those inputs
    must not pass: half of x and all of grad_output come from the seed, in x's dtype.
    """

    def _with(x, low, high):
        both = torch.cat([x, draw(low, high, shape=tuple(x.shape))[0].to(x.dtype)])
        return both, draw(low, high, shape=tuple(both.shape))[1].to(x.dtype)

    return _with


def _same_values(a, b) -> bool:
    """Equal up to float64 rounding (a float32 gradient is compared as autograd cast it)."""
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.double(), b.double(), rtol=1e-9, atol=1e-12, equal_nan=True))


def _one_gradient(value, like):
    """What backward returned, as the one gradient autograd made of it.

    Autograd takes the gradient alone or in a 1-tuple, and sums one of a broadcast shape
    down to the input's.
    """
    if type(value) in (tuple, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, torch.Tensor) and value.shape != like.shape:
        try:
            value = value.sum_to_size(like.shape)
        except RuntimeError:
            pass
    return value


def _checked_node(name, y):
    """y.grad_fn's handle, after the names the sandbox reports.

    The names are the student's own word, so they only ever cost a point (with feedback
    for the usual mistakes): what earns it is what backward does (`_check_own_backward`).
    """
    assert y.type_name == "Tensor", (
        f"{name}.apply(x) returned a {y.type_name}, not a tensor: forward must return "
        "the output tensor")
    node = y.grad_fn.get()
    kind = None if node is None else node.type_name
    assert kind == f"{name}Backward", (
        f"y.grad_fn is {kind}, not {name}Backward: the gradient does not go through your "
        f"{name}.backward. Subclass torch.autograd.Function and let {name}.apply(x) run "
        "your forward, which returns a tensor computed from x")
    return node, kind


def _check_own_backward(function, name, y, node, leaf, grad, grad_output):
    """x.grad is what the student's own backward computes, each time autograd calls it.

    Two things every autograd.Function does, whatever the sandbox says about itself:
    `{name}.backward(ctx, grad_output)` called from here on y.grad_fn gives what autograd
    put in x.grad, and a second `y.backward` adds the same again. A made-up graph, a
    tensor that only says it is the Function's, or a backward that runs a graph of its own
    kept from forward fails one or the other.
    """
    try:
        direct = _one_gradient(function.backward(node, grad_output), grad)
    except StudentCodeError as exc:
        raise AssertionError(
            f"autograd filled x.grad, but calling your {name}.backward(ctx, grad_output) on "
            f"y.grad_fn failed: {exc}\nx.grad must come from your own {name}.backward") from None
    assert _same_values(direct, grad), (
        f"x.grad after y.backward(grad_output) is not what your {name}.backward(ctx, "
        "grad_output) returns for the same ctx and grad_output: the gradient did not come "
        f"from your {name}.backward")
    try:
        y.backward(grad_output)
        twice = leaf.grad.get()
    except StudentCodeError as exc:
        raise AssertionError(
            f"{name}: a second y.backward(grad_output), on the graph kept with "
            f"retain_graph=True, failed: {exc}\nautograd may call backward more than once: it "
            "must compute the gradient from ctx.saved_tensors and grad_output each time, not "
            "run a graph of its own kept from forward") from None
    assert _same_values(twice, 2 * grad), (
        f"{name}: a second y.backward(grad_output) must add the same gradient to x.grad again "
        "(autograd accumulates), but x.grad did not become twice the first: backward must "
        "compute the gradient from ctx.saved_tensors and grad_output each time it is called")


@pytest.fixture
def run(student):
    """run(name, x, grad_output) -> (y, x.grad, facts), the graph driven from this side.

    The leaf x and the output y stay in the sandbox behind handles (`keep`): this side calls
    the student's `name.apply`, reads `y.grad_fn`, calls `y.backward(grad_output)` and reads
    `x.grad`. No glue code of the student's stands between the test and their Function, and
    nothing the sandbox reports about the graph is believed without checking what backward
    does (`_check_own_backward`). facts["grad_output_changed"] says whether backward wrote
    into the grad_output it was handed (the tests that judge it use `grad_output_kept`).
    """

    def _run(name, x, grad_output):
        function = getattr(student, name)
        try:
            leaf = student.put(x.detach().clone().requires_grad_(True))
            y = function.apply.keep(leaf)
            node, kind = _checked_node(name, y)
            # grad_output stays in the sandbox too, as autograd's own tensor would: autograd
            # hands it to backward as it is, so a backward that writes into it shows here.
            kept = student.put(grad_output.clone())
            y.backward(kept, retain_graph=True)
            grad = leaf.grad.get()
            after = kept.clone()
        except StudentCodeError as exc:
            raise _hinted(exc) from None
        assert isinstance(grad, torch.Tensor), (
            f"x.grad after {name} is {'None' if grad is None else type(grad).__name__}, not a "
            "tensor: did backward return None?")
        _check_own_backward(function, name, y, node, leaf, grad, grad_output)
        changed = not (isinstance(after, torch.Tensor) and after.shape == grad_output.shape
                       and torch.equal(after, grad_output))
        return y.detach(), grad, {"grad_fn": kind, "grad_output_changed": changed}

    return _run


def _check_grad_output_kept(name, facts):
    """backward must leave grad_output as autograd handed it over (see the `run` fixture)."""
    assert not facts["grad_output_changed"], (
        f"your {name}.backward changed grad_output in place: x.grad is right here only because "
        "nothing else uses y. grad_output is autograd's tensor, and the same tensor goes to "
        f"every other branch of the graph (in z = {name}.apply(x) + x, the branch through `+` "
        "then gets your changed values too, so x.grad comes out wrong). Clone it first, as the "
        "material does: grad_input = grad_output.clone(), then change and return grad_input; "
        "or return a new tensor (grad_output * ..., torch.where(...)) and never write into "
        "grad_output (no grad_output[...] = ..., *=, or methods ending in _)")


@pytest.fixture
def grad_output_kept():
    """grad_output_kept(name, facts): fails when run's backward wrote into grad_output."""
    return _check_grad_output_kept
