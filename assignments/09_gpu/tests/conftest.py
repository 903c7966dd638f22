"""Inputs shared by the public and hidden tests (no answers live here)."""

import numpy as np
import pytest
import torch


def make_state(rng, d_in=1000, h=100, d_out=10):
    """Weights for nn.Sequential(nn.Linear(d_in, h), nn.ReLU(), nn.Linear(h, d_out))."""
    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return torch.from_numpy(rng.uniform(-bound, bound, shape).astype(np.float32))

    return {"0.weight": uniform((h, d_in), d_in), "0.bias": uniform((h,), d_in),
            "2.weight": uniform((d_out, h), h), "2.bias": uniform((d_out,), h)}


def make_matrices(rng, n=10000, k=1000, m=2000):
    """a (n, k) and b (k, m), float32 standard normal: the lesson's 10000x1000 @ 1000x2000."""
    a = torch.from_numpy(rng.standard_normal((n, k), dtype=np.float32))
    b = torch.from_numpy(rng.standard_normal((k, m), dtype=np.float32))
    return a, b


@pytest.fixture
def cuda():
    """'cuda', or the test is skipped (scored zero, said plainly) where there is no GPU."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: this machine has none, so this GPU check was not "
                    "run (the course grades it on the GPU queue)")
    return "cuda"


@pytest.fixture
def batch(rng):
    """The course's sizes: weights for 1000 -> 100 -> 10 and x of shape (64, 1000)."""
    x = torch.from_numpy(rng.standard_normal((64, 1000), dtype=np.float32))
    return make_state(rng), x


@pytest.fixture
def small_matrices(rng):
    """a (500, 200) and b (200, 300) drawn from the seed: quick on a CPU."""
    return make_matrices(rng, 500, 200, 300)


@pytest.fixture
def lesson_matrices(rng):
    """a (10000, 1000) and b (1000, 2000) drawn from the seed: the lesson's GPU test."""
    return make_matrices(rng)
