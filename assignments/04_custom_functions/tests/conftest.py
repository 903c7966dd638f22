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
def run(student):
    """run(name, x, grad_output) -> (y, x.grad, facts), the graph driven from this side.

    The leaf x and the output y stay in the sandbox behind handles (`keep`): this side calls
    the student's `name.apply`, reads `y.grad_fn`, calls `y.backward(grad_output)` and reads
    `x.grad`. No glue code of the student's stands between the test and their Function.
    """

    def _run(name, x, grad_output):
        try:
            leaf = student.put(x.detach().clone().requires_grad_(True))
            y = getattr(student, name).apply.keep(leaf)
            assert y.type_name == "Tensor", (
                f"{name}.apply(x) returned a {y.type_name}, not a tensor: forward must return "
                "the output tensor")
            node = y.grad_fn.get()
            kind = None if node is None else node.type_name
            assert kind == f"{name}Backward", (
                f"y.grad_fn is {kind}, not {name}Backward: the gradient does not go through your "
                f"{name}.backward. Subclass torch.autograd.Function and let {name}.apply(x) run "
                "your forward, which returns a tensor computed from x")
            facts = {"grad_fn": kind, "saved": len(node.saved_tensors.get())}
            y.backward(grad_output)
            grad = leaf.grad.get()
            value = y.detach()
        except StudentCodeError as exc:
            raise _hinted(exc) from None
        assert isinstance(grad, torch.Tensor), (
            f"x.grad after {name} is {'None' if grad is None else type(grad).__name__}, not a "
            "tensor: did backward return None?")
        return value, grad, facts

    return _run
