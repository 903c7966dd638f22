"""Not a mistake: a conv2d as a loop over the kernel offsets, each a whole-tensor product.

It must keep full marks: about 3x the reference, within the 6x limit.
"""

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
    """A loop over the kernel offsets with whole-tensor products."""
    x = F.pad(x, (padding,) * 4)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = torch.zeros(n, c_out, oh, ow)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += torch.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out
