# %% [markdown]
# # Convolution, pooling and activations
#
# **Convolution.** A convolution layer slides a small kernel over its input and, at each
# position, sums the products of the kernel with the patch under it; each kernel gives
# one feature map. The lesson turns a 512x768 grayscale picture into a tensor of shape
# (1, 1, 512, 768) and convolves it with `nn.Conv2d(1, 2, (5, 5), bias=False)`:
#
#     kersize = 5
#     ker = torch.ones(kersize, kersize, dtype=torch.float32) * -1
#     ker[2, 2] = 24
#     ker = ker.reshape((1, 1, kersize, kersize))
#     conv2d = nn.Conv2d(1, 2, (kersize, kersize), bias=False)
#     conv2d.weight.data[0] = ker
#     imconv2dout = conv2d(myimgray_t)      # shape (1, 2, 508, 764)
#
# Output channel 0 uses the edge (contour) kernel above: it sums to 0, so flat regions
# become 0 and edges stand out. In the lesson channel 1 keeps its random weights; here
# `edge_conv` receives that second 5x5 kernel as an argument, so your output can be checked.
#
# **Pooling.** `nn.MaxPool2d(2, stride=2)` keeps the largest value of each 2x2 block, so
# (1, 2, 508, 764) becomes (1, 2, 254, 382). `nn.AdaptiveAvgPool2d(output_size)` averages
# regions chosen so that the output has exactly `output_size`, whatever the input size.
#
# **Activations.** Sigmoid 1 / (1 + exp(-x)), Tanh, ReLU max(0, x) and Softplus
# log(1 + exp(x)), the smooth ReLU. The lesson plots them on `torch.linspace(-6, 6, 100)`;
# `activations(x)` is tested there and on 1-D float32 inputs far outside it, from -100 to
# 100, where `exp(x)` overflows float32 (above x = 88), so Softplus must not be computed
# as a plain log(1 + exp(x)) (`nn.Softplus` handles it). All four get the same x: do not
# change x in place (`nn.ReLU(inplace=True)` would).
#
# **Your own conv2d.** `my_conv2d(x, weight, bias=None, stride=1, padding=0)` must give
# what `F.conv2d` gives for NCHW input `x` and a (C_out, C_in, kH, kW) `weight`: a
# cross-correlation (the kernel is not flipped), zero padding on all four sides, and
# `bias[c]` added to output channel c. It must be **vectorised**: it is timed against a
# reference built from `F.unfold` and one matrix product, and a Python loop over output
# pixels is far too slow. `F.conv2d` and `torch.conv2d` are not allowed in this file.
#
# Return float32 tensors; nothing you return needs gradients.

# %%
import torch
import torch.nn.functional as F
from torch import nn


# %%
def edge_conv(image, second_kernel):
    """Return nn.Conv2d(1, 2, (5, 5), bias=False) applied to the (1, 1, H, W) image.

    Output channel 0 uses the lesson's edge kernel (-1 everywhere, 24 in the centre),
    channel 1 uses second_kernel (a (5, 5) tensor). The result has shape (1, 2, H-4, W-4).
    """
    raise NotImplementedError("edge_conv: build nn.Conv2d(1, 2, (5, 5), bias=False) and set "
                              "conv2d.weight.data[0] and [1]")


# %%
def max_pool(features):
    """Return 2x2 max pooling with stride 2 of an (N, C, H, W) tensor."""
    raise NotImplementedError("max_pool: nn.MaxPool2d(2, stride=2)")


# %%
def adaptive_avg_pool(features, output_size):
    """Return adaptive average pooling of an (N, C, H, W) tensor to output_size (h, w)."""
    raise NotImplementedError("adaptive_avg_pool: nn.AdaptiveAvgPool2d(output_size)")


# %%
def activations(x):
    """Return {"sigmoid": ..., "tanh": ..., "relu": ..., "softplus": ...} applied to x."""
    raise NotImplementedError("activations: nn.Sigmoid, nn.Tanh, nn.ReLU and nn.Softplus")


# %%
def my_conv2d(x, weight, bias=None, stride=1, padding=0):
    """Return the conv2d of NCHW x with weight (C_out, C_in, kH, kW), like F.conv2d.

    The output has shape (N, C_out, (H + 2*padding - kH) // stride + 1,
    (W + 2*padding - kW) // stride + 1). No Python loops over output pixels.
    """
    raise NotImplementedError("my_conv2d: F.unfold(x, (kH, kW), padding=..., stride=...) "
                              "gives every patch as a column; multiply by the flattened weight")
