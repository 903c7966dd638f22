"""Public tests: run them with `grader check`."""

import pytest
import torch

from grader.checks import expect_number, expect_tensor, kind_of

# state_dict() returns an OrderedDict, which the wire does not carry as plain data (only
# an exact dict); state_dict(destination={}) fills and returns the plain dict we send.


def _shapes(state):
    """{name: shape} of a state_dict that came back from the sandbox."""
    assert isinstance(state, dict), "state_dict() should return a dict of tensors"
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def _forward(x, w):
    """linear2(relu(linear1(x))) with the weights of a state_dict."""
    h = (x @ w["linear1.weight"].T + w["linear1.bias"]).clamp(min=0)
    return h @ w["linear2.weight"].T + w["linear2.bias"]


@pytest.mark.points(1)
def test_two_layer_net_small(student, small_weights, small_data):
    """TwoLayerNet(4, 3, 2): layers linear1 and linear2, forward with ReLU"""
    net = student.TwoLayerNet(4, 3, 2)
    want = {k: tuple(v.shape) for k, v in small_weights.items()}
    got = _shapes(net.state_dict(destination={}))
    assert got == want, (f"TwoLayerNet(4, 3, 2) has the parameters {got}; expected {want}: "
                         "two nn.Linear layers (with bias) named linear1 and linear2")
    net.load_state_dict(small_weights)
    x, _ = small_data
    expect_tensor(net(x), _forward(x, small_weights), name="TwoLayerNet(4, 3, 2)(x)")


@pytest.mark.points(1)
def test_sequential_layout(student, small_weights, small_data):
    """make_sequential(4, 3, 2): Linear, ReLU, Linear in that order"""
    seq = student.make_sequential(4, 3, 2)
    want = {"0.weight": (3, 4), "0.bias": (3,), "2.weight": (2, 3), "2.bias": (2,)}
    got = _shapes(seq.state_dict(destination={}))
    assert got == want, (
        f"your Sequential has the parameters {got}; nn.Sequential(Linear(4, 3), ReLU(), "
        f"Linear(3, 2)) has {want} (layer 1 is the ReLU, which has no parameters)")
    seq.load_state_dict({f"{i}.{p}": small_weights[f"linear{j}.{p}"]
                         for i, j in ((0, 1), (2, 2)) for p in ("weight", "bias")})
    x, _ = small_data
    expect_tensor(seq(x), _forward(x, small_weights), name="make_sequential(4, 3, 2)(x)")


@pytest.mark.points(1)
def test_mse_small(student):
    """MSELoss: the mean of the squared differences on a small example"""
    outputs = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    targets = torch.tensor([[0.0, 2.0], [5.0, 4.5]])
    value = student.MSELoss()(outputs, targets)
    assert isinstance(value, torch.Tensor), (
        "MSELoss()(outputs, targets) should return a tensor (so that loss.backward() works), "
        f"not {kind_of(value)}")
    assert value.requires_grad, (
        "MSELoss()(outputs, targets) is cut off from the graph (it does not require grad although "
        "outputs does): loss.backward() could not reach the model. Compute it with tensor "
        "operations on outputs, ((outputs - targets) ** 2).mean(), not through .item(), "
        ".detach(), torch.tensor(...) or NumPy")
    expect_number(value.item(), (1.0 + 4.0 + 0.25) / 4, name="MSELoss()(outputs, targets)")


@pytest.mark.points(1)
def test_gradient_descent_small(gradient_descent, small_weights, small_data):
    """GradientDescent(lr=0.1): step() and zero_grad() on a small network"""
    x, y = small_data
    gradient_descent(small_weights, x, y, 2, 0.1)


@pytest.mark.points(1)
def test_train_small(train_check, small_weights, small_data):
    """train: two steps of the lesson's loop, with the grader's own model and loss"""
    x, y = small_data
    train_check(small_weights, x, y, 2, 0.1)


@pytest.mark.points(1)
def test_linear_regression_small(linear_regression):
    """LinearRegression: weight and bias are nn.Parameters, forward is weight * x + bias"""
    x = torch.tensor([[0.0], [0.5], [1.0], [2.0]])
    linear_regression(x, 2 * x + 1, torch.tensor([1.5]), torch.tensor([-0.25]), gradients=False)
