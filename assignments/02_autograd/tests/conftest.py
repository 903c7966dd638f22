"""Inputs and hints shared by the public and hidden tests (no answers live here)."""

import pytest
import torch

from grader.checks import expect_tensor


@pytest.fixture
def gen(seed):
    """A torch Generator seeded with this submission's secret seed."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def quadratic_problem(gen):
    """The material's data from this submission's seed: x in [-1, 1], y = 3x^2 + 2 + noise,
    and starting values w, b in [0, 1) of shape (1, 1)."""
    x = torch.unsqueeze(torch.linspace(-1, 1, 100), dim=1)
    y = 3 * x.pow(2) + 2 + 0.2 * torch.rand(x.size(), generator=gen)
    w = torch.rand(1, 1, generator=gen)
    b = torch.rand(1, 1, generator=gen)
    return x, y, w, b


@pytest.fixture
def scalars(gen):
    """x, w, b of shape (1,) as in the material's z = w * x + b (x away from zero)."""
    x = torch.rand(1, generator=gen) * 8 + 1
    w = torch.randn(1, generator=gen)
    b = torch.randn(1, generator=gen)
    return x, w, b


# Known errors of the student's own code, each with the lesson's fix: (what, text, hint).
HINTS = (
    ("jacobian", "backward through the graph a second time",
     "the first y.backward(v) freed y's graph, so the next one failed: pass "
     "retain_graph=True to every backward but the last"),
    ("jacobian", "NoneType",
     "x.grad was None after y.backward(v): y's graph leads to the x you were given, so read "
     "x.grad of that x (a clone, x.clone() or torch.tensor(x), is not part of y's graph)"),
    ("training", "leaf Variable that requires grad is being used in an in-place operation",
     "the update ran while autograd was recording: w1 and w2 are leaves that require grad, "
     "so update them inside `with torch.no_grad():`, as the material does"),
    ("training", "does not require grad and does not have a grad_fn",
     "the loss has no graph back to the weights: w1 = w1 - ... under no_grad makes a new "
     "tensor that does not require grad; update the caller's weights in place, "
     "w1 -= learning_rate * w1.grad"),
    ("training", "NoneType",
     "w1.grad was None where your code used it: loss.backward() fills it, so compute the loss "
     "from w1 and w2 and call loss.backward() before the update"),
)


def _explain(exc, what):
    """Re-raise an error of the student's code with the lesson's fix, when it is a known one."""
    text = str(exc)
    for kind, needle, hint in HINTS:
        if kind == what and needle in text:
            first = text.splitlines()[0].removeprefix("your code raised ")[:300]
            raise AssertionError(f"{hint} (your code raised {first})") from None
    raise exc


@pytest.fixture
def explain():
    """`explain(exc, "jacobian" | "training")`: the lesson's fix for a known error, else exc."""
    return _explain


def _check_jacobian(got, J):
    """Compare the student's Jacobian with J (m, n), naming the lesson's usual slips."""
    m, n = J.shape
    if isinstance(got, torch.Tensor) and got.shape == (m, 1, n):
        raise AssertionError(f"J has shape {tuple(got.shape)}: each x.grad has x's shape (1, n), "
                             "so stacking them adds an axis; store row i with J[i] = x.grad (or "
                             f"torch.cat the rows) for the shape ({m}, {n})")
    if isinstance(got, torch.Tensor) and got.shape == (m, n):
        g, Jd = got.detach().double(), J.double()
        if not g.abs().any():
            raise AssertionError("J is all zeros: either your rows are x.grad itself, which "
                                 "x.grad.zero_() then wiped (store a copy, x.grad.clone(), or "
                                 "copy it in with J[i] = x.grad), or x.grad of the x you were "
                                 "given never changed (a clone of x is not part of y's graph)")
        if m > 1 and torch.allclose(g, Jd[-1].expand(m, n), atol=1e-5) and not torch.allclose(
                Jd[0], Jd[-1], atol=1e-5):
            raise AssertionError("every row of J is the last row: you stored x.grad itself, and "
                                 "each backward wrote into that same tensor; store a copy, "
                                 "x.grad.clone(), or copy it in with J[i] = x.grad")
        if torch.allclose(g, Jd.sum(0).expand(m, n), atol=1e-5):
            raise AssertionError("the wrong vector for the VJP: y.backward(v) gives v J, so "
                                 "torch.ones gives the sum of J's rows; v = e_i (a 1 at "
                                 "position i, zeros elsewhere) picks row i")
        if torch.allclose(g, Jd.cumsum(0), atol=1e-5):
            raise AssertionError("each row of J holds the rows before it as well: x.grad "
                                 "accumulated over the backward passes; zero it "
                                 "(x.grad = torch.zeros_like(x.grad)) between two passes")
    if isinstance(got, torch.Tensor) and got.shape == (n, m) and torch.allclose(
            got.detach().double(), J.T.double(), atol=1e-5):
        raise AssertionError("your J is transposed: the VJP with v = e_i is row i of J "
                             "(dy_i / dx_j), so store x.grad in J[i], not in a column")
    expect_tensor(got, J, name="J", rtol=1e-4, atol=1e-5)


@pytest.fixture
def check_jacobian():
    """`check_jacobian(got, J)`: the student's Jacobian against J, with the usual slips named."""
    return _check_jacobian
