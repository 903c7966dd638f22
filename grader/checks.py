"""Comparison helpers for assignment tests, with messages that say what to fix.

Everything compared here came back from the sandbox as plain data, so the checks
are honest: type first, then dtype, then shape, then values.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def kind_of(value: Any) -> str:
    """A short human name for what a student's function returned."""
    if value is None:
        return "None (did you forget a `return`?)"
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return f"a torch tensor of dtype {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of dtype {value.dtype}"
    type_name = getattr(value, "type_name", None)
    if type_name:
        return f"a {type_name} object"
    return f"a {type(value).__name__}"


def _torch():
    import sys

    return sys.modules.get("torch")


def scale_between(actual: np.ndarray, expected: np.ndarray) -> float | None:
    """c such that actual is close to c * expected (least squares), if it fits well."""
    a, e = np.asarray(actual, dtype=np.float64).ravel(), np.asarray(expected, np.float64).ravel()
    denom = float(e @ e)
    if denom == 0 or a.shape != e.shape:
        return None
    c = float(a @ e) / denom
    fits = np.linalg.norm(a - c * e) <= 1e-3 * max(np.linalg.norm(a), 1e-12)
    return c if fits else None


def _scalar(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _values_message(name: str, actual: np.ndarray, expected: np.ndarray) -> str:
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    idx = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
    where = f" at index {tuple(int(i) for i in idx)}" if diff.ndim else ""
    msg = (f"{name} has the right shape but wrong values: largest difference "
           f"{float(np.nan_to_num(diff[idx], nan=np.inf)):.3g}{where} "
           f"(yours {_scalar(actual[idx])}, expected {_scalar(expected[idx])})")
    c = scale_between(actual, expected)
    if c is not None and not np.isclose(c, 1.0, rtol=1e-3):
        if np.isclose(c, -1.0, rtol=1e-3):
            msg += "; it is the expected value with the sign flipped"
        else:
            msg += f"; it is the expected value times {c:.3g}"
    return msg


def expect_array(value: Any, expected: np.ndarray, *, name: str, rtol: float = 1e-5,
                 atol: float = 1e-8, check_dtype: bool = True) -> np.ndarray:
    """Check a NumPy array against the expected one; AssertionError says what differs."""
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        raise AssertionError(f"{name} should be a NumPy array, but your code returned "
                             f"{kind_of(value)}; this exercise is NumPy only")
    if not isinstance(value, np.ndarray):
        raise AssertionError(f"{name} should be a NumPy array, but your code returned "
                             f"{kind_of(value)}")
    if check_dtype and value.dtype != expected.dtype:
        raise AssertionError(f"{name} has dtype {value.dtype}; expected {expected.dtype}")
    if value.shape != expected.shape:
        raise AssertionError(f"{name} has shape {value.shape}; expected {expected.shape}")
    if not np.allclose(value, expected, rtol=rtol, atol=atol, equal_nan=False):
        raise AssertionError(_values_message(name, value, expected))
    return value


def expect_tensor(value: Any, expected: Any, *, name: str, rtol: float = 1e-5,
                  atol: float = 1e-6, check_dtype: bool = True) -> Any:
    """Check a torch tensor against the expected one; AssertionError says what differs."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{name} should be a torch tensor, but your code returned "
                             f"{kind_of(value)}")
    if check_dtype and value.dtype != expected.dtype:
        want = str(expected.dtype).removeprefix("torch.")
        got = str(value.dtype).removeprefix("torch.")
        raise AssertionError(f"you returned a {got} tensor for {name}; the exercise asks for {want}")
    if tuple(value.shape) != tuple(expected.shape):
        raise AssertionError(f"{name} has shape {tuple(value.shape)}; expected "
                             f"{tuple(expected.shape)}")
    a = value.detach().to(torch.float64 if value.is_floating_point() else value.dtype)
    e = expected.detach().to(a.dtype)
    if not torch.allclose(a, e, rtol=rtol, atol=atol):
        raise AssertionError(_values_message(name, a.numpy(), e.numpy()))
    return value


def expect_number(value: Any, expected: float, *, name: str, rtol: float = 1e-6) -> float:
    """Check a Python or NumPy scalar against the expected value."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssertionError(f"{name} should be a number, but your code returned {kind_of(value)}")
    if not np.isclose(value, expected, rtol=rtol, atol=0):
        ratio = value / expected if expected else float("nan")
        hint = f" (that is {ratio:.3g} times the expected value)" if np.isfinite(ratio) else ""
        raise AssertionError(f"{name} is {value:.6g}; expected {expected:.6g}{hint}")
    return float(value)
