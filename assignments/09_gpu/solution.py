"""Reference solution: device-agnostic code and the CPU vs CUDA matmul exercise."""

import time

import torch
from torch import nn

D_IN, H, D_OUT = 1000, 100, 10


def pick_device():
    """'cuda' when a CUDA device is available, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_net():
    """The two-layer network of the course: Linear(1000, 100), ReLU, Linear(100, 10)."""
    return nn.Sequential(nn.Linear(D_IN, H), nn.ReLU(), nn.Linear(H, D_OUT))


def predict(state, x, device=None):
    """Run the network with weights `state` on x on `device`; return a NumPy array."""
    device = torch.device(device or pick_device())
    net = build_net()
    net.load_state_dict(state)
    net = net.to(device)
    with torch.no_grad():
        out = net(x.to(device))
    return out.cpu().numpy()


def matmul_norm(a, b, device):
    """c = torch.matmul(a, b) computed on `device`; return c.norm(2) as a Python float."""
    a, b = a.to(device), b.to(device)
    c = torch.matmul(a, b)
    return c.norm(2).item()


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_matmul(a, b, device):
    """Time one torch.matmul(a, b) on `device`; return (seconds, c.norm(2) as a float)."""
    a, b = a.to(device), b.to(device)
    torch.matmul(a, b)  # warm-up: the first CUDA call pays for initialising the libraries
    _synchronize(device)
    t0 = time.perf_counter()
    c = torch.matmul(a, b)
    _synchronize(device)  # CUDA runs asynchronously: wait for the product before the clock
    t1 = time.perf_counter()
    return t1 - t0, c.norm(2).item()
