"""Inputs shared by the public and hidden tests (no answers live here)."""

import numpy as np
import pytest
import torch


@pytest.fixture
def matrix(seed):
    """A random float32 matrix from this submission's seed, with positive and negative entries."""
    gen = torch.Generator().manual_seed(seed)
    rows, cols = (int(v) for v in torch.randint(3, 7, (2,), generator=gen))
    return torch.randn(rows, cols, generator=gen)


@pytest.fixture
def blocks(rng):
    """a (k1, p, q) and b (k2, p, q) int64 blocks with k1 != k2, and s with size-1 axes."""
    k1, k2 = (int(v) for v in rng.choice(np.arange(2, 6), size=2, replace=False))
    p, q = (int(v) for v in rng.integers(2, 5, size=2))
    a = torch.from_numpy(rng.integers(-50, 50, size=(k1, p, q)))
    b = torch.from_numpy(rng.integers(-50, 50, size=(k2, p, q)))
    s = torch.from_numpy(rng.standard_normal((1, p, 1, q)).astype(np.float32))
    return a, b, s


@pytest.fixture
def columns(rng):
    """A of shape (n, 1) and B of shape (m,) with n != m, int32 as in the material."""
    n, m = (int(v) for v in rng.choice(np.arange(2, 7), size=2, replace=False))
    A = torch.from_numpy(rng.integers(0, 100, size=(n, 1)).astype(np.int32))
    B = torch.from_numpy(rng.integers(0, 100, size=(m,)).astype(np.int32))
    return A, B
