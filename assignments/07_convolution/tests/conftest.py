"""Inputs shared by the public and hidden tests (no answers live here)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch


def make_image(rng, h=512, w=768):
    """A grayscale test picture as a (1, 1, h, w) float32 tensor in [0, 1].

    The lesson loads a 512x768 photo; here the picture is drawn from the seed instead:
    a smooth background with a few flat rectangles and discs (edges to find) and a
    little noise.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.3 + 0.2 * (xx / w) + 0.1 * (yy / h)
    for _ in range(int(rng.integers(4, 8))):
        y0, x0 = int(rng.integers(0, h - 40)), int(rng.integers(0, w - 40))
        y1, x1 = y0 + int(rng.integers(20, h // 3)), x0 + int(rng.integers(20, w // 3))
        img[y0:y1, x0:x1] = rng.uniform(0.0, 1.0)
    for _ in range(int(rng.integers(2, 5))):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 80)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.0, 1.0)
    img += rng.normal(0.0, 0.01, size=img.shape)
    return torch.from_numpy(np.clip(img, 0, 1).astype(np.float32).reshape(1, 1, h, w))


def make_conv_problem(rng, n=8, c_in=3, size=32, c_out=16, k=3):
    """x (n, c_in, size, size), weight (c_out, c_in, k, k) and bias (c_out,), float32."""
    x = torch.from_numpy(rng.standard_normal((n, c_in, size, size)).astype(np.float32))
    weight = torch.from_numpy(rng.standard_normal((c_out, c_in, k, k)).astype(np.float32))
    bias = torch.from_numpy(rng.standard_normal(c_out).astype(np.float32))
    return x, weight, bias


@pytest.fixture
def image(rng):
    """The test picture drawn from this submission's seed."""
    return make_image(rng)


@pytest.fixture
def conv_problem(rng):
    """make_conv_problem drawing from this submission's seed: conv_problem(n=..., ...)."""
    return lambda **sizes: make_conv_problem(rng, **sizes)


@pytest.fixture
def second_kernel(rng):
    """A random 5x5 kernel for the second output channel (the lesson's random one)."""
    return torch.from_numpy(rng.standard_normal((5, 5)).astype(np.float32))


@pytest.fixture
def small_image():
    """A fixed 10x10 picture with a bright square, the same for everyone (public tests)."""
    img = torch.zeros(1, 1, 10, 10)
    img[0, 0, 3:7, 2:8] = 1.0
    return img


def activation_mistake(name, value, x):
    """What is wrong with activations(x)[name], in the lesson's terms (or None)."""
    import torch.nn.functional as F

    if not isinstance(value, torch.Tensor) or value.shape != x.shape:
        return None
    value = value.detach().to(torch.float64)
    functions = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                 "softplus": F.softplus}
    f = functions[name]

    def same(a, b):
        return bool(torch.allclose(value, a.to(torch.float64), rtol=1e-4, atol=1e-5)) and not bool(
            torch.allclose(value, b.to(torch.float64), rtol=1e-4, atol=1e-5))

    if name == "softplus" and not torch.isfinite(value).all():
        return ("softplus gave inf for large inputs: exp(x) overflows float32 above x = 88, so "
                "log(1 + exp(x)) is inf there; nn.Softplus returns x itself for large x (and "
                "it equals x to float precision), use it or F.softplus")
    if name != "relu" and same(f(torch.relu(x)), f(x)):
        return (f"your {name} was computed on relu(x), not on x: the ReLU changed x in place "
                "(nn.ReLU(inplace=True), torch.relu_ or x.clamp_) before the other activations "
                "saw it; use nn.ReLU() without inplace, so that every activation gets the same x")
    if name == "sigmoid" and same(1 - torch.sigmoid(x), torch.sigmoid(x)):
        return ("your sigmoid is 1 / (1 + exp(x)), the sigmoid of -x: the exponent is -x, "
                "1 / (1 + exp(-x)) (nn.Sigmoid)")
    if name == "tanh" and same(2 * torch.sigmoid(x) - 1, torch.tanh(x)):
        return ("your tanh is 2 * sigmoid(x) - 1, which is tanh(x / 2): tanh(x) is "
                "2 * sigmoid(2x) - 1 (nn.Tanh)")
    return None


@pytest.fixture
def checks():
    """The checks both suites apply (which mistake a wrong answer looks like)."""
    return SimpleNamespace(activation=activation_mistake)
