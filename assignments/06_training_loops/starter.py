# %% [markdown]
# # Training loops: linear regression, a quadratic fit, logistic regression, Adam
#
# Every training loop in the material has the same core:
#
# 1. zero the gradients;
# 2. predict from the inputs;
# 3. compute the loss from the prediction and the truth;
# 4. back-propagate the loss;
# 5. update the weights by gradient descent.
#
# Each function below gets a **training set** (float32 tensors) and returns the
# **trained weights** as a dict of tensors. The grader loads them into its own model and
# scores them on held-out data from the same distribution, which your code never sees,
# so the weights must generalise, not just fit. You choose the learning rate and the
# number of epochs; each function has a time budget of 20 seconds (the material's
# settings take one or two). The last function, `train_adam`, is different: it gets its
# starting weights and its settings, so its run can be replayed and compared.

# %% [markdown]
# ## 1. Linear regression with `TensorDataset` and `DataLoader`
#
# `x` and `y` have shape (100, 1), y = w * x + b plus a little noise (the material:
# `x = torch.rand(100, 1)`, `y = 2 * x + torch.rand(1)`). Wrap them in a
# `Data.TensorDataset`, load it with a `Data.DataLoader(batch_size=10, shuffle=True)`,
# and train `nn.Linear(1, 1)` with the mean squared error, looping over the epochs and
# the batches. Return `{"weight": ..., "bias": ...}` with the shapes of `nn.Linear(1, 1)`:
# weight (1, 1) and bias (1,) (`model.state_dict()` is such a dict).
# Held-out mean squared error needed: below 0.02.

# %%
import torch  # noqa: F401
import torch.utils.data as Data  # noqa: F401
from torch import nn  # noqa: F401


# %%
def train_linear(x, y):
    """Train y = w * x + b with mini-batches; return {"weight": (1, 1), "bias": (1,)}."""
    raise NotImplementedError(
        "train_linear: TensorDataset + DataLoader, then for each epoch, for each batch: "
        "zero_grad, predict, loss, backward, step")


# %% [markdown]
# ## 2. The quadratic fit y = 3x^2 + 2
#
# `x` is `torch.linspace(-1, 1, 100)` as a column (100, 1) and y = a * x^2 + c plus
# `0.2 * torch.rand` noise (the material: a = 3, c = 2; the hidden tests draw other
# values). Fit the model `y_pred = x.pow(2).mm(w) + b` with `w` and `b` of shape (1, 1),
# created with `requires_grad=True`, by plain gradient descent on the loss
# `(0.5 * (y_pred - y) ** 2).sum()`: after `loss.backward()`, update them inside
# `torch.no_grad()` and zero their gradients. Return `{"w": w, "b": b}`.
# Held-out mean squared error needed: below 0.02.

# %%
def train_quadratic(x, y):
    """Fit y = w * x^2 + b; return {"w": (1, 1), "b": (1, 1)}."""
    raise NotImplementedError(
        "train_quadratic: y_pred = x.pow(2).mm(w) + b; loss.backward(); update w, b under "
        "torch.no_grad(); zero w.grad and b.grad")


# %% [markdown]
# ## 3. Logistic regression with BCE on two Gaussian clusters
#
# `x` has shape (200, 2): 100 points of class 0 around one centre, then 100 of class 1
# around another (the material: `torch.normal(1.7 * ones, 1) + 1` and
# `torch.normal(-1.7 * ones, 1) + 1`); `y` (200, 1) holds the labels 0.0 and 1.0.
# Build the material's model, a `nn.Linear(2, 1)` followed by `nn.Sigmoid()`, and train it
# with `nn.BCELoss()` and `torch.optim.SGD(..., lr=0.01, momentum=0.9)`. Return the
# linear layer's weights, `{"weight": (1, 2), "bias": (1,)}`
# (`model.feature.state_dict()` with the material's layout).
# Needed on held-out points: accuracy at least 93% and binary cross-entropy at most 0.1.

# %%
def train_logistic(x, y):
    """Train Linear(2, 1) + Sigmoid with BCELoss; return {"weight": (1, 2), "bias": (1,)}."""
    raise NotImplementedError(
        "train_logistic: model, BCELoss, SGD with momentum; loop: predict, loss, backward, "
        "step, zero_grad")


# %% [markdown]
# ## 4. The two-layer network with `torch.optim.Adam` and `nn.MSELoss(reduction='sum')`
#
# The material's `nn` + `optim` example (N, D_in, H, D_out = 64, 1000, 100, 10, random
# `x` and `y`) trains
# `model = nn.Sequential(nn.Linear(D_in, H), nn.ReLU(), nn.Linear(H, D_out))` with
# `loss_fn = nn.MSELoss(reduction='sum')` (the **sum** of the squared errors over all
# N x D_out entries; `nn.MSELoss()` would take their mean) and
# `optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)`; each step:
# predict, loss, `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`.
#
# `train_adam(state, x, y, steps, lr)` gets the starting weights `state`, a state_dict of
# that `nn.Sequential` (keys "0.weight", "0.bias", "2.weight", "2.bias"; the sizes are
# their shapes), x (N, D_in) and y (N, D_out), float32. Load `state` into the model
# (`model.load_state_dict(state)`, no new random initialisation) and train for `steps`
# steps with Adam at the learning rate `lr`. Return the pair `(weights, losses)`:
# `weights` is the trained `model.state_dict()`, and `losses` a list of `steps` numbers,
# `losses[t]` the `loss.item()` of step t (the loss you call `backward()` on). The grader
# replays the same run from the same weights and compares both.

# %%
def train_adam(state, x, y, steps=500, lr=1e-4):
    """Train the two-layer net from `state` with Adam and the summed MSE; return
    (model.state_dict(), losses)."""
    raise NotImplementedError(
        "train_adam: nn.Sequential, load_state_dict(state), nn.MSELoss(reduction='sum'), "
        "torch.optim.Adam(model.parameters(), lr=lr); loop: predict, loss, zero_grad, "
        "backward, step")
