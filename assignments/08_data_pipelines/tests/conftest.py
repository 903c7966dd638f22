"""Inputs shared by the public and hidden tests (no answers live here).

The material loads load_boston and load_iris; the arrays here have their shapes and
dtypes (drawn from the seed, so no download is needed).
"""

from types import SimpleNamespace

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


def _batch_rows(features, batch_size):
    """The batches of a DataLoader with shuffle off: rows [k * batch_size, (k + 1) * batch_size)."""
    return [features[i:i + batch_size] for i in range(0, len(features), batch_size)]


def which_batch(b_x, features, batch_size, index, call, first=False):
    """What is wrong with b_x, batch `index` of `call`, in the lesson's terms (or None).

    `first`: `call` returns one batch only, the first (first_batch).

    Tells apart a batch of the wrong size, another batch of the unshuffled order (the
    material's loop that breaks at `step > 0` has already taken batch 1) and shuffled rows;
    anything else is left to the value comparison.
    """
    if not isinstance(b_x, torch.Tensor) or b_x.dim() != features.dim() or (
            tuple(b_x.shape[1:]) != tuple(features.shape[1:])):
        return None
    n = len(features)
    rows = min(batch_size, n - index * batch_size)
    if b_x.shape[0] != rows:
        if b_x.shape[0] == n:
            return (f"{call} returned all {n} rows, not one batch: take one batch from the "
                    f"DataLoader (for b_x, b_y in loader: ...) with batch_size={batch_size}")
        return (f"{call}: batch {index} has {b_x.shape[0]} rows; with batch_size={batch_size} it "
                f"has {rows}: pass the batch_size you are given to the DataLoader (the "
                "material's 64 and 10 are for its own data)")
    x = b_x.detach().double()
    if torch.allclose(x, features[index * batch_size:index * batch_size + rows].double()):
        return None
    for k, batch in enumerate(_batch_rows(features, batch_size)):
        if k != index and batch.shape == x.shape and torch.allclose(x, batch.double()):
            if first and k == 1:
                return (f"{call} returned the second batch (batch 1, rows {batch_size} to "
                        f"{2 * batch_size - 1}), not the first: the material's loop "
                        "`for step, (b_x, b_y) in enumerate(loader): if step > 0: break` "
                        "assigns b_x, b_y for step 1 before it breaks. Stop after the first "
                        "batch: `return b_x, b_y` inside the loop, break at step 0, or "
                        "b_x, b_y = next(iter(loader))")
            if first:
                return (f"{call} returned batch {k} (rows {k * batch_size} to "
                        f"{k * batch_size + len(batch) - 1}), not the first: stop at the first "
                        "batch the loader gives (`return b_x, b_y` inside the loop, or "
                        "b_x, b_y = next(iter(loader)))")
            return (f"{call}: batch {index} holds the rows of batch {k} (rows {k * batch_size} "
                    f"to {k * batch_size + len(batch) - 1}): the batches are in the dataset's "
                    "order but you skipped or reordered some; keep every batch the loader "
                    "gives, in order")
    data = features.detach().double()
    found = all(bool((data == row).all(dim=1).any()) for row in x)
    if found:
        return (f"{call}: batch {index} holds rows of the data, but not rows {index * batch_size} "
                f"to {index * batch_size + rows - 1} in order: turn shuffling off "
                "(shuffle=False) so the batches follow the dataset's order; the material "
                "shuffles for training, but then a batch cannot be checked row by row")
    return None


@pytest.fixture
def checks():
    """The checks both suites apply to batches (what is right, not answers)."""
    return SimpleNamespace(which_batch=which_batch)
