"""Inputs shared by the public and hidden tests (no answers live here)."""

import numpy as np
import pytest
import torch

# The material's sizes: batch, input, hidden, output.
N, D_IN, H, D_OUT = 64, 1000, 100, 10


def _linear(rng, fan_in, fan_out):
    """Weight (fan_out, fan_in) and bias (fan_out,), float32, uniform like nn.Linear's init."""
    bound = 1.0 / np.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
    bias = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return torch.from_numpy(weight), torch.from_numpy(bias)


def make_weights(rng, names, sizes):
    """A state_dict: for each layer name, its weight and bias for (fan_in, fan_out)."""
    state = {}
    for name, (fan_in, fan_out) in zip(names, sizes, strict=True):
        state[f"{name}.weight"], state[f"{name}.bias"] = _linear(rng, fan_in, fan_out)
    return state


def make_data(rng, n=N, d_in=D_IN, d_out=D_OUT):
    """x (n, d_in) and y (n, d_out), float32 standard normal, as in the material."""
    x = torch.from_numpy(rng.standard_normal((n, d_in)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((n, d_out)).astype(np.float32))
    return x, y


@pytest.fixture
def two_layer_weights(rng):
    """TwoLayerNet weights of the material's sizes, drawn from this submission's seed."""
    return make_weights(rng, ["linear1", "linear2"], [(D_IN, H), (H, D_OUT)])


@pytest.fixture
def data(rng):
    """x (64, 1000) and y (64, 10) drawn from this submission's seed."""
    return make_data(rng)


@pytest.fixture
def small_weights():
    """Fixed TwoLayerNet(4, 3, 2) weights, the same for everyone (public tests)."""
    return make_weights(np.random.default_rng(2024), ["linear1", "linear2"], [(4, 3), (3, 2)])


@pytest.fixture
def small_data():
    """Fixed x (5, 4) and y (5, 2), the same for everyone (public tests)."""
    return make_data(np.random.default_rng(7), n=5, d_in=4, d_out=2)
