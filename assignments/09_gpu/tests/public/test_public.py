"""Public tests: run them with `grader check` (the GPU one runs only where CUDA is)."""


import numpy as np
import pytest
import torch

from grader.checks import expect_number, kind_of

FIXED = 2024


def _inputs():
    rng = np.random.default_rng(FIXED)
    w1 = torch.from_numpy(rng.uniform(-0.03, 0.03, (100, 1000)).astype(np.float32))
    b1 = torch.from_numpy(rng.uniform(-0.03, 0.03, 100).astype(np.float32))
    w2 = torch.from_numpy(rng.uniform(-0.1, 0.1, (10, 100)).astype(np.float32))
    b2 = torch.from_numpy(rng.uniform(-0.1, 0.1, 10).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((8, 1000), dtype=np.float32))
    a = torch.from_numpy(rng.standard_normal((300, 100), dtype=np.float32))
    b = torch.from_numpy(rng.standard_normal((100, 200), dtype=np.float32))
    state = {"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2}
    expected = (torch.relu(x @ w1.T + b1) @ w2.T + b2).numpy()
    return state, x, expected, a, b


def _device_name(value):
    if isinstance(value, torch.device) or isinstance(value, str):
        return str(value)
    raise AssertionError(f"pick_device should return 'cuda' or 'cpu', not {kind_of(value)}")


@pytest.mark.points(1)
def test_pick_device(student):
    """pick_device names a device, and falls back to 'cpu' without CUDA"""
    name = _device_name(student.pick_device())
    assert name in ("cpu", "cuda", "cuda:0"), (
        f"pick_device returned {name!r}; it should return 'cuda' or 'cpu'")
    if not torch.cuda.is_available():
        assert name == "cpu", (
            f"pick_device returned {name!r} on a machine without CUDA; device-agnostic code "
            "asks torch.cuda.is_available() and falls back to 'cpu'")


@pytest.mark.points(1)
def test_predict_cpu(student, checks):
    """predict on the CPU: the 1000 -> 100 -> 10 network on 8 fixed inputs"""
    state, x, expected, _, _ = _inputs()
    checks.predict(lambda: student.predict(state, x, "cpu"), expected, 'predict(state, x, "cpu")')


@pytest.mark.points(1)
def test_matmul_norm_cpu(student, checks):
    """matmul_norm on the CPU: the 2-norm of a @ b as a Python float"""
    _, _, _, a, b = _inputs()
    checks.matmul_norm(student.matmul_norm(a, b, "cpu"), a, b, 'matmul_norm(a, b, "cpu")')


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_cuda_small(cuda, student, checks):
    """on a GPU: pick_device picks 'cuda'; predict, matmul_norm and time_matmul run there"""
    name = _device_name(student.pick_device())
    assert name.startswith("cuda"), (
        f"pick_device returned {name!r} although CUDA is available: ask "
        "torch.cuda.is_available() instead of writing the device down")
    state, x, expected, _, _ = _inputs()
    checks.predict(lambda: student.predict(state, x, cuda), expected, 'predict(state, x, "cuda")')
    checks.predict(lambda: student.predict(state, x), expected, "predict(state, x)")
    # the lesson's sizes: big enough that a GPU product takes a measurable time
    rng = np.random.default_rng(FIXED)
    a = torch.from_numpy(rng.standard_normal((10000, 1000), dtype=np.float32))
    b = torch.from_numpy(rng.standard_normal((1000, 2000), dtype=np.float32))
    expected_norm = float(torch.matmul(a, b).norm(2))
    expect_number(student.matmul_norm(a, b, cuda), expected_norm,
                  name='matmul_norm(a, b, "cuda")', rtol=1e-4)
    checks.time_matmul(student, a, b, cuda, expected_norm)
