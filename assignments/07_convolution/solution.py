"""Reference solution: convolution, pooling and activations, and a conv2d of our own."""

import torch
import torch.nn.functional as F
from torch import nn


def edge_kernel():
    """The lesson's 5x5 edge (contour) kernel: -1 everywhere, 24 in the centre."""
    ker = torch.ones(5, 5, dtype=torch.float32) * -1
    ker[2, 2] = 24
    return ker


def edge_conv(image, second_kernel):
    """Convolve a (1, 1, H, W) image with nn.Conv2d(1, 2, (5, 5), bias=False).

    Output channel 0 uses the edge kernel, channel 1 uses second_kernel.
    """
    conv2d = nn.Conv2d(1, 2, (5, 5), bias=False)
    conv2d.weight.data[0] = edge_kernel().reshape(1, 5, 5)
    conv2d.weight.data[1] = second_kernel.reshape(1, 5, 5)
    with torch.no_grad():
        return conv2d(image)


def max_pool(features):
    """2x2 max pooling with stride 2."""
    return nn.MaxPool2d(2, stride=2)(features)


def adaptive_avg_pool(features, output_size):
    """Average pooling to a fixed output size, whatever the input size."""
    return nn.AdaptiveAvgPool2d(output_size)(features)


def activations(x):
    """The four activations of the lesson applied to x, by name."""
    return {
        "sigmoid": nn.Sigmoid()(x),
        "tanh": nn.Tanh()(x),
        "relu": nn.ReLU()(x),
        "softplus": nn.Softplus()(x),
    }


def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    """conv2d (a cross-correlation) of NCHW x with (C_out, C_in, kH, kW) weight.

    Vectorised: unfold every kH x kW patch into a column, then one matrix product.
    """
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    out_h = (h + 2 * padding - kh) // stride + 1
    out_w = (w + 2 * padding - kw) // stride + 1
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, C_in*kH*kW, L)
    out = weight.reshape(c_out, -1) @ cols  # (N, C_out, L)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1)
    return out.reshape(n, c_out, out_h, out_w)
