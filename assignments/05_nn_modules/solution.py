"""Reference solution: nn.Module, nn.Sequential, a hand-written loss and optimizer, nn.Parameter."""

import random

import torch
from torch import nn


class TwoLayerNet(nn.Module):
    """The two-layer ReLU network as a Module: linear1, clamp(min=0), linear2."""

    def __init__(self, D_in, H, D_out):
        """Create the two nn.Linear layers as attributes (so they are registered)."""
        super().__init__()
        self.linear1 = nn.Linear(D_in, H)
        self.linear2 = nn.Linear(H, D_out)

    def forward(self, x):
        """y_pred = linear2(relu(linear1(x)))."""
        h_relu = self.linear1(x).clamp(min=0)
        return self.linear2(h_relu)


def make_sequential(D_in, H, D_out):
    """The same network as nn.Sequential(Linear, ReLU, Linear)."""
    return nn.Sequential(
        nn.Linear(D_in, H),
        nn.ReLU(),
        nn.Linear(H, D_out),
    )


class MSELoss:
    """Mean squared error: the mean over all elements of (outputs - targets) ** 2."""

    def __call__(self, outputs, targets):
        """Return the loss as a 0-dimensional tensor (so it can be back-propagated)."""
        diff = outputs - targets
        return (diff ** 2).mean()


class GradientDescent:
    """Plain gradient descent: param <- param - lr * param.grad."""

    def __init__(self, params, lr):
        """Keep the parameters (as a list: a generator can be iterated only once)."""
        self.params = list(params)
        self.lr = lr

    def zero_grad(self):
        """Set every gradient to zero (backward adds to .grad, it does not overwrite it)."""
        for param in self.params:
            if param.grad is not None:
                param.grad.zero_()

    def step(self):
        """Move every parameter against its gradient, outside the graph."""
        with torch.no_grad():
            for param in self.params:
                if param.grad is not None:
                    param -= self.lr * param.grad


def train(model, x, y, optimizer, criterion, steps):
    """Run `steps` full-batch training steps; return the loss before each step as floats."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return losses


class DynamicNet(nn.Module):
    """input_linear, then middle_linear reused n_middle times, then output_linear."""

    def __init__(self, D_in, H, D_out):
        """Three layers; the middle one is shared by every repetition."""
        super().__init__()
        self.input_linear = nn.Linear(D_in, H)
        self.middle_linear = nn.Linear(H, H)
        self.output_linear = nn.Linear(H, D_out)

    def forward(self, x, n_middle=None):
        """Apply middle_linear + ReLU n_middle times (random 0..3 when not given)."""
        if n_middle is None:
            n_middle = random.randint(0, 3)
        h_relu = self.input_linear(x).clamp(min=0)
        for _ in range(n_middle):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        return self.output_linear(h_relu)


class LinearRegression(nn.Module):
    """y = weight * x + bias, the material's linear_regression with both as nn.Parameter."""

    def __init__(self):
        """nn.Parameter registers each tensor with the module: model.parameters() yields it."""
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1))
        self.bias = nn.Parameter(torch.randn(1))

    def forward(self, x):
        """weight * x + bias, broadcast over x of shape (n, 1)."""
        return x * self.weight + self.bias
