"""Reference solution: leaves, grad_fn, retain_grad, accumulation, no_grad/detach, VJPs,
and the two-layer net trained with autograd."""

import torch


def quadratic_grad(x):
    """y = sum(x^2 + 2x + 1) and its gradient with respect to x (which is 2x + 2)."""
    x = x.clone().requires_grad_(True)
    y = torch.sum(x ** 2 + 2 * x + 1)
    y.backward()
    return y.item(), x.grad


def graph_info(x, w, b):
    """z = w * x + b through y = w * x; the flags of the graph and the gradients after backward."""
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    y = torch.mul(w, x)
    z = torch.add(y, b)
    y.retain_grad()
    z.backward()
    tensors = (x, w, b, y, z)
    return {
        "requires_grad": tuple(t.requires_grad for t in tensors),
        "is_leaf": tuple(t.is_leaf for t in tensors),
        "grad_fn": tuple(None if t.grad_fn is None else type(t.grad_fn).__name__
                         for t in tensors),
        "w_grad": w.grad,
        "b_grad": b.grad,
        "y_grad": y.grad,
    }


def backward_twice(x, w, b):
    """w.grad after one and after two backward passes through the same graph."""
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    z = torch.add(torch.mul(w, x), b)
    z.backward(retain_graph=True)
    first = w.grad.clone()
    z.backward()
    return first, w.grad


def no_grad_detach(x):
    """What no_grad and detach do to requires_grad, and that detach shares memory."""
    with torch.no_grad():
        inside = x * 2
    outside = x * 2
    d = x.detach()
    return {
        "under_no_grad": inside.requires_grad,
        "outside": outside.requires_grad,
        "detached": d.requires_grad,
        "shares_memory": d.data_ptr() == x.data_ptr(),
        "numpy": d.numpy(),
    }


def fit_quadratic(x, y, w, b, lr=0.01, steps=800):
    """Gradient descent on y = w x^2 + b with the half sum of squared errors, as in the material."""
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        y_pred = x.pow(2).mm(w) + b
        loss = (0.5 * (y_pred - y) ** 2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
            w.grad.zero_()
            b.grad.zero_()
    return w.detach(), b.detach(), losses


def jacobian(y, x):
    """The Jacobian of y (shape (1, m)) with respect to the leaf x (shape (1, n)) it was
    computed from: one vector-Jacobian product y.backward(v) a row, v picking out that row."""
    m, n = y.shape[1], x.shape[1]
    J = torch.zeros(m, n)
    for i in range(m):
        v = torch.zeros(1, m)
        v[0, i] = 1.0
        y.backward(v, retain_graph=i < m - 1)
        J[i] = x.grad
        x.grad = torch.zeros_like(x.grad)
    return J


def train_two_layer_autograd(x, y, w1, w2, learning_rate=1e-6, steps=500):
    """The material's two-layer ReLU net, its gradients by autograd: w1 and w2 (leaves that
    require grad) are updated in place under no_grad and their gradients zeroed each step."""
    losses = []
    for _ in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return losses
