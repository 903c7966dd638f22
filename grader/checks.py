"""Comparison helpers for assignment tests, with messages that say what to fix.

Everything compared here came back from the sandbox as plain data, so the checks
are honest: type first, then dtype, then shape, then values.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Mismatch(AssertionError):
    """A returned value that differs from the expected one; `kind` says how (for hidden tests'
    feedback, which names the kind of mistake without the inputs)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


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


def _values_message(name: str, actual: np.ndarray, expected: np.ndarray, *, rtol: float,
                    atol: float) -> str:
    """Where the values differ most beyond the tolerance, and how (sign, scale)."""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    diff = np.abs(a - e)
    # The element that breaks `allclose` by the most, not merely the largest difference: a big
    # element can differ more than a small one and still be within its relative tolerance.
    excess = np.where(np.isnan(diff) | (np.isnan(a) != np.isnan(e)), np.inf,
                      diff - (atol + rtol * np.abs(e)))
    excess = np.where(np.isnan(a) & np.isnan(e), -np.inf, excess)
    idx = np.unravel_index(int(np.argmax(excess)), diff.shape)
    where = f" at index {tuple(int(i) for i in idx)}" if diff.ndim else ""
    bad = int(np.count_nonzero(excess > 0))
    count = f"; {bad} of {diff.size} values are off" if diff.size > 1 else ""
    msg = (f"{name} has the right shape but wrong values: yours is {_scalar(actual[idx])}{where}, "
           f"expected {_scalar(expected[idx])} (off by "
           f"{float(np.nan_to_num(diff[idx], nan=np.inf)):.3g}){count}")
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
        raise Mismatch(f"{name} should be a NumPy array, but your code returned "
                       f"{kind_of(value)}; return a NumPy array (np.ndarray) here", "type")
    if not isinstance(value, np.ndarray):
        raise Mismatch(f"{name} should be a NumPy array, but your code returned "
                       f"{kind_of(value)}", "type")
    if check_dtype and value.dtype != expected.dtype:
        raise Mismatch(f"{name} has dtype {value.dtype}; expected {expected.dtype}", "dtype")
    if value.shape != expected.shape:
        raise Mismatch(f"{name} has shape {value.shape}; expected {expected.shape}", "shape")
    if not np.allclose(value, expected, rtol=rtol, atol=atol, equal_nan=False):
        raise Mismatch(_values_message(name, value, expected, rtol=rtol, atol=atol), "values")
    return value


def expect_tensor(value: Any, expected: Any, *, name: str, rtol: float = 1e-5,
                  atol: float = 1e-6, check_dtype: bool = True) -> Any:
    """Check a torch tensor against the expected one; AssertionError says what differs."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise Mismatch(f"{name} should be a torch tensor, but your code returned "
                       f"{kind_of(value)}", "type")
    if check_dtype and value.dtype != expected.dtype:
        want = str(expected.dtype).removeprefix("torch.")
        got = str(value.dtype).removeprefix("torch.")
        raise Mismatch(f"you returned a {got} tensor for {name}; the exercise asks for {want}", "dtype")
    if tuple(value.shape) != tuple(expected.shape):
        raise Mismatch(f"{name} has shape {tuple(value.shape)}; expected "
                       f"{tuple(expected.shape)}", "shape")
    a = value.detach().to(torch.float64 if value.is_floating_point() else value.dtype)
    e = expected.detach().to(a.dtype)
    if not torch.allclose(a, e, rtol=rtol, atol=atol):
        raise Mismatch(_values_message(name, a.numpy(), e.numpy(), rtol=rtol, atol=atol), "values")
    return value


def expect_number(value: Any, expected: float, *, name: str, rtol: float = 1e-6) -> float:
    """Check a Python or NumPy scalar against the expected value."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        raise Mismatch(f"{name} should be a Python number, but your code returned "
                       f"{kind_of(value)}; return `.item()` of a one-element tensor", "type")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Mismatch(f"{name} should be a number, but your code returned {kind_of(value)}", "type")
    if not np.isclose(value, expected, rtol=rtol, atol=0):
        ratio = value / expected if expected else float("nan")
        hint = f" (that is {ratio:.3g} times the expected value)" if np.isfinite(ratio) else ""
        raise Mismatch(f"{name} is {value:.6g}; expected {expected:.6g}{hint}", "values")
    return float(value)


# What a test's own code raises when it cannot use a returned value, in the lesson's terms.
# The raw text names the trusted side's internals (its calls, not the student's), so it is
# never shown as it is.
_UNUSABLE = (
    (("requires grad", "requires_grad"), "it is a tensor still attached to an autograd graph "
     "(requires_grad=True); return a plain result with `.detach()`"),
    (("cuda", "device type"), "it is a tensor on the GPU; return it on the CPU with `.cpu()`"),
    (("converted to scalar", "converted to python scalar", "length-1 arrays",
      "0-dimensional arrays", "size-1 arrays"),
     "it holds several numbers where the test expects one; return a single number "
     "(`.item()` of a one-element tensor)"),
    (("nonetype",), "it is None (did you forget a `return`?)"),
    (("unpack", "not iterable", "not subscriptable", "has no len"),
     "it is not the sequence the test expects (a tuple or list of the values the starter "
     "names); return the values in that order"),
    (("shape", "size of tensor", "broadcast", "dimension"),
     "its shape is not the one the exercise asks for"),
    (("dtype", "expected scalar type", "found dtype"), "its dtype is not the one the exercise asks for"),
)


def unusable_message(exc: BaseException) -> str:
    """Why a test could not use what the student's code returned, without the test's internals."""
    text = f"{type(exc).__name__}: {exc}".lower()
    for needles, why in _UNUSABLE:
        if any(n in text for n in needles):
            return f"the test could not use what your code returned: {why}"
    return (f"the test could not use what your code returned ({type(exc).__name__}); check the "
            "type, shape and dtype of each value against what the starter asks for")
