"""Reference solution: tensor creation, attributes, indexing, shapes, broadcasting, reductions."""

import torch


def make_tensors():
    """The material's creation functions, one tensor each."""
    return {
        "tensor": torch.tensor([1, 2, 3]),
        "Tensor": torch.Tensor([1, 2, 3]),
        "eye": torch.eye(4, 4),
        "zeros": torch.zeros(2, 3),
        "ones": torch.ones(2, 3),
        "full": torch.full((2, 3), 7.0),
        "arange": torch.arange(16).reshape(2, 2, -1),
        "linspace": torch.linspace(1, 10, 4),
        "logspace": torch.logspace(0, 2, 3),
    }


def random_tensors(seed):
    """normal(0, 0.01) then bernoulli(0.5) samples of shape (2, 3), after seeding."""
    torch.manual_seed(seed)
    w = torch.normal(0, 0.01, size=(2, 3))
    b = torch.bernoulli(torch.full((2, 3), 0.5))
    return w, b


def shared_from_numpy(arr):
    """A tensor sharing arr's memory, seen after a change on the NumPy side."""
    t = torch.from_numpy(arr)
    arr[0, 0] = 100
    return t


def attributes(x):
    """y = w * x with w a leaf that requires grad; y's attributes and the flags of x, w, y."""
    w = torch.ones_like(x, requires_grad=True)
    y = w * x
    return {
        "dtype": y.dtype,
        "shape": y.shape,
        "device": y.device,
        "requires_grad": (x.requires_grad, w.requires_grad, y.requires_grad),
        "is_leaf": (x.is_leaf, w.is_leaf, y.is_leaf),
    }


def index_and_select(x):
    """First row, last column, and the positive elements as a 1-D tensor."""
    return x[0, :], x[:, -1], torch.masked_select(x, x > 0)


def shape_ops(a, b, s):
    """cat along axis 0, a 1-D view, a new axis at 1, and the size-1 axes squeezed out."""
    return {
        "cat": torch.cat((a, b), 0),
        "flat": b.view(-1),
        "unsqueezed": torch.unsqueeze(b, 1),
        "squeezed": torch.squeeze(s),
    }


def broadcast(A, B):
    """A + B by broadcasting, and both operands expanded to the common shape."""
    n, m = A.shape[0], B.shape[0]
    return A + B, A.expand(n, m), B.unsqueeze(0).expand(n, m)


def reductions(t):
    """Sums along dim 0 with and without keepdim, max values and indices along dim 1."""
    return {
        "sum0": t.sum(dim=0),
        "sum0_keepdim": t.sum(dim=0, keepdim=True),
        "max1": t.max(dim=1).values,
        "argmax1": t.argmax(dim=1),
    }


def predicted_classes(y_hat):
    """The argmax class of every row, as float32."""
    return y_hat.argmax(dim=1).type(torch.float32)
