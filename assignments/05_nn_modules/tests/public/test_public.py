"""Public tests: run them with `grader check`."""

import pytest
import torch

from grader.checks import expect_number, expect_tensor

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


def _gradient_descent(x, y, weights, steps, lr=0.1, zero_grad=True):
    """Losses and final weights of full-batch gradient descent on the mean squared error."""
    w = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
    losses = []
    for _ in range(steps):
        if zero_grad:
            for v in w.values():
                v.grad = None
        loss = ((_forward(x, w) - y) ** 2).mean()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for v in w.values():
                v -= lr * v.grad
    return losses, {k: v.detach() for k, v in w.items()}


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
    outputs = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    targets = torch.tensor([[0.0, 2.0], [5.0, 4.5]])
    value = student.MSELoss()(outputs, targets)
    assert isinstance(value, torch.Tensor), (
        "MSELoss()(outputs, targets) should return a tensor (so that loss.backward() works), "
        f"not a {type(value).__name__}")
    expect_number(value.item(), (1.0 + 4.0 + 0.25) / 4, name="MSELoss()(outputs, targets)")


@pytest.mark.points(1)
def test_train_small(student, small_weights, small_data):
    """train: two steps of GradientDescent(lr=0.1) with MSELoss on TwoLayerNet(4, 3, 2)"""
    x, y = small_data
    net = student.TwoLayerNet(4, 3, 2)
    net.load_state_dict(small_weights)
    losses = student.train(net, x, y, student.GradientDescent(net.parameters(), lr=0.1),
                           student.MSELoss(), 2)
    expected_losses, w = _gradient_descent(x, y, small_weights, steps=2)
    assert isinstance(losses, list) and len(losses) == 2, (
        f"train(..., steps=2) should return a list of 2 losses, not {losses!r}")
    for t in range(2):
        expect_number(losses[t], expected_losses[t], name=f"the loss of step {t}", rtol=1e-5)
    trained = net.state_dict(destination={})
    _, accumulated = _gradient_descent(x, y, small_weights, steps=2, zero_grad=False)
    assert not all(torch.allclose(trained[k], v, atol=1e-6) for k, v in accumulated.items()), (
        "you forgot to zero the gradients between steps, so they accumulated: the second step "
        "used the sum of both steps' gradients; call optimizer.zero_grad() in every step")
    for k, v in w.items():
        expect_tensor(trained[k], v, name=f"{k} after two steps")
