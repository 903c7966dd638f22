"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch

from grader.checks import expect_tensor


def _pair(value, fn):
    assert isinstance(value, (tuple, list)) and len(value) == 2, (
        f"{fn} should return a pair of tensors (features, labels)")
    return value


def _check_labels(yt, y):
    """int64 labels, with the lesson's reason when they are floating point."""
    if isinstance(yt, torch.Tensor) and yt.is_floating_point():
        raise AssertionError(
            f"your labels are {str(yt.dtype).removeprefix('torch.')}: class labels must be "
            "int64 (nn.CrossEntropyLoss takes class indices as torch.int64); convert them with "
            "y.astype(np.int64), not np.float32 like the features")
    expect_tensor(yt, torch.from_numpy(np.asarray(y).astype(np.int64)), name="the labels")


def _check_batches(got, features, labels, batch_size, drop_last, fn, checks):
    """The batches a DataLoader with shuffle=False gives, with messages about the last one."""
    n = len(labels)
    full, rest = divmod(n, batch_size)
    want = full + (1 if rest and not drop_last else 0)
    assert isinstance(got, list), f"{fn} should return a list of (b_x, b_y) pairs"
    if len(got) != want:
        if rest and drop_last and len(got) == full + 1:
            raise AssertionError(
                f"{n} rows in batches of {batch_size} with drop_last=True give {full} batches: "
                f"drop_last leaves out the last {rest} rows, which would form a smaller batch")
        if rest and not drop_last and len(got) == full:
            raise AssertionError(
                f"{n} rows in batches of {batch_size} give {full + 1} batches: the last one has "
                f"the remaining {rest} rows; only drop_last=True leaves it out (the default, "
                "drop_last=False, keeps it)")
        raise AssertionError(f"{fn} gave {len(got)} batches; {n} rows in batches of "
                             f"{batch_size} give {want}")
    for i, pair in enumerate(got):
        b_x, b_y = _pair(pair, f"batch {i}")
        rows = slice(i * batch_size, min((i + 1) * batch_size, n))
        verdict = checks.which_batch(b_x, features, batch_size, i, fn)
        assert verdict is None, verdict
        expect_tensor(b_x, features[rows], name=f"b_x of batch {i}")
        _check_labels(b_y, labels[rows].numpy())


@pytest.mark.points(1)
def test_regression_generated(student, boston):
    """to_regression_tensors on Boston-sized data (506, 13): float32 features and targets"""
    X, y = boston
    xt, yt = _pair(student.to_regression_tensors(X, y), "to_regression_tensors")
    expect_tensor(xt, torch.from_numpy(X.astype(np.float32)), name="the features")
    if isinstance(yt, torch.Tensor) and yt.shape == (len(y), 1):
        raise AssertionError(f"the targets have shape {tuple(yt.shape)}; keep them 1-D, "
                             f"({len(y)},), as load_boston gives them")
    expect_tensor(yt, torch.from_numpy(y.astype(np.float32)), name="the targets")


@pytest.mark.points(1)
def test_classification_generated(student, iris):
    """to_classification_tensors on iris-sized data, labels given as int64 and as float64"""
    X, y = iris
    for given in (y, y.astype(np.float64)):
        xt, yt = _pair(student.to_classification_tensors(X, given), "to_classification_tensors")
        expect_tensor(xt, torch.from_numpy(X.astype(np.float32)), name="the features")
        _check_labels(yt, y)


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_first_batch_generated(student, boston, checks):
    """first_batch with the material's batch_size=64 on (506, 13): shapes (64, 13), (64,)"""
    X, y = boston
    features, targets = torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
    b_x, b_y = _pair(student.first_batch(features, targets, 64), "first_batch")
    verdict = checks.which_batch(b_x, features, 64, 0, "first_batch(features, targets, 64)",
                                 first=True)
    assert verdict is None, verdict
    expect_tensor(b_x, features[:64], name="b_x")
    expect_tensor(b_y, targets[:64], name="b_y")


@pytest.mark.points(2)
def test_all_batches(student, tensors, rng, checks):
    """all_batches: the last, smaller batch is kept, and dropped only with drop_last=True"""
    features, labels = tensors
    batch_size = int(rng.integers(8, 21))
    while len(labels) % batch_size == 0:
        batch_size += 1
    for drop_last in (False, True):
        got = student.all_batches(features, labels, batch_size, drop_last=drop_last)
        _check_batches(got, features, labels, batch_size, drop_last,
                       f"all_batches(..., batch_size={batch_size}, drop_last={drop_last})", checks)


@pytest.mark.points(2)
def test_dataset_batches(student, iris, checks):
    """ArrayDataset in a DataLoader: 150 samples in batches of 16, float32 rows, int64 labels"""
    X, y = iris
    got = student.dataset_batches(X, y.astype(np.float64), 16)
    if isinstance(got, list) and len(got) == 1:
        raise AssertionError(
            "one batch only: your __len__ probably returns something other than the number of "
            "samples; the DataLoader asks it how many indices to draw")
    _check_batches(got, torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y), 16, False,
                   "dataset_batches", checks)
