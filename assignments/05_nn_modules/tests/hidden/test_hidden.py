"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch

from grader.checks import expect_number, expect_tensor

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


def _reference_train(reference, weights, x, y, steps, *, zero_grad=True):
    """The reference's trained state_dict and losses; zero_grad=False shows the classic slip."""
    net = _reference_net(reference, weights)
    opt = reference.GradientDescent(net.parameters(), lr=LR)
    if not zero_grad:
        opt.zero_grad = lambda: None
    losses = reference.train(net, x, y, opt, reference.MSELoss(), steps)
    return net.state_dict(destination={}), losses


def _student_train(student, reference, weights, x, y, steps):
    """Train the student's TwoLayerNet with their optimizer and loss; (state_dict, losses)."""
    net = student.TwoLayerNet(D_IN, H, D_OUT)
    net.load_state_dict(weights)
    before = net(x)
    if isinstance(before, torch.Tensor) and before.shape == (N, D_OUT):
        assert torch.allclose(before, _reference_net(reference, weights)(x).detach(),
                              rtol=1e-4, atol=1e-5), (
            "training starts from your TwoLayerNet, whose forward pass is wrong (see the "
            "TwoLayerNet test); fix it first")
    losses = student.train(net, x, y, student.GradientDescent(net.parameters(), lr=LR),
                           student.MSELoss(), steps)
    assert isinstance(losses, list) and len(losses) == steps, (
        f"train(..., steps={steps}) should return a list of {steps} losses")
    return net.state_dict(destination={}), losses


def _same(state, expected):
    return isinstance(state, dict) and all(
        isinstance(state.get(k), torch.Tensor) and state[k].shape == v.shape
        and torch.allclose(state[k], v, rtol=1e-4, atol=1e-6) for k, v in expected.items())


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
    got = student.MSELoss()(outputs, y)
    expected = reference.MSELoss()(outputs, y).item()
    assert isinstance(got, torch.Tensor) and got.numel() == 1, (
        "MSELoss()(outputs, targets) should return a single-element tensor")
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
def test_train_one_step(student, reference, two_layer_weights, data):
    """one GradientDescent step moves every parameter by -lr * grad"""
    x, y = data
    state, losses = _student_train(student, reference, two_layer_weights, x, y, 1)
    expected, exp_losses = _reference_train(reference, two_layer_weights, x, y, 1)
    if _same(state, two_layer_weights):
        raise AssertionError(
            "after a step the parameters have not changed: `param = param - lr * param.grad` "
            "only rebinds the loop variable; update in place under torch.no_grad(): "
            "`param -= lr * param.grad` (or param.sub_(lr * param.grad))")
    if np.isclose(losses[0], exp_losses[0] * y.numel(), rtol=1e-4):
        raise AssertionError("the loss in train is the sum of the squared differences; "
                             "MSELoss should take the mean")
    expect_number(losses[0], exp_losses[0], name="the loss before the step", rtol=1e-5)
    for name, value in expected.items():
        expect_tensor(state.get(name), value, name=f"{name} after one step", rtol=1e-4,
                      atol=1e-6)


@pytest.mark.points(1)
def test_train_steps(student, reference, two_layer_weights, data):
    """20 training steps: the gradients are zeroed between steps"""
    x, y = data
    state, losses = _student_train(student, reference, two_layer_weights, x, y, 20)
    expected, exp_losses = _reference_train(reference, two_layer_weights, x, y, 20)
    if not _same(state, expected):
        accumulated, _ = _reference_train(reference, two_layer_weights, x, y, 20,
                                          zero_grad=False)
        assert not _same(state, accumulated), (
            "you forgot to zero the gradients between steps, so they accumulated: backward() "
            "adds to param.grad; call optimizer.zero_grad() in every step (and make "
            "zero_grad set each param.grad to zero)")
    assert losses[-1] < losses[0], "the loss should go down over 20 steps of gradient descent"
    for t in (0, 19):
        expect_number(losses[t], exp_losses[t], name=f"the loss of step {t}", rtol=1e-4)
    for name, value in expected.items():
        expect_tensor(state.get(name), value, name=f"{name} after 20 steps", rtol=1e-4,
                      atol=1e-6)


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
