"""Public tests: run them with `grader check`."""

import numpy as np
import pytest
import torch

from grader.checks import expect_tensor


def _pair(value, fn):
    assert isinstance(value, (tuple, list)) and len(value) == 2, (
        f"{fn} should return a pair of tensors (features, labels)")
    return value


@pytest.mark.points(1)
def test_regression_small(student):
    """to_regression_tensors: float64 arrays become float32 tensors"""
    X = np.arange(15, dtype=np.float64).reshape(5, 3) / 7
    y = np.array([24.0, 21.6, 34.7, 33.4, 36.2])
    xt, yt = _pair(student.to_regression_tensors(X, y), "to_regression_tensors")
    expect_tensor(xt, torch.tensor(X, dtype=torch.float32), name="the features")
    assert not (isinstance(yt, torch.Tensor) and yt.shape == (5, 1)), (
        "the targets have shape (5, 1); keep them 1-D, (5,), as load_boston gives them")
    expect_tensor(yt, torch.tensor(y, dtype=torch.float32), name="the targets")


@pytest.mark.points(1)
def test_classification_small(student, small):
    """to_classification_tensors: float32 features, int64 labels"""
    X, y = small
    xt, yt = _pair(student.to_classification_tensors(X, y), "to_classification_tensors")
    expect_tensor(xt, torch.tensor(X, dtype=torch.float32), name="the features")
    expect_tensor(yt, torch.tensor(y, dtype=torch.int64), name="the labels")


@pytest.mark.points(1)
def test_first_batch_small(student, small, checks):
    """first_batch: the first 10 of 23 rows, shapes (10, 4) and (10,)"""
    X, y = small
    features, labels = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    b_x, b_y = _pair(student.first_batch(features, labels, 10), "first_batch")
    verdict = checks.which_batch(b_x, features, 10, 0, "first_batch(features, labels, 10)",
                                 first=True)
    assert verdict is None, verdict
    expect_tensor(b_x, features[:10], name="b_x")
    expect_tensor(b_y, labels[:10], name="b_y")
