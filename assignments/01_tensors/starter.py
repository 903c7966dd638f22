# %% [markdown]
# # Tensors: creation, attributes, indexing, shapes, broadcasting and reductions
#
# A tensor is PyTorch's multi-dimensional array: scalars, vectors and matrices in one
# concept. Every function below practises one part of the lesson; each returns tensors
# (or plain Python values) so that the grader can check them. Keep the material's
# numbers where the text gives them, and mind the dtypes: PyTorch's default floating
# dtype is float32, and the grader checks the dtype of every tensor you return.

# %%
import torch

# %% [markdown]
# ## 1. Creating tensors
#
# `torch.tensor(data)` infers the dtype from the data (integers give int64), while
# `torch.Tensor(data)` always uses the global default dtype (float32). Return a dict with:
#
# - `"tensor"`: `torch.tensor([1, 2, 3])` and `"Tensor"`: `torch.Tensor([1, 2, 3])`
# - `"eye"`: the 4x4 identity, `"zeros"`: 2x3 zeros, `"ones"`: 2x3 ones (all float32)
# - `"full"`: a 2x3 tensor filled with 7.0 (float32)
# - `"arange"`: 0..15 reshaped to (2, 2, 4) with `reshape(2, 2, -1)` (int64)
# - `"linspace"`: 4 evenly spaced points from 1 to 10: tensor([1., 4., 7., 10.])
# - `"logspace"`: 3 points spaced evenly on a log scale from 10^0 to 10^2: [1., 10., 100.]

# %%
def make_tensors():
    """Return the dict of tensors described above."""
    raise NotImplementedError("make_tensors: use torch.tensor, torch.Tensor, torch.eye, "
                              "torch.zeros, torch.ones, torch.full, torch.arange, "
                              "torch.linspace and torch.logspace")


# %% [markdown]
# ## 2. Random tensors with a seed
#
# Call `torch.manual_seed(seed)` first, then, in this order, draw
# `w = torch.normal(0, 0.01, size=(2, 3))` and `b = torch.bernoulli(p)` where `p` is a
# 2x3 tensor filled with 0.5. Return `(w, b)`. With the same seed you get the same numbers.

# %%
def random_tensors(seed):
    """Return (w, b): normal(0, 0.01) and bernoulli(0.5) samples of shape (2, 3)."""
    raise NotImplementedError("random_tensors: torch.manual_seed(seed), then torch.normal, "
                              "then torch.bernoulli")


# %% [markdown]
# ## 3. NumPy and shared memory
#
# `torch.from_numpy(arr)` makes a tensor that **shares** the array's memory: changing one
# changes the other. Make such a tensor from `arr`, then set `arr[0, 0] = 100` on the
# NumPy side, and return the tensor (which must now show 100 at [0, 0]).

# %%
def shared_from_numpy(arr):
    """Return a tensor sharing arr's memory, after setting arr[0, 0] = 100."""
    raise NotImplementedError("shared_from_numpy: torch.from_numpy shares memory; "
                              "torch.tensor copies")


# %% [markdown]
# ## 4. Attributes
#
# From the material: `w = torch.ones_like(x, requires_grad=True)` and `y = w * x`.
# Return a dict with `"dtype"`, `"shape"` and `"device"` of `y` (`y.dtype`, `y.shape`,
# `y.device`), `"requires_grad"`: the tuple `(x.requires_grad, w.requires_grad,
# y.requires_grad)`, and `"is_leaf"`: the tuple `(x.is_leaf, w.is_leaf, y.is_leaf)`.
# Read the attributes from the tensors; do not type the answers in.

# %%
def attributes(x):
    """Return the dict of y's dtype, shape, device and the requires_grad/is_leaf tuples."""
    raise NotImplementedError("attributes: build w and y, then read .dtype, .shape, .device, "
                              ".requires_grad and .is_leaf")


# %% [markdown]
# ## 5. Indexing, slicing and masked_select
#
# The material: `torch.manual_seed(100); x = torch.randn(2, 3)`. Return the tuple
# `(x[0, :], x[:, -1], torch.masked_select(x, x > 0))`: the first row, the last column,
# and a 1-D tensor of the positive elements only.

# %%
def index_and_select(x):
    """Return (first row, last column, 1-D tensor of the positive elements)."""
    raise NotImplementedError("index_and_select: x[0, :], x[:, -1], torch.masked_select")


# %% [markdown]
# ## 6. cat, view, squeeze and unsqueeze
#
# With `a = torch.arange(8).reshape(2, 2, 2)` and `b = torch.arange(12).reshape(3, 2, 2)`
# as in the material (the grader also uses other sizes), return a dict with
# `"cat"`: `a` and `b` joined along axis 0 (shape (5, 2, 2)), `"flat"`: `b` viewed as 1-D,
# `"unsqueezed"`: `b` with a new axis at position 1 (shape (3, 1, 2, 2)), and
# `"squeezed"`: `s` with all its size-1 dimensions removed.

# %%
def shape_ops(a, b, s):
    """Return the dict of cat, flat, unsqueezed and squeezed tensors."""
    raise NotImplementedError("shape_ops: torch.cat, view(-1), torch.unsqueeze, torch.squeeze")


# %% [markdown]
# ## 7. Broadcasting and expand
#
# The material: `A` of shape (4, 1) holds 0, 10, 20, 30 and `B` of shape (3,) holds
# 0, 1, 2. Return `(A + B, A.expand(n, m), B3)` where (n, m) = (len(A), len(B)) and `B3` is
# `B` made a row with `unsqueeze(0)` and expanded to (n, m). All three have shape (n, m).

# %%
def broadcast(A, B):
    """Return (A + B, A expanded to (n, m), B expanded to (n, m))."""
    raise NotImplementedError("broadcast: A + B broadcasts; expand repeats size-1 dimensions")


# %% [markdown]
# ## 8. Reductions with dim and keepdim, max and argmax
#
# The material: `t = torch.linspace(0, 10, 6).view(2, 3)`. Return a dict with
# `"sum0"`: `t.sum(dim=0)` (tensor([6., 10., 14.])), `"sum0_keepdim"`: the same sum
# keeping the reduced dimension (shape (1, 3)), `"max1"`: the maximum values along
# dim 1, and `"argmax1"`: their indices along dim 1.

# %%
def reductions(t):
    """Return the dict sum0, sum0_keepdim, max1, argmax1."""
    raise NotImplementedError("reductions: t.sum(dim=..., keepdim=...), t.max(dim=1), "
                              "t.argmax(dim=1)")


# %% [markdown]
# ## 9. dtype conversion
#
# `y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])` holds class scores, one row a
# sample. Return the predicted class of every row (`argmax` along dim 1, an int64 tensor)
# converted to **float32** with `.type(torch.float32)`: tensor([2., 2.]).

# %%
def predicted_classes(y_hat):
    """Return y_hat.argmax(dim=1) as a float32 tensor."""
    raise NotImplementedError("predicted_classes: argmax along dim 1, then .type(torch.float32)")
