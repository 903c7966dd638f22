"""Reference solution: a two-layer ReLU network trained with hand-written gradients."""

import numpy as np


def forward(x, w1, w2):
    """y_pred = relu(x @ w1) @ w2."""
    return np.maximum(x.dot(w1), 0).dot(w2)


def loss(y_pred, y):
    """Sum of squared errors."""
    return float(np.square(y_pred - y).sum())


def backward(x, y, w1, w2):
    """Gradients of the squared-error loss with respect to w1 and w2."""
    h = x.dot(w1)
    h_relu = np.maximum(h, 0)
    y_pred = h_relu.dot(w2)
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.T.dot(grad_y_pred)
    grad_h = grad_y_pred.dot(w2.T)
    grad_h[h < 0] = 0
    grad_w1 = x.T.dot(grad_h)
    return grad_w1, grad_w2


def train(x, y, w1, w2, learning_rate=1e-6, steps=500):
    """Plain gradient descent; returns the trained (w1, w2) and the loss of every step."""
    w1, w2 = w1.copy(), w2.copy()
    losses = []
    for _ in range(steps):
        losses.append(loss(forward(x, w1, w2), y))
        grad_w1, grad_w2 = backward(x, y, w1, w2)
        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
    return w1, w2, losses
