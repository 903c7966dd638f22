# %% [markdown]
# # Manual backprop in NumPy: a two-layer ReLU network
#
# A fully connected ReLU network with one hidden layer and no biases, trained to
# predict y from x by minimising the squared Euclidean distance (the sum of squared
# errors). The material's sizes: batch N=64, input D_in=1000, hidden H=100, output D_out=10.
#
#     h = x.dot(w1);  h_relu = max(h, 0);  y_pred = h_relu.dot(w2)
#     loss = sum((y_pred - y) ** 2)
#
# Implement the forward pass, the loss, the gradients of the loss with respect to w1
# and w2 **by hand** (the chain rule, in NumPy only: torch and autograd are not allowed),
# and gradient descent. Return NumPy float64 arrays. Do not change the arguments in place:
# the caller still needs its arrays afterwards (the grader checks them after your calls).

# %%
import numpy as np


# %%
def forward(x, w1, w2):
    """Return y_pred = relu(x @ w1) @ w2, of shape (N, D_out)."""
    raise NotImplementedError("forward: compute h = x.dot(w1), apply ReLU, multiply by w2")


# %%
def loss(y_pred, y):
    """Return the sum of squared errors as a Python float."""
    raise NotImplementedError("loss: the sum over all elements of (y_pred - y) ** 2")


# %%
def backward(x, y, w1, w2):
    """Return (grad_w1, grad_w2): the gradients of loss(forward(x, w1, w2), y)."""
    raise NotImplementedError("backward: apply the chain rule from the loss back to w1 and w2")


# %%
def train(x, y, w1, w2, learning_rate=1e-6, steps=500):
    """Run `steps` steps of gradient descent from copies of w1, w2.

    Start from copies (w1.copy(), w2.copy()): the caller's w1 and w2 must be unchanged
    afterwards. Return (w1, w2, losses): the trained weights and a list with one loss a
    step, where losses[t] is the loss of the forward pass that step t's update then uses,
    measured before that update (as the material prints it), so losses[0] is the loss of
    the starting weights.
    """
    raise NotImplementedError("train: loop: loss, backward, w -= learning_rate * grad")

