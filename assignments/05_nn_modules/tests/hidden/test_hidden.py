"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch

from grader.checks import expect_number, expect_tensor, kind_of

N, D_IN, H, D_OUT = 64, 1000, 100, 10
LR = 0.05


# state_dict() returns an OrderedDict, which the wire does not carry as plain data (only
# an exact dict); state_dict(destination={}) fills and returns the plain dict we send.

def _shapes(state):
    assert isinstance(state, dict), "state_dict() should return a dict of tensors"
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def _reference_net(reference, weights):
    net = reference.TwoLayerNet(D_IN, H, D_OUT)
    net.load_state_dict(weights)
    return net


@pytest.mark.points(1)
def test_two_layer_net_generated(student, reference, two_layer_weights, data):
    """TwoLayerNet on the material's sizes (64, 1000, 100, 10)"""
    x, _ = data
    net = student.TwoLayerNet(D_IN, H, D_OUT)
    net.load_state_dict(two_layer_weights)
    got = net(x)
    expected = _reference_net(reference, two_layer_weights)(x).detach()
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        w = two_layer_weights
        linear = (x @ w["linear1.weight"].T + w["linear1.bias"]) @ w["linear2.weight"].T
        assert not torch.allclose(got, linear + w["linear2.bias"], rtol=1e-4, atol=1e-5), (
            "TwoLayerNet skips the ReLU: without clamp(min=0) between linear1 and linear2 "
            "the two layers collapse into a single linear map")
    expect_tensor(got, expected, name="TwoLayerNet(1000, 100, 10)(x)", rtol=1e-4, atol=1e-5)


@pytest.mark.points(1)
def test_sequential_generated(student, reference, two_layer_weights, data):
    """make_sequential equals TwoLayerNet with the same weights"""
    x, _ = data
    seq = student.make_sequential(D_IN, H, D_OUT)
    got_shapes = _shapes(seq.state_dict(destination={}))
    want = {"0.weight": (H, D_IN), "0.bias": (H,), "2.weight": (D_OUT, H), "2.bias": (D_OUT,)}
    if got_shapes != want:
        order = "Linear, Linear, ReLU" if set(got_shapes) == {
            "0.weight", "0.bias", "1.weight", "1.bias"} else None
        raise AssertionError(
            f"your Sequential's parameters are {got_shapes}, so its layers are "
            f"{order or 'not Linear, ReLU, Linear'}; nn.Sequential runs its layers in the "
            "order given, and the ReLU belongs between the two Linear layers (index 1)")
    seq.load_state_dict({f"{i}.{p}": two_layer_weights[f"linear{j}.{p}"]
                         for i, j in ((0, 1), (2, 2)) for p in ("weight", "bias")})
    expected = _reference_net(reference, two_layer_weights)(x).detach()
    expect_tensor(seq(x), expected, name="make_sequential(1000, 100, 10)(x)", rtol=1e-4,
                  atol=1e-5)


@pytest.mark.points(1)
def test_mse_generated(student, reference, data, rng):
    """MSELoss on generated (64, 10) predictions: mean, not sum"""
    _, y = data
    outputs = y + torch.from_numpy(rng.normal(0, 0.5, tuple(y.shape)).astype(np.float32))
    outputs.requires_grad_(True)
    got = student.MSELoss()(outputs, y)
    expected = reference.MSELoss()(outputs, y).item()
    assert isinstance(got, torch.Tensor) and got.numel() == 1, (
        "MSELoss()(outputs, targets) should return a single-element tensor, not "
        f"{kind_of(got)}")
    assert got.requires_grad, (
        "MSELoss()(outputs, targets) is cut off from the graph (it does not require grad although "
        "outputs does): loss.backward() could not reach the model. Compute it with tensor "
        "operations on outputs, not through .item(), .detach(), torch.tensor(...) or NumPy")
    value = got.item()
    if np.isclose(value, expected * y.numel(), rtol=1e-4):
        raise AssertionError(
            f"your MSELoss is the sum of the squared differences ({value:.6g}), {y.numel()} "
            "times the mean; the mean squared error divides by the number of elements: "
            "use .mean(), as nn.MSELoss() does by default")
    if np.isclose(value, (outputs - y).abs().mean().item(), rtol=1e-4):
        raise AssertionError("your MSELoss is the mean absolute difference; square it")
    expect_number(value, expected, name="MSELoss()(outputs, targets)", rtol=1e-5)


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_gradient_descent_generated(gradient_descent, two_layer_weights, data):
    """GradientDescent: step() moves every parameter by -lr * grad, zero_grad() clears the gradients"""
    x, y = data
    gradient_descent(two_layer_weights, x, y, 3, LR)


@pytest.mark.points(1)
def test_train_steps(train_check, two_layer_weights, data):
    """train: 20 steps of the lesson's loop, the loss of each step recorded before its update"""
    x, y = data
    train_check(two_layer_weights, x, y, 20, LR)


@pytest.mark.points(1)
def test_dynamic_net(student, reference, rng):
    """DynamicNet shares one middle layer, applied 0 to 3 times"""
    d_in, h, d_out = int(rng.integers(5, 20)), int(rng.integers(5, 20)), int(rng.integers(2, 6))
    x = torch.from_numpy(rng.standard_normal((16, d_in)).astype(np.float32))
    net = student.DynamicNet(d_in, h, d_out)
    got_shapes = _shapes(net.state_dict(destination={}))
    names = ["input_linear", "middle_linear", "output_linear"]
    sizes = [(d_in, h), (h, h), (h, d_out)]
    want = {f"{n}.{p}": (o, i) if p == "weight" else (o,)
            for n, (i, o) in zip(names, sizes, strict=True) for p in ("weight", "bias")}
    if got_shapes != want:
        raise AssertionError(
            f"DynamicNet({d_in}, {h}, {d_out}) has the parameters {sorted(got_shapes)}; "
            f"weight sharing means exactly one middle layer: {sorted(want)}. Reusing the same "
            "nn.Linear object in the loop shares its weights; separate layers do not")
    weights = {}
    for (n, (i, o)) in zip(names, sizes, strict=True):
        bound = 1 / np.sqrt(i)
        weights[f"{n}.weight"] = torch.from_numpy(
            rng.uniform(-bound, bound, (o, i)).astype(np.float32))
        weights[f"{n}.bias"] = torch.from_numpy(rng.uniform(-bound, bound, o).astype(np.float32))
    net.load_state_dict(weights)
    ref = reference.DynamicNet(d_in, h, d_out)
    ref.load_state_dict(weights)
    outputs = []
    for n_middle in range(4):
        want_out = ref(x, n_middle).detach()
        expect_tensor(net(x, n_middle), want_out, name=f"DynamicNet(x, n_middle={n_middle})",
                      rtol=1e-4, atol=1e-6)
        outputs.append(want_out)
    for _ in range(3):
        got = net(x)
        assert isinstance(got, torch.Tensor) and any(
            got.shape == o.shape and torch.allclose(got, o, rtol=1e-4, atol=1e-6)
            for o in outputs), (
            "DynamicNet(x) with n_middle=None should apply the middle layer "
            "random.randint(0, 3) times")


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_linear_regression_generated(linear_regression, rng):
    """LinearRegression: model.parameters() gives an optimizer weight and bias, and both get gradients"""
    n = int(rng.integers(20, 40))
    x = torch.from_numpy(rng.uniform(0, 1, (n, 1)).astype(np.float32))
    y = 2 * x + float(rng.uniform(0, 1))
    weight, bias = (torch.from_numpy(rng.normal(0, 1, 1).astype(np.float32)) for _ in range(2))
    linear_regression(x, y, weight, bias, gradients=True)
