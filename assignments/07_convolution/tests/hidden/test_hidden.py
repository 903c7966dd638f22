"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.checks import expect_tensor


@pytest.mark.points(1)
def test_edge_conv_generated(student, reference, image, second_kernel):
    """edge_conv on a 512x768 picture: output (1, 2, 508, 764), edges in channel 0"""
    got = student.edge_conv(image, second_kernel)
    expected = reference.edge_conv(image, second_kernel)
    if isinstance(got, torch.Tensor) and got.shape == (1, 2, 510, 766):
        raise AssertionError(
            "your output is (1, 2, 510, 766), what a 3x3 kernel gives; the lesson's edge "
            "kernel is 5x5 (-1 everywhere, 24 in the centre), so 512x768 becomes 508x764")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        channel_1_right = torch.allclose(got[0, 1], expected[0, 1], rtol=1e-4, atol=1e-3)
        channel_0_right = torch.allclose(got[0, 0], expected[0, 0], rtol=1e-4, atol=1e-3)
        assert channel_0_right or not channel_1_right, (
            "channel 0 is not the edge map: its 5x5 kernel must be -1 everywhere and 24 in the "
            "centre, so that it sums to 0 and a flat region of the picture gives 0")
    expect_tensor(got, expected, name="edge_conv(image, second_kernel)", rtol=1e-4, atol=1e-3)


@pytest.mark.points(1)
def test_pools_generated(student, reference, rng):
    """max_pool and adaptive_avg_pool on generated feature maps"""
    h, w = int(rng.integers(40, 90)) * 2, int(rng.integers(40, 90)) * 2
    features = torch.from_numpy(rng.standard_normal((2, 3, h, w)).astype(np.float32))
    pooled = student.max_pool(features)
    if isinstance(pooled, torch.Tensor) and pooled.shape == (2, 3, h - 1, w - 1):
        raise AssertionError(
            f"max_pool gave shape {tuple(pooled.shape)}: that is a 2x2 window moved one "
            "pixel at a time (stride=1); MaxPool2d(2, stride=2) moves it two pixels and "
            f"halves each side, ({h}, {w}) -> ({h // 2}, {w // 2})")
    expect_tensor(pooled, reference.max_pool(features), name="max_pool(features)")
    size = (int(rng.integers(3, 12)), int(rng.integers(3, 12)))
    avg = student.adaptive_avg_pool(features, size)
    if isinstance(avg, torch.Tensor) and avg.shape == (2, 3, *size):
        assert not torch.allclose(avg, F.adaptive_max_pool2d(features, size)), (
            "adaptive_avg_pool took the maximum of each region; AdaptiveAvgPool2d averages it")
    expect_tensor(avg, reference.adaptive_avg_pool(features, size),
                  name=f"adaptive_avg_pool(features, {size})")


@pytest.mark.points(1)
def test_activations_generated(student, reference, rng, checks):
    """activations on generated inputs from -100 to 100, large ones included"""
    x = torch.from_numpy(np.concatenate([rng.uniform(-100, 100, 200),
                                         rng.normal(0, 3, 200)]).astype(np.float32))
    got = student.activations(x)
    assert isinstance(got, dict), "activations should return a dict from name to tensor"
    expected = reference.activations(x.clone())
    for name, want in expected.items():
        assert name in got, f"activations should have the key {name!r}"
        mistake = checks.activation(name, got[name], x)
        assert mistake is None, mistake
        expect_tensor(got[name], want, name=f"activations(x)[{name!r}]")


@pytest.mark.points(2)
@pytest.mark.visibility("after_due_date")
def test_my_conv2d_generated(student, rng, conv_problem):
    """my_conv2d matches F.conv2d: several channels, bias, stride 2, padding 1"""
    x, weight, bias = conv_problem(n=4, c_in=3, size=int(rng.integers(17, 30)),
                                        c_out=5, k=3)
    got = student.my_conv2d(x, weight, bias, stride=2, padding=1)
    expected = F.conv2d(x, weight, bias, stride=2, padding=1)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        if torch.allclose(got, F.conv2d(x, weight.flip(-1, -2), bias, 2, 1), atol=1e-4):
            raise AssertionError(
                "you flipped the kernel: PyTorch's conv2d is a cross-correlation, so the kernel "
                "is laid on each patch as it is, without turning it around")
        if torch.allclose(got, F.conv2d(x, weight, None, 2, 1), atol=1e-4):
            raise AssertionError("my_conv2d ignored the bias: add bias[c] to output channel c")
    elif isinstance(got, torch.Tensor):
        raise AssertionError(
            f"my_conv2d gave shape {tuple(got.shape)}; with stride 2 and padding 1 the output "
            f"is {tuple(expected.shape)}: out = (in + 2 * padding - k) // stride + 1")
    expect_tensor(got, expected, name="my_conv2d(x, weight, bias, stride=2, padding=1)",
                  rtol=1e-4, atol=1e-4)
    # non-square kernel and no padding: the width and height must not be swapped
    x, weight, bias = conv_problem(n=2, c_in=2, size=15, c_out=3, k=1)
    weight = torch.from_numpy(rng.standard_normal((3, 2, 2, 4)).astype(np.float32))
    got = student.my_conv2d(x, weight, bias)
    expected = F.conv2d(x, weight, bias)
    if isinstance(got, torch.Tensor) and got.shape == (2, 3, 12, 14):
        raise AssertionError(
            "my_conv2d with a 2x4 kernel (kH = 2, kW = 4) on a 15x15 input gave shape "
            "(2, 3, 12, 14), height and width swapped: the output height comes from kH, "
            "(H + 2 * padding - kH) // stride + 1 = 14, and the width from kW, 12")
    expect_tensor(got, expected, name="my_conv2d with a 2x4 kernel", rtol=1e-4, atol=1e-4)


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_my_conv2d_vectorised(student, timing, conv_problem):
    """my_conv2d is vectorised: about as fast as unfold + matmul on (2, 3, 64, 64)"""
    # small batch and few output channels: the loop's cost is per output pixel, while the
    # result crosses the pipe inside the timed call, so a large output would dilute the ratio
    x, weight, bias = conv_problem(n=2, c_in=3, size=64, c_out=8)
    got = student.my_conv2d(x, weight, bias, 1, 1)
    assert isinstance(got, torch.Tensor) and got.shape == (2, 8, 64, 64), (
        "my_conv2d(x, weight, bias, 1, 1) should return a tensor of shape (2, 8, 64, 64) "
        "for x of shape (2, 3, 64, 64) and 3x3 kernels; yours gave "
        f"{getattr(got, 'shape', type(got).__name__)}")
    # Every timed answer is checked, so speed counts only for right values; a wrong one is
    # said here in those terms (the other my_conv2d tests say what is wrong with it).
    assert torch.allclose(got, F.conv2d(x, weight, bias, 1, 1), rtol=1e-4, atol=1e-4), (
        "the speed of my_conv2d counts only once its values are right, and they are not yet: "
        "the other my_conv2d tests say what differs")
    # each timed call gets a new problem of the same sizes
    timing.check("conv2d", "my_conv2d",
                 lambda: (*conv_problem(n=2, c_in=3, size=64, c_out=8), 1, 1), rtol=1e-4, atol=1e-4)
