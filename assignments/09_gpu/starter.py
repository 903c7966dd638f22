# %% [markdown]
# # GPU: device-agnostic code and the CPU vs CUDA matmul
#
# PyTorch runs the same code on the CPU and on a CUDA GPU; what decides is the **device**
# a tensor (or a model's parameters) lives on. Device-agnostic code picks the device once:
#
#     device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
#
# moves the model and the data there with `.to(device)` (a model and its inputs must be
# on the same device), and brings results back with `.cpu()` before NumPy sees them
# (`.numpy()` refuses a CUDA tensor). The lesson's GPU test multiplies two matrices on
# each device and prints the device, the time and the norm of the product:
#
#     a = torch.randn(10000, 1000)
#     b = torch.randn(1000, 2000)
#     t0 = time.time(); c = torch.matmul(a, b); t1 = time.time()
#     print(a.device, t1 - t0, c.norm(2))
#     device = torch.device('cuda')
#     a = a.to(device); b = b.to(device)
#     ...   # the same again, twice: the first CUDA call also pays for starting CUDA up
#
# Two things about timing CUDA: the first call is slow (warm up once before you time),
# and CUDA runs **asynchronously**, so call `torch.cuda.synchronize()` before you read the
# clock, or you time only the launch. Use `time.perf_counter()` and report **seconds**.
#
# Write code that works on both a laptop without a GPU and a GPU machine: it is graded on
# the GPU queue. Without a GPU, `grader check` runs the CPU tests and says which GPU
# checks it could not run.

# %%
import time

import torch
from torch import nn


# %%
def pick_device():
    """Return "cuda" when torch.cuda.is_available(), else "cpu"."""
    raise NotImplementedError("pick_device: ask torch.cuda.is_available()")


# %%
def predict(state, x, device=None):
    """Run the course's network on x on `device` (pick_device() when None).

    The network is nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10));
    `state` is its state_dict (keys "0.weight", "0.bias", "2.weight", "2.bias"). Move the
    model and x to the device, run it without gradients, and return the output as a
    NumPy float32 array of shape (len(x), 10).
    """
    raise NotImplementedError("predict: build the net, load_state_dict(state), .to(device) "
                              "the net and x, and return out.cpu().numpy()")


# %%
def matmul_norm(a, b, device):
    """Compute c = torch.matmul(a, b) on `device`; return c.norm(2) as a Python float."""
    raise NotImplementedError("matmul_norm: move a and b to the device, multiply, .item()")


# %%
def time_matmul(a, b, device):
    """Time one torch.matmul(a, b) on `device`; return (seconds, c.norm(2) as a float).

    Move a and b to the device first (not timed), warm up with one product, then time
    one product, synchronising CUDA before each reading of the clock.
    """
    raise NotImplementedError("time_matmul: warm up, synchronize, perf_counter around "
                              "torch.matmul, synchronize again")
