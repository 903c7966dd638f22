"""Inputs shared by the public and hidden tests (no answers live here)."""

import pytest
import torch


@pytest.fixture
def gen(seed):
    """A torch Generator seeded with this submission's secret seed."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def quadratic_problem(gen):
    """The material's data from this submission's seed: x in [-1, 1], y = 3x^2 + 2 + noise,
    and starting values w, b in [0, 1) of shape (1, 1)."""
    x = torch.unsqueeze(torch.linspace(-1, 1, 100), dim=1)
    y = 3 * x.pow(2) + 2 + 0.2 * torch.rand(x.size(), generator=gen)
    w = torch.rand(1, 1, generator=gen)
    b = torch.rand(1, 1, generator=gen)
    return x, y, w, b


@pytest.fixture
def scalars(gen):
    """x, w, b of shape (1,) as in the material's z = w * x + b (x away from zero)."""
    x = torch.rand(1, generator=gen) * 8 + 1
    w = torch.randn(1, generator=gen)
    b = torch.randn(1, generator=gen)
    return x, w, b
