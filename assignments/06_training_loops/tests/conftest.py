"""Training and held-out data for the public and hidden tests (no answers live here).

Each fixture draws a training set, which is sent to the student's `train_*` function,
and a held-out set from the same distribution, which stays on the trusted side and
scores the returned weights.
"""

import numpy as np
import pytest
import torch


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


def linear_data(rng, n, w, b, noise=0.05):
    """x uniform in [0, 1), y = w * x + b + a little noise; both (n, 1) float32."""
    x = rng.uniform(0, 1, (n, 1))
    return _t(x), _t(w * x + b + rng.normal(0, noise, (n, 1)))


def quadratic_data(rng, n, a=3.0, c=2.0, grid=False):
    """y = a * x^2 + c + 0.2 * uniform noise, x on a grid of [-1, 1] (or uniform)."""
    x = np.linspace(-1, 1, n).reshape(n, 1) if grid else rng.uniform(-1, 1, (n, 1))
    return _t(x), _t(a * x ** 2 + c + 0.2 * rng.uniform(0, 1, (n, 1)))


def cluster_data(rng, n, mu0, mu1):
    """n points of class 0 around mu0 and n of class 1 around mu1 (std 1); y is (2n, 1)."""
    x = np.concatenate([rng.normal(mu0, 1, (n, 2)), rng.normal(mu1, 1, (n, 2))])
    y = np.concatenate([np.zeros((n, 1)), np.ones((n, 1))])
    return _t(x), _t(y)


@pytest.fixture
def linear_problem(rng):
    """(x, y) to train on and (x, y) held out, for a line drawn from the seed."""
    w, b = rng.uniform(1, 3), rng.uniform(0, 1)
    return linear_data(rng, 100, w, b), linear_data(rng, 1000, w, b)


@pytest.fixture
def quadratic_problem(rng):
    """The quadratic fit with a and c drawn from the seed; 100 grid points to train on."""
    a, c = rng.uniform(2, 4), rng.uniform(1, 3)
    return quadratic_data(rng, 100, a, c, grid=True), quadratic_data(rng, 1000, a, c)


@pytest.fixture
def cluster_problem(rng):
    """Two Gaussian clusters 4.8 apart, in a direction and place drawn from the seed."""
    angle = rng.uniform(0, 2 * np.pi)
    shift = 2.4 * np.array([np.cos(angle), np.sin(angle)])
    centre = rng.uniform(-1.5, 1.5, 2)
    mu0, mu1 = centre + shift, centre - shift
    return cluster_data(rng, 100, mu0, mu1), cluster_data(rng, 1000, mu0, mu1)


@pytest.fixture
def material_problems():
    """The material's own data sets, the same for everyone (public tests)."""
    rng = np.random.default_rng(100)
    return {
        # x = torch.rand(100, 1); y = 2 * x + torch.rand(1)
        "linear": (linear_data(rng, 100, 2.0, 0.3), linear_data(rng, 500, 2.0, 0.3)),
        # x = linspace(-1, 1, 100); y = 3 * x^2 + 2 + 0.2 * rand
        "quadratic": (quadratic_data(rng, 100, grid=True), quadratic_data(rng, 500)),
        # x0 = normal(1.7, 1) + 1 (class 0), x1 = normal(-1.7, 1) + 1 (class 1)
        "logistic": (cluster_data(rng, 100, 2.7, -0.7), cluster_data(rng, 500, 2.7, -0.7)),
    }
