"""Typical mistake: a correct conv2d written as a Python loop over output pixels."""

import torch
import torch.nn.functional as F
from torch import nn


def edge_conv(image, second_kernel):
    """nn.Conv2d(1, 2, (5, 5)) with the edge kernel in channel 0."""
    ker = torch.ones(5, 5) * -1
    ker[2, 2] = 24
    conv2d = nn.Conv2d(1, 2, (5, 5), bias=False)
    conv2d.weight.data[0] = ker.reshape(1, 5, 5)
    conv2d.weight.data[1] = second_kernel.reshape(1, 5, 5)
    return conv2d(image).detach()


def max_pool(features):
    """2x2 max pooling, stride 2."""
    return nn.MaxPool2d(2, stride=2)(features)


def adaptive_avg_pool(features, output_size):
    """Adaptive average pooling."""
    return nn.AdaptiveAvgPool2d(output_size)(features)


def activations(x):
    """The four activations."""
    return {"sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x), "relu": torch.relu(x),
            "softplus": F.softplus(x)}


def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    """Right values, but one small matrix product per output pixel."""
    x = F.pad(x, (padding, padding, padding, padding))
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = torch.zeros(n, c_out, out_h, out_w)
    flat = weight.reshape(c_out, -1)
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = patch.reshape(n, -1) @ flat.T
    if bias is not None:
        out += bias.reshape(1, c_out, 1, 1)
    return out
