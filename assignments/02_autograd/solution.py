"""Reference solution: leaves, grad_fn, retain_grad, accumulation, no_grad/detach, VJPs."""

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


def jacobian(x):
    """The 2x2 Jacobian of y = (x0^2 + 3 x1, x1^2 + 2 x0), one row a vector-Jacobian product."""
    x = x.clone().requires_grad_(True)
    y = torch.zeros(1, 2)
    y[0, 0] = x[0, 0] ** 2 + 3 * x[0, 1]
    y[0, 1] = x[0, 1] ** 2 + 2 * x[0, 0]
    J = torch.zeros(2, 2)
    y.backward(torch.tensor([[1.0, 0.0]]), retain_graph=True)
    J[0] = x.grad
    x.grad = torch.zeros_like(x.grad)
    y.backward(torch.tensor([[0.0, 1.0]]))
    J[1] = x.grad
    return J
