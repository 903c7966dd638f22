"""Reference solution: three training loops that return their trained weights."""

import torch
import torch.utils.data as Data
from torch import nn


def train_linear(x, y, epochs=50, batch_size=10, lr=0.1):
    """Fit y = w * x + b with mini-batches from a DataLoader; return {"weight", "bias"}."""
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    loader = Data.DataLoader(Data.TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    for _ in range(epochs):
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
    return {"weight": model.weight.detach(), "bias": model.bias.detach()}


def train_quadratic(x, y, steps=800, lr=0.01):
    """Fit y = w * x^2 + b by full-batch gradient descent; return {"w", "b"}, each (1, 1)."""
    torch.manual_seed(100)
    w = torch.rand(1, 1, requires_grad=True)
    b = torch.rand(1, 1, requires_grad=True)
    for _ in range(steps):
        y_pred = x.pow(2).mm(w) + b
        loss = (0.5 * (y_pred - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
            w.grad.zero_()
            b.grad.zero_()
    return {"w": w.detach(), "b": b.detach()}


class LR(nn.Module):
    """Logistic regression: a Linear(2, 1) feature followed by a Sigmoid."""

    def __init__(self):
        """The material's layout: self.feature, self.sigmoid."""
        super().__init__()
        self.feature = nn.Linear(2, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        """The probability of class 1."""
        return self.sigmoid(self.feature(x))


def train_logistic(x, y, iterations=1000, lr=0.01):
    """Fit logistic regression with BCELoss and SGD with momentum; return {"weight", "bias"}."""
    torch.manual_seed(1)
    model = LR()
    loss_fn = nn.BCELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(iterations):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return {"weight": model.feature.weight.detach(), "bias": model.feature.bias.detach()}


def train_adam(state, x, y, steps=500, lr=1e-4):
    """The material's nn + optim loop: Adam and the summed MSE, from the weights `state`.

    Returns (model.state_dict(), every step's loss.item()).
    """
    h, d_in = state["0.weight"].shape
    d_out = state["2.weight"].shape[0]
    model = nn.Sequential(nn.Linear(d_in, h), nn.ReLU(), nn.Linear(h, d_out))
    model.load_state_dict(state)
    loss_fn = nn.MSELoss(reduction="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.state_dict(), losses
