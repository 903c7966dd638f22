# %% [markdown]
# # Autograd and the computational graph
#
# Every operation on tensors that require gradients is recorded in a graph. The tensors
# you create yourself are its **leaves** (`is_leaf` is True, `grad_fn` is None); tensors
# computed from them carry a `grad_fn` naming the operation that made them (`MulBackward0`,
# `AddBackward0`, ...). Calling `backward()` on a result walks the graph back and
# **adds** each leaf's gradient into its `.grad`; the graph's buffers are freed afterwards
# unless you pass `retain_graph=True`, and non-leaf tensors keep no `.grad` unless you
# call `retain_grad()` on them first.
#
# The grader cannot look at your graph from outside, so each function returns data:
# gradients, flags, names. Unless a section says otherwise (sections 4, 6 and 7 do), the
# input tensors arrive **without** `requires_grad`; where a function needs a leaf that
# requires gradients, make one with `w = w.clone().requires_grad_(True)`.

# %%
import torch

# %% [markdown]
# ## 1. y = sum(x^2 + 2x + 1)
#
# The material's example: with `x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])`,
# `y = torch.sum(x**2 + 2*x + 1)` is 54, and `y.backward()` leaves the gradient
# `2x + 2` = [[4.], [6.], [8.], [10.]] in `x.grad` (same shape as x).
# Return `(y.item(), x.grad)`.

# %%
def quadratic_grad(x):
    """Return (y as a Python float, dy/dx) for y = sum(x^2 + 2x + 1)."""
    raise NotImplementedError("quadratic_grad: make x require grad, build y, call y.backward()")


# %% [markdown]
# ## 2. Leaves, grad_fn and retain_grad
#
# The material's graph: `y = torch.mul(w, x)` and `z = torch.add(y, b)`, where `x`
# does not require gradients and `w`, `b` do (make them leaves that require grad).
# Call `y.retain_grad()` before `z.backward()` so that the intermediate `y` keeps its
# gradient. Return a dict with
#
# - `"requires_grad"`: the tuple of `.requires_grad` of `(x, w, b, y, z)`
# - `"is_leaf"`: the tuple of `.is_leaf` of `(x, w, b, y, z)`
# - `"grad_fn"`: for each of `(x, w, b, y, z)`, `None` if its `grad_fn` is None, else the
#   name of its class: `type(t.grad_fn).__name__`
# - `"w_grad"`, `"b_grad"`, `"y_grad"`: the gradients after `z.backward()`
#
# With x = 5 the material gets w.grad = 5 and b.grad = 1.

# %%
def graph_info(x, w, b):
    """Return the dict described above."""
    raise NotImplementedError("graph_info: build y and z, retain y's grad, backward, read flags")


# %% [markdown]
# ## 3. retain_graph and gradient accumulation
#
# Build `z = w * x + b` as above and call `z.backward(retain_graph=True)`; keep a copy of
# `w.grad` (`w.grad.clone()`), then call `z.backward()` a second time. Return
# `(first, second)`: the copy and `w.grad` after the second pass. Gradients accumulate,
# so with x = 5 you get 5 and then 10. Without `retain_graph=True` the second backward
# fails, because the first one freed the graph.

# %%
def backward_twice(x, w, b):
    """Return (w.grad after one backward, w.grad after two)."""
    raise NotImplementedError("backward_twice: z.backward(retain_graph=True), copy w.grad, "
                              "z.backward() again")


# %% [markdown]
# ## 4. no_grad and detach
#
# Here `x` arrives with `requires_grad=True`. Return a dict with
#
# - `"under_no_grad"`: `requires_grad` of `x * 2` computed inside `with torch.no_grad():`
# - `"outside"`: `requires_grad` of `x * 2` computed normally
# - `"detached"`: `requires_grad` of `x.detach()`
# - `"shares_memory"`: whether `x.detach()` shares x's memory (compare `.data_ptr()`)
# - `"numpy"`: x as a NumPy array (a tensor that requires grad cannot call `.numpy()`
#   directly; detach it first)

# %%
def no_grad_detach(x):
    """Return the dict described above."""
    raise NotImplementedError("no_grad_detach: torch.no_grad(), x.detach(), data_ptr(), numpy()")


# %% [markdown]
# ## 5. Zeroing the gradients in a training loop
#
# The material fits y = w x^2 + b (data from y = 3x^2 + 2 plus noise) by gradient descent.
# Starting from copies of `w` and `b` (shape (1, 1)), repeat `steps` times:
#
#     y_pred = x.pow(2).mm(w) + b
#     loss = (0.5 * (y_pred - y) ** 2).sum()     # record loss.item() in a list
#     loss.backward()
#     with torch.no_grad():                        # the update is not part of the graph
#         w -= lr * w.grad
#         b -= lr * b.grad
#         ...                                      # and then?
#
# Return `(w, b, losses)` with w and b detached. With the material's data (seed 100),
# 800 steps and lr = 0.01 end near w = 2.9668, b = 2.1138.

# %%
def fit_quadratic(x, y, w, b, lr=0.01, steps=800):
    """Return (w, b, losses) after `steps` steps of gradient descent."""
    raise NotImplementedError("fit_quadratic: forward, loss, backward, update under no_grad, "
                              "and zero the gradients")


# %% [markdown]
# ## 6. The Jacobian by vector-Jacobian products
#
# For `x` of shape (1, 2), the material builds `y = torch.zeros(1, 2)` with
# `y[0, 0] = x[0, 0]**2 + 3*x[0, 1]` and `y[0, 1] = x[0, 1]**2 + 2*x[0, 0]`.
# `y` is not a scalar, so `y.backward(v)` needs a vector `v` of y's shape and computes
# the vector-Jacobian product v J into `x.grad`. Choose `v` to pick out one row of the
# Jacobian J (J[i, j] = dy_i / dx_j) at a time, and mind what `x.grad` holds before the
# next pass. With x = [[2., 3.]] the material gets J = [[4., 3.], [2., 6.]].
#
# Write it for any such y: `jacobian(y, x)` receives a leaf `x` of shape (1, n) that
# requires grad and a `y` of shape (1, m) already computed from it. The grader builds y
# from functions you do not see, so J cannot be written out by hand: it has to come from
# backward passes through y's graph, one vector-Jacobian product a row (`y.backward(v)`,
# or `torch.autograd.grad(y, x, v)`, which computes the same product). Use `x` and `y`
# as they are: a clone of x is not part of y's graph. Return J as a float32 tensor of
# shape (m, n). To try it on the material's example:
#
#     x = torch.tensor([[2.0, 3.0]], requires_grad=True)
#     y = torch.zeros(1, 2)
#     y[0, 0] = x[0, 0] ** 2 + 3 * x[0, 1]
#     y[0, 1] = x[0, 1] ** 2 + 2 * x[0, 0]
#     jacobian(y, x)     # tensor([[4., 3.], [2., 6.]])

# %%
def jacobian(y, x):
    """Return the (m, n) Jacobian of y (shape (1, m)) with respect to x (shape (1, n))."""
    raise NotImplementedError("jacobian: y.backward(v, retain_graph=True) once per row of J")


# %% [markdown]
# ## 7. The two-layer network with autograd
#
# The material's second way to train its two-layer ReLU network (N=64, D_in=1000, H=100,
# D_out=10): the forward pass `y_pred = x.mm(w1).clamp(min=0).mm(w2)` and the loss
# `(y_pred - y).pow(2).sum()` as before, but `loss.backward()` computes the gradients
# instead of hand-written backprop. Here `x` and `y` are float32 tensors and `w1`, `w2`
# arrive as leaves that **require grad**, like the material's `w1 = torch.randn(D_in, H,
# requires_grad=True)`. Repeat `steps` times:
#
# - the forward pass and the loss; record `loss.item()` (the loss before this step's update)
# - `loss.backward()`
# - the update, inside `with torch.no_grad():`, **in place**: `w1 -= learning_rate * w1.grad`
#   (the caller's w1 and w2 are the trained weights afterwards; `w1 = w1 - ...` would make a
#   new tensor outside the graph)
# - zero the gradients with `w1.grad.zero_()` and `w2.grad.zero_()`
#
# Return the list of losses. The grader reads w1, w2 and their `.grad` afterwards: the
# gradients must come from `loss.backward()`, so `.grad` must not be None at the end
# (zero it with `.zero_()`, do not set it to None). Write the update yourself, as the
# material does (`torch.optim` is assignment 5). The grader tries small sizes.

# %%
def train_two_layer_autograd(x, y, w1, w2, learning_rate=1e-6, steps=500):
    """Train w1 and w2 in place with autograd; return the list of losses, one a step."""
    raise NotImplementedError("train_two_layer_autograd: forward, loss, loss.backward(), "
                              "update under torch.no_grad(), zero the gradients")
