"""Public tests: run them with `grader check`."""

import pytest
import torch
import torch.nn.functional as F

from grader.checks import expect_tensor


def _edge_kernel():
    ker = -torch.ones(5, 5)
    ker[2, 2] = 24
    return ker


@pytest.mark.points(1)
def test_edge_conv_small(student, small_image):
    """edge_conv: a bright square on a dark 10x10 picture"""
    second = torch.arange(25, dtype=torch.float32).reshape(5, 5) / 25
    got = student.edge_conv(small_image, second)
    assert getattr(got, "shape", None) != (1, 2, 8, 8), (
        "your output is (1, 2, 8, 8), what a 3x3 kernel gives; the lesson's edge kernel is "
        "5x5 (-1 everywhere, 24 in the centre), so a 10x10 picture becomes 6x6")
    weight = torch.stack([_edge_kernel(), second]).reshape(2, 1, 5, 5)
    expect_tensor(got, F.conv2d(small_image, weight), name="edge_conv(image, second_kernel)")


@pytest.mark.points(1)
def test_pool_shapes(student):
    """max_pool and adaptive_avg_pool: the lesson's shapes (1, 2, 508, 764) -> (254, 382)"""
    features = torch.linspace(-1, 1, 2 * 508 * 764).reshape(1, 2, 508, 764)
    pooled = student.max_pool(features)
    assert getattr(pooled, "shape", None) == (1, 2, 254, 382), (
        f"max_pool gave shape {tuple(getattr(pooled, 'shape', ()))}; MaxPool2d(2, stride=2) "
        "halves each side, so (1, 2, 508, 764) becomes (1, 2, 254, 382)")
    expect_tensor(pooled, features[:, :, 1::2, 1::2], name="max_pool(features)")
    avg = student.adaptive_avg_pool(features[:, :, :8, :8], (2, 2))
    expected = features[:, :, :8, :8].reshape(1, 2, 2, 4, 2, 4).mean(dim=(3, 5))
    if isinstance(avg, torch.Tensor) and avg.shape == expected.shape:
        assert not torch.allclose(avg, F.adaptive_max_pool2d(features[:, :, :8, :8], (2, 2))), (
            "adaptive_avg_pool took the maximum of each region; AdaptiveAvgPool2d averages it")
    expect_tensor(avg, expected, name="adaptive_avg_pool(features, (2, 2))")


@pytest.mark.points(1)
def test_activations_linspace(student, checks):
    """activations: Sigmoid, Tanh, ReLU and Softplus on torch.linspace(-6, 6, 100)"""
    x = torch.linspace(-6, 6, 100)
    got = student.activations(x)
    assert isinstance(got, dict), "activations should return a dict from name to tensor"
    expected = {"sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x), "relu": torch.relu(x),
                "softplus": F.softplus(x)}
    for name, want in expected.items():
        assert name in got, f"activations should have the key {name!r}"
        mistake = checks.activation(name, got[name], x)
        assert mistake is None, mistake
        expect_tensor(got[name], want, name=f"activations(x)[{name!r}]")


@pytest.mark.points(1)
def test_my_conv2d_small(student):
    """my_conv2d: one channel, one 3x3 kernel, stride 1, no padding"""
    x = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)
    weight = torch.tensor([[[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, 0.0]]]])
    got = student.my_conv2d(x, weight)
    if isinstance(got, torch.Tensor) and got.shape == (1, 1, 4, 4):
        flipped = F.conv2d(x, weight.flip(-1, -2))
        assert not torch.allclose(got, flipped), (
            "you flipped the kernel: PyTorch's conv2d is a cross-correlation, so the kernel "
            "is laid on each patch as it is, without turning it around")
    expect_tensor(got, F.conv2d(x, weight), name="my_conv2d(x, weight)")
