"""Inputs and checks shared by the public and hidden tests (no answers live here)."""

import time
from types import FunctionType, SimpleNamespace

import numpy as np
import pytest
import torch

from grader.checks import expect_array, expect_number, kind_of
from grader.errors import StudentCodeError


def make_state(rng, d_in=1000, h=100, d_out=10):
    """Weights for nn.Sequential(nn.Linear(d_in, h), nn.ReLU(), nn.Linear(h, d_out))."""
    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return torch.from_numpy(rng.uniform(-bound, bound, shape).astype(np.float32))

    return {"0.weight": uniform((h, d_in), d_in), "0.bias": uniform((h,), d_in),
            "2.weight": uniform((d_out, h), h), "2.bias": uniform((d_out,), h)}


def make_matrices(rng, n=10000, k=1000, m=2000):
    """a (n, k) and b (k, m), float32 standard normal: the lesson's 10000x1000 @ 1000x2000."""
    a = torch.from_numpy(rng.standard_normal((n, k), dtype=np.float32))
    b = torch.from_numpy(rng.standard_normal((k, m), dtype=np.float32))
    return a, b


@pytest.fixture
def cuda():
    """'cuda', or the test is skipped (scored zero, said plainly) where there is no GPU."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: this machine has none, so this GPU check was not "
                    "run (the course grades it on the GPU queue)")
    return "cuda"


@pytest.fixture
def batch(rng):
    """The course's sizes: weights for 1000 -> 100 -> 10 and x of shape (64, 1000)."""
    x = torch.from_numpy(rng.standard_normal((64, 1000), dtype=np.float32))
    return make_state(rng), x


@pytest.fixture
def small_matrices(rng):
    """a (500, 200) and b (200, 300) drawn from the seed: quick on a CPU."""
    return make_matrices(rng, 500, 200, 300)


@pytest.fixture
def lesson_matrices(rng):
    """a (10000, 1000) and b (1000, 2000) drawn from the seed: the lesson's GPU test."""
    return make_matrices(rng)


@pytest.fixture
def new_lesson_matrices(rng):
    """A maker of new lesson-sized (a, b) from the seed at each call (for timed calls)."""
    return lambda: make_matrices(rng)


def _predict_checked(value, expected, name):
    if isinstance(value, FunctionType):  # the call itself, so its error can be explained
        try:
            value = value()
        except StudentCodeError as exc:
            if "requires grad" in str(exc):
                raise AssertionError(
                    f"{name}: your output still requires grad, so .numpy() refuses it. Run the "
                    "network inside `with torch.no_grad():` (a prediction needs no graph), or "
                    ".detach() the output before .cpu().numpy()") from None
            raise
    if isinstance(value, torch.Tensor):
        raise AssertionError(f"{name} returned a torch tensor; return a NumPy array on the "
                             "CPU: out.cpu().numpy() (.numpy() alone fails for a CUDA tensor)")
    expect_array(value, expected, name=name, rtol=1e-4, atol=1e-5)


def _time_matmul_checked(student, a, b, device, expected_norm):
    started = time.perf_counter()
    got = student.time_matmul(a, b, device)
    outside_s = time.perf_counter() - started
    call = f'time_matmul(a, b, "{device}")'
    assert isinstance(got, (tuple, list)) and len(got) == 2, (
        f"{call} should return a pair (seconds, norm), not {kind_of(got)}")
    seconds, norm = got
    if (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
            and np.isclose(seconds, expected_norm, rtol=1e-4)):
        raise AssertionError(f"{call} returned (norm, seconds); return them in the order "
                             "(seconds, norm)")
    if isinstance(seconds, torch.Tensor) or not isinstance(seconds, (int, float)) or isinstance(
            seconds, bool):
        raise AssertionError(f"{call}: seconds should be a Python float, not {kind_of(seconds)}")
    assert seconds > 0, f"{call} reported {seconds} seconds; a matmul takes some time"
    assert seconds <= outside_s, (
        f"{call} reported {seconds:.4g} seconds, but the whole call took {outside_s:.4g} s "
        "measured from outside; return seconds (time.perf_counter() differences), not "
        "milliseconds")
    expect_number(norm, expected_norm, name=f"the norm from {call}", rtol=1e-4)


@pytest.fixture
def checks():
    """The checks both suites apply to predict and time_matmul (what is right, not answers)."""
    return SimpleNamespace(predict=_predict_checked, time_matmul=_time_matmul_checked,
                           matmul_norm=_matmul_norm_checked)


def _matmul_norm_checked(value, a, b, name):
    """matmul_norm's answer against the 2-norm of all of a @ b's entries."""
    c = torch.matmul(a, b)
    expected = float(c.norm(2))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not np.isclose(
            value, expected, rtol=1e-5):
        if np.isclose(value, float(torch.linalg.matrix_norm(c, 2)), rtol=1e-4):
            raise AssertionError(
                f"{name} is {value:.6g}, the spectral norm of c (its largest singular value: "
                "torch.linalg.norm(c, 2) of a matrix); the lesson prints c.norm(2), the 2-norm "
                f"of all its entries taken together, {expected:.6g}")
    return expect_number(value, expected, name=name, rtol=1e-5)
