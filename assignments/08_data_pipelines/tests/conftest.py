"""Inputs shared by the public and hidden tests (no answers live here).

The material loads load_boston and load_iris; the arrays here have their shapes and
dtypes (drawn from the seed, so no download is needed).
"""

import numpy as np
import pytest
import torch


def boston_like(rng, n=506, d=13):
    """float64 features (n, d) and float64 targets (n,), like load_boston."""
    return rng.normal(10, 5, (n, d)), rng.uniform(5, 50, n)


def iris_like(rng, n=150, d=4, classes=3):
    """float64 features (n, d) and int64 labels (n,) in 0..classes-1, like load_iris."""
    return rng.uniform(0, 8, (n, d)), rng.integers(0, classes, n).astype(np.int64)


@pytest.fixture
def boston(rng):
    """Boston-shaped regression arrays drawn from this submission's seed."""
    return boston_like(rng)


@pytest.fixture
def iris(rng):
    """Iris-shaped classification arrays drawn from this submission's seed."""
    return iris_like(rng)


@pytest.fixture
def tensors(rng):
    """float32 features and int64 labels, already tensors, with a seed-drawn length."""
    x, y = iris_like(rng, n=int(rng.integers(95, 140)), d=int(rng.integers(3, 9)))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


@pytest.fixture
def small():
    """A fixed small iris-like set (23 rows), the same for everyone (public tests)."""
    return iris_like(np.random.default_rng(2024), n=23)
