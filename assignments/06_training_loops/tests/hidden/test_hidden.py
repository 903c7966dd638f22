"""Hidden tests: train on data from the secret seed, score on held-out data.

The held-out sets never enter the sandbox: the student's function gets the training
set only and returns weights, which are loaded into the reference architecture here.
"""

import numpy as np
import pytest
import torch

from grader.proxy import RemoteObject

MAX_LINEAR_MSE = 0.02      # the noise alone gives 0.0025
MAX_QUADRATIC_MSE = 0.02   # the 0.2 * uniform noise alone gives 0.0033
MIN_ACCURACY = 0.93        # the clusters are 4.8 standard deviations apart: about 0.99
MAX_BCE = 0.1              # a trained model gets about 0.03-0.04

UNSTABLE = ("check that you call optimizer.zero_grad() in every step (gradients that are "
            "never zeroed accumulate, so training oscillates or diverges)")


def _param(returned, names, shape, fn):
    """The tensor stored under one of `names` in what `fn` returned, reshaped to `shape`."""
    if isinstance(returned, RemoteObject) and returned.type_name == "OrderedDict":
        found = {n: returned.get(n) for n in names}  # a state_dict() stays in the sandbox
    elif isinstance(returned, dict):
        found = {n: returned.get(n) for n in names}
    else:
        raise AssertionError(f"{fn} should return a dict of tensors such as "
                             f"{{{names[0]!r}: ...}}, not {returned!r}")
    value = next((v for v in found.values() if v is not None), None)
    assert isinstance(value, torch.Tensor), (
        f"{fn} should return a dict with the tensor {names[0]!r}; it is missing or not a tensor")
    numel = int(np.prod(shape))
    assert value.numel() == numel, (
        f"{names[0]!r} has shape {tuple(value.shape)}; the reference model's is {shape}")
    return value.detach().to(torch.float32).reshape(shape)


def _line(x, y):
    """Least-squares straight line through (x, y): (slope, intercept)."""
    a = np.hstack([x.numpy(), np.ones_like(x.numpy())])
    slope, intercept = np.linalg.lstsq(a, y.numpy(), rcond=None)[0].ravel()
    return float(slope), float(intercept)


@pytest.mark.points(2)
@pytest.mark.timeout(30)
def test_linear_regression(student, linear_problem):
    """train_linear: held-out mean squared error of the fitted line"""
    (x, y), (x_test, y_test) = linear_problem
    returned = student.train_linear(x, y)
    model = torch.nn.Linear(1, 1)
    model.load_state_dict({
        "weight": _param(returned, ["weight"], (1, 1), "train_linear"),
        "bias": _param(returned, ["bias"], (1,), "train_linear")})
    w, b = model.weight.item(), model.bias.item()
    assert np.isfinite(w) and np.isfinite(b), (
        f"your weights are not finite (weight {w}, bias {b}): training diverged; {UNSTABLE}, "
        "and that the learning rate is not too large")
    with torch.no_grad():
        mse = torch.mean((model(x_test) - y_test) ** 2).item()
    assert mse < MAX_LINEAR_MSE, (
        f"on held-out data your line y = {w:.3g} x + {b:.3g} has a mean squared error of "
        f"{mse:.3g}; a trained model gets below {MAX_LINEAR_MSE}. The model is underfit or "
        f"unstable: {UNSTABLE}, and that the learning rate and the number of epochs are large "
        "enough (the material: 200 epochs of batches of 10 at lr=0.01)")


@pytest.mark.points(2)
@pytest.mark.timeout(30)
def test_quadratic_fit(student, quadratic_problem):
    """train_quadratic: held-out error of y = w * x^2 + b"""
    (x, y), (x_test, y_test) = quadratic_problem
    returned = student.train_quadratic(x, y)
    w = _param(returned, ["w"], (1, 1), "train_quadratic")
    b = _param(returned, ["b"], (1, 1), "train_quadratic")
    assert torch.isfinite(w).all() and torch.isfinite(b).all(), (
        f"your weights are not finite (w {w.item()}, b {b.item()}): training diverged; zero "
        "w.grad and b.grad after every update and keep the learning rate at 0.01")
    mse = torch.mean((x_test.pow(2).mm(w) + b - y_test) ** 2).item()
    if mse >= MAX_QUADRATIC_MSE:
        slope, intercept = _line(x, y)
        if abs(w.item() - slope) < 0.2 and abs(b.item() - intercept) < 0.2:
            raise AssertionError(
                f"you fitted a straight line (w = {w.item():.3g}, b = {b.item():.3g} is the best "
                f"line through the data): the model is y = w * x^2 + b, so predict with "
                f"x.pow(2).mm(w) + b. As y = w * x^2 + b your weights have a held-out error "
                f"of {mse:.3g}")
    assert mse < MAX_QUADRATIC_MSE, (
        f"on held-out data y = {w.item():.3g} x^2 + {b.item():.3g} has a mean squared error of "
        f"{mse:.3g}; a trained model gets below {MAX_QUADRATIC_MSE}. Either the gradients were "
        "not zeroed after every update (backward() adds to w.grad and b.grad, so the steps "
        "keep growing and the weights swing past the fit) or training stopped too early (the "
        "material: 800 steps at lr=0.01)")


@pytest.mark.points(3)
@pytest.mark.timeout(30)
@pytest.mark.visibility("after_due_date")
def test_logistic_regression(student, cluster_problem, checks):
    """train_logistic: held-out accuracy and binary cross-entropy on two clusters"""
    (x, y), (x_test, y_test) = cluster_problem
    returned = student.train_logistic(x, y)
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Sigmoid())
    model[0].load_state_dict({
        "weight": _param(returned, ["weight", "feature.weight"], (1, 2), "train_logistic"),
        "bias": _param(returned, ["bias", "feature.bias"], (1,), "train_logistic")})
    assert all(torch.isfinite(p).all() for p in model.parameters()), (
        "your weights are not finite: training diverged; lower the learning rate and zero "
        "the gradients every step")
    verdict = checks.logistic(model[0].weight.detach(), model[0].bias.detach(), x_test, y_test,
                              MIN_ACCURACY, MAX_BCE)
    assert verdict is None, verdict


@pytest.mark.points(2)
@pytest.mark.timeout(30)
def test_adam_generated(student, adam_problem, rng, checks):
    """train_adam: the material's Adam loop with the summed MSE, from given starting weights"""
    state, x, y = adam_problem
    steps, lr = int(rng.integers(30, 51)), float(rng.choice([5e-4, 1e-3, 2e-3]))
    call = f"train_adam(state, x, y, steps={steps}, lr={lr:g})"
    checks.adam(student.train_adam(state, x, y, steps=steps, lr=lr), state, x, y, steps, lr, call)
