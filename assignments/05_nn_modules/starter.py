# %% [markdown]
# # nn.Module, nn.Sequential, losses and an optimizer of your own
#
# The two-layer network of the manual-backprop exercise (batch N=64, input D_in=1000,
# hidden H=100, output D_out=10), now built from `torch.nn`:
#
#     h_relu = linear1(x).clamp(min=0);  y_pred = linear2(h_relu)
#
# Unlike the NumPy version, each `nn.Linear` has a bias. Write:
#
# 1. `TwoLayerNet(D_in, H, D_out)`: an `nn.Module` with the attributes `linear1` and
#    `linear2` (these names: the grader loads weights by them) and the forward pass above.
# 2. `make_sequential(D_in, H, D_out)`: the same network as an `nn.Sequential` of
#    Linear, ReLU, Linear, in that order.
# 3. `MSELoss`: a loss object; `MSELoss()(outputs, targets)` returns the **mean** of the
#    squared differences as a 0-dimensional tensor (like `nn.MSELoss()`, whose default
#    reduction is the mean), computed with tensor operations so that `loss.backward()` reaches
#    the model (no `.item()`, `.detach()` or NumPy inside). Write it yourself: `nn.MSELoss`
#    and `F.mse_loss` are not allowed.
# 4. `GradientDescent(params, lr)`: an optimizer with `zero_grad()` (set every gradient to
#    zero: `backward()` adds to `.grad`, it does not overwrite it) and `step()` (every
#    parameter moves by `- lr * param.grad`, inside `torch.no_grad()`). `params` may be a
#    generator such as `model.parameters()`: keep it as a list (a generator can be iterated
#    only once). `torch.optim.SGD` is not allowed. The grader calls
#    `GradientDescent(model.parameters(), lr=...)` on a network of its own and runs the loop
#    itself: `zero_grad()`, loss, `backward()`, `step()`.
# 5. `train(model, x, y, optimizer, criterion, steps)`: `steps` full-batch steps of the
#    lesson's loop (zero the gradients, predict, compute the loss, backward, step); return
#    the list of the losses (Python floats, `loss.item()`), the loss of step t being computed
#    before step t's update. Use the objects you are given: the grader tests `train` on its
#    own, with a model and a loss from torch (an `nn.Sequential` and `nn.L1Loss()`), not your
#    TwoLayerNet and MSELoss, and with your `GradientDescent` as the optimizer where it works
#    (torch's plain gradient descent where it does not), so a mistake in one of your classes
#    costs only that class's tests.
# 6. `DynamicNet(D_in, H, D_out)`: the dynamic graph with weight sharing. It has
#    `input_linear` (D_in -> H), `middle_linear` (H -> H) and `output_linear` (H -> D_out).
#    `forward(x, n_middle=None)` applies `input_linear` and a ReLU, then `middle_linear` and
#    a ReLU `n_middle` times (the **same** layer each time: that is the weight sharing),
#    then `output_linear`. When `n_middle` is None, draw it with `random.randint(0, 3)`, so
#    every forward pass may build a different graph.
# 7. `LinearRegression()`: the material's linear regression y = weight * x + bias as an
#    `nn.Module`, for x of shape (n, 1). `weight` and `bias` have shape (1,) and must both be
#    **parameters** of the module. The material writes
#    `self.weight = torch.randn(1, requires_grad=True)`: a plain tensor attribute, which
#    `nn.Module` does not register (it registers only `nn.Parameter` attributes and
#    sub-modules), so `model.parameters()` skips it and an optimizer built from
#    `model.parameters()` never updates it (the material gets away with it only because it
#    passes `model.weight, model.bias` to its optimizer by hand). Wrap both in
#    `nn.Parameter(...)`. The grader checks `state_dict()` and trains the model with an
#    optimizer built from `model.parameters()`.

# %%
import random  # noqa: F401  (DynamicNet draws n_middle with random.randint)

import torch  # noqa: F401
from torch import nn


# %%
class TwoLayerNet(nn.Module):
    """The two-layer ReLU network as a Module: linear1, clamp(min=0), linear2."""

    def __init__(self, D_in, H, D_out):
        """Create self.linear1 (D_in -> H) and self.linear2 (H -> D_out)."""
        super().__init__()
        raise NotImplementedError("TwoLayerNet: create self.linear1 and self.linear2 with nn.Linear")

    def forward(self, x):
        """Return linear2(linear1(x).clamp(min=0))."""
        raise NotImplementedError("TwoLayerNet.forward: linear1, clamp(min=0), linear2")


# %%
def make_sequential(D_in, H, D_out):
    """Return nn.Sequential(Linear(D_in, H), ReLU(), Linear(H, D_out))."""
    raise NotImplementedError("make_sequential: nn.Sequential of Linear, ReLU, Linear")


# %%
class MSELoss:
    """Mean squared error, written by hand."""

    def __call__(self, outputs, targets):
        """Return the mean of (outputs - targets) ** 2 as a 0-dimensional tensor."""
        raise NotImplementedError("MSELoss: the mean over all elements of (outputs - targets) ** 2")


# %%
class GradientDescent:
    """Plain gradient descent with zero_grad() and step()."""

    def __init__(self, params, lr):
        """Keep list(params) and the learning rate."""
        raise NotImplementedError("GradientDescent: store list(params) and lr")

    def zero_grad(self):
        """Zero every parameter's gradient."""
        raise NotImplementedError("zero_grad: param.grad.zero_() for each parameter with a grad")

    def step(self):
        """param -= lr * param.grad for every parameter, under torch.no_grad()."""
        raise NotImplementedError("step: with torch.no_grad(): param -= self.lr * param.grad")


# %%
def train(model, x, y, optimizer, criterion, steps):
    """Run `steps` training steps; return the loss (a float) of every step."""
    raise NotImplementedError("train: loop: zero_grad, predict, loss, backward, step")


# %%
class DynamicNet(nn.Module):
    """input_linear, then middle_linear applied n_middle times, then output_linear."""

    def __init__(self, D_in, H, D_out):
        """Create input_linear, middle_linear and output_linear."""
        super().__init__()
        raise NotImplementedError("DynamicNet: create input_linear, middle_linear, output_linear")

    def forward(self, x, n_middle=None):
        """Reuse middle_linear n_middle times (random.randint(0, 3) when None)."""
        raise NotImplementedError("DynamicNet.forward: reuse self.middle_linear in a for loop")


# %%
class LinearRegression(nn.Module):
    """y = weight * x + bias with weight and bias registered as nn.Parameter."""

    def __init__(self):
        """Create self.weight and self.bias, each nn.Parameter(torch.randn(1))."""
        super().__init__()
        raise NotImplementedError("LinearRegression: self.weight and self.bias as nn.Parameter")

    def forward(self, x):
        """Return weight * x + bias."""
        raise NotImplementedError("LinearRegression.forward: x * self.weight + self.bias")
