"""Inputs shared by the public and hidden tests (no answers live here)."""

import numpy as np
import pytest


def make_problem(rng, n=64, d_in=1000, h=100, d_out=10):
    """Random x, y, w1, w2 of the material's sizes."""
    return (rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out)),
            rng.standard_normal((d_in, h)), rng.standard_normal((h, d_out)))


@pytest.fixture
def problem(rng):
    """x, y, w1, w2 drawn from this submission's seed."""
    return make_problem(rng)


@pytest.fixture
def train_problem(rng):
    """A smaller x, y, w1, w2 from this submission's seed, for checks that call train often."""
    return make_problem(rng, n=16, d_in=40, h=12, d_out=4)


@pytest.fixture
def small_problem():
    """A fixed small problem, the same for everyone (public tests)."""
    return make_problem(np.random.default_rng(2024), n=4, d_in=5, h=3, d_out=2)
