"""Public tests: run them with `grader check`.

Your `train_*` functions get the material's training data; the returned weights are
loaded into the reference model here and scored on held-out data from the same
distribution. The hidden tests do the same with data drawn from a secret seed.
"""

import pytest
import torch

from grader.proxy import RemoteObject


def _get(returned, name, shape, fn):
    """returned[name] as a float32 tensor of `shape` (a dict, or a state_dict())."""
    assert isinstance(returned, dict) or (
        isinstance(returned, RemoteObject) and returned.type_name == "OrderedDict"), (
        f"{fn} should return a dict of tensors such as {{{name!r}: ...}}, not {returned!r}")
    value = returned.get(name)
    assert isinstance(value, torch.Tensor) and value.numel() == torch.Size(shape).numel(), (
        f"{fn} should return a dict whose {name!r} is a tensor of shape {shape}")
    return value.detach().to(torch.float32).reshape(shape)


@pytest.mark.points(1)
@pytest.mark.timeout(30)
def test_linear_material(student, material_problems):
    """train_linear on y = 2x + 0.3: held-out mean squared error below 0.02"""
    (x, y), (x_test, y_test) = material_problems["linear"]
    returned = student.train_linear(x, y)
    w = _get(returned, "weight", (1, 1), "train_linear")
    b = _get(returned, "bias", (1,), "train_linear")
    mse = torch.mean((x_test @ w.T + b - y_test) ** 2).item()
    assert mse < 0.02, (f"your line y = {w.item():.3g} x + {b.item():.3g} has a held-out mean "
                        f"squared error of {mse:.3g}; the true line is y = 2x + 0.3")


@pytest.mark.points(1)
@pytest.mark.timeout(30)
def test_quadratic_material(student, material_problems):
    """train_quadratic on y = 3x^2 + 2 + 0.2 rand: held-out error below 0.02"""
    (x, y), (x_test, y_test) = material_problems["quadratic"]
    returned = student.train_quadratic(x, y)
    w = _get(returned, "w", (1, 1), "train_quadratic")
    b = _get(returned, "b", (1, 1), "train_quadratic")
    mse = torch.mean((x_test.pow(2).mm(w) + b - y_test) ** 2).item()
    assert mse < 0.02, (
        f"y = {w.item():.3g} x^2 + {b.item():.3g} has a held-out mean squared error of "
        f"{mse:.3g}; the material's fit gets w close to 3 and b close to 2.1 (2 plus the "
        "mean of the noise)")


@pytest.mark.points(1)
@pytest.mark.timeout(30)
def test_logistic_material(student, material_problems, checks):
    """train_logistic on the material's clusters: accuracy >= 93%, BCE <= 0.1"""
    (x, y), (x_test, y_test) = material_problems["logistic"]
    returned = student.train_logistic(x, y)
    w = _get(returned, "weight", (1, 2), "train_logistic")
    b = _get(returned, "bias", (1,), "train_logistic")
    assert torch.isfinite(w).all() and torch.isfinite(b).all(), (
        "your weights are not finite: training diverged; zero the gradients every iteration "
        "(optimizer.zero_grad()) and keep the learning rate at the material's 0.01")
    verdict = checks.logistic(w, b, x_test, y_test, 0.93, 0.1)
    assert verdict is None, verdict


@pytest.mark.points(1)
@pytest.mark.timeout(30)
def test_adam_material(student, material_problems, checks):
    """train_adam: 25 steps of the material's Adam(lr=1e-4) loop with the summed MSE"""
    state, x, y = material_problems["adam"]
    call = "train_adam(state, x, y, steps=25, lr=1e-4)"
    checks.adam(student.train_adam(state, x, y, steps=25, lr=1e-4), state, x, y, 25, 1e-4, call)
