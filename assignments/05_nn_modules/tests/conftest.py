"""Inputs and checks shared by the public and hidden tests.

No answers live here: every expected value is computed from the test's own inputs.
"""

import numpy as np
import pytest
import torch

from grader.checks import expect_number, expect_tensor, kind_of, scale_between
from grader.errors import StudentCodeError

# The material's sizes: batch, input, hidden, output.
N, D_IN, H, D_OUT = 64, 1000, 100, 10


def _linear(rng, fan_in, fan_out):
    """Weight (fan_out, fan_in) and bias (fan_out,), float32, uniform like nn.Linear's init."""
    bound = 1.0 / np.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
    bias = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return torch.from_numpy(weight), torch.from_numpy(bias)


def make_weights(rng, names, sizes):
    """A state_dict: for each layer name, its weight and bias for (fan_in, fan_out)."""
    state = {}
    for name, (fan_in, fan_out) in zip(names, sizes, strict=True):
        state[f"{name}.weight"], state[f"{name}.bias"] = _linear(rng, fan_in, fan_out)
    return state


def make_data(rng, n=N, d_in=D_IN, d_out=D_OUT):
    """x (n, d_in) and y (n, d_out), float32 standard normal, as in the material."""
    x = torch.from_numpy(rng.standard_normal((n, d_in)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((n, d_out)).astype(np.float32))
    return x, y


@pytest.fixture
def two_layer_weights(rng):
    """TwoLayerNet weights of the material's sizes, drawn from this submission's seed."""
    return make_weights(rng, ["linear1", "linear2"], [(D_IN, H), (H, D_OUT)])


@pytest.fixture
def data(rng):
    """x (64, 1000) and y (64, 10) drawn from this submission's seed."""
    return make_data(rng)


@pytest.fixture
def small_weights():
    """Fixed TwoLayerNet(4, 3, 2) weights, the same for everyone (public tests)."""
    return make_weights(np.random.default_rng(2024), ["linear1", "linear2"], [(4, 3), (3, 2)])


@pytest.fixture
def small_data():
    """Fixed x (5, 4) and y (5, 2), the same for everyone (public tests)."""
    return make_data(np.random.default_rng(7), n=5, d_in=4, d_out=2)


# -- one function at a time -------------------------------------------------------------
#
# Each test judges one of the student's functions. Where that function needs other pieces
# (train needs a model and a loss; GradientDescent needs a model and a loss), the test builds
# them from torch itself inside the sandbox (nn.Sequential of nn.Linear and nn.ReLU,
# nn.L1Loss, or a loss from tensor methods), never from the student's TwoLayerNet or
# MSELoss: a wrong loss or a forward without its ReLU then costs only its own tests. torch
# is reached through the submission's own `import torch`.
#
# train is run with the student's GradientDescent (given a list of the parameters) when it
# works (`gradient_descent_fault`), and with torch.optim.ASGD set up as plain gradient descent
# when it does not: torch.optim only then, since its first use imports torch._dynamo, about
# 2 s of CPU. This side computes every expected value with plain loops, never torch.optim.

NOT_A_MODULE = ("make it an nn.Module: class LinearRegression(nn.Module), with "
                "super().__init__() in __init__")
# Errors torch raises for this lesson's usual slips, and what to do about them.
ERROR_HINTS = (
    ("object has no attribute 'zero_'",
     "before the first backward() every param.grad is None: zero only the gradients that exist "
     "(if param.grad is not None: param.grad.zero_()), or set param.grad = None"),
    ("leaf Variable that requires grad is being used in an in-place operation",
     "change the parameters inside `with torch.no_grad():` (autograd refuses an in-place "
     "change of a leaf that requires grad while it records the graph)"),
    ("object has no attribute 'grad'",
     "GradientDescent(params, lr) receives the parameters as one argument (model.parameters(), "
     "a generator, or a list): keep self.params = list(params); the material's "
     "gradient_descent(*params, lr) takes them one by one instead"),
    ("does not require grad and does not have a grad_fn",
     "the loss has no graph to back-propagate: compute it from model(x) with tensor "
     "operations, not under torch.no_grad(), .detach() or from .item()"),
    ("before Module.__init__() call",
     "call super().__init__() first in __init__, before creating layers or nn.Parameters"),
    ("no attribute `state_dict`", NOT_A_MODULE),
    ("no attribute 'state_dict'", NOT_A_MODULE),
    ("backward through the graph a second time",
     "call loss.backward() once per step, on a loss computed afresh from model(x) in that step"),
)


def hinted(exc: StudentCodeError) -> AssertionError | StudentCodeError:
    """The student's error, with what to do when it is one of the lesson's usual slips."""
    hints = [hint for clue, hint in ERROR_HINTS if clue in str(exc)]
    if not hints:
        return exc
    first, _, rest = str(exc).partition("\n")
    return AssertionError(f"{first}\nhint: {hints[0]}\n{rest}")


def sandbox_torch(student):
    """torch inside the sandbox, as the submission imported it (the starter's `import torch`)."""
    if student.defines("torch"):
        return student.torch
    if student.defines("nn"):  # `from torch import nn` alone: torch.nn.functional imports torch
        return student.nn.functional.torch
    raise AssertionError(
        "your submission does not import torch (the starter's `import torch` and "
        "`from torch import nn`): keep those imports, the grader builds its own model and "
        "loss with them to test each of your functions on its own")


def as_sequential(weights):
    """TwoLayerNet weights (linear1.*, linear2.*) as nn.Sequential's (0.*, 2.*)."""
    return {k.replace("linear1.", "0.").replace("linear2.", "2."): v for k, v in weights.items()}


def sandbox_net(torch_remote, weights):
    """nn.Sequential(Linear, ReLU, Linear) built from torch in the sandbox, with these weights."""
    state = as_sequential(weights)
    d_hidden, d_in = state["0.weight"].shape
    d_out = state["2.weight"].shape[0]
    nn_remote = torch_remote.nn
    model = nn_remote.Sequential(nn_remote.Linear(d_in, d_hidden), nn_remote.ReLU(),
                                 nn_remote.Linear(d_hidden, d_out))
    model.load_state_dict(state)
    return model


def trusted_net(weights):
    """The same network on this side."""
    state = as_sequential(weights)
    d_hidden, d_in = state["0.weight"].shape
    net = torch.nn.Sequential(torch.nn.Linear(d_in, d_hidden), torch.nn.ReLU(),
                              torch.nn.Linear(d_hidden, state["2.weight"].shape[0]))
    net.load_state_dict(state)
    return net


def same_state(state, expected, rtol=1e-4, atol=1e-6):
    """Every tensor of `expected` is in `state`, with its shape and (nearly) its values."""
    return isinstance(state, dict) and all(
        isinstance(state.get(k), torch.Tensor) and state[k].shape == v.shape
        and torch.allclose(state[k].detach().float(), v.float(), rtol=rtol, atol=atol)
        for k, v in expected.items())


# -- GradientDescent, driven step by step from this side --------------------------------

def _mse_remote(model, xs, ys):
    """((model(x) - y) ** 2).mean() built from tensor methods in the sandbox: no one's loss class."""
    return model.forward.keep(xs).sub.keep(ys).pow.keep(2).mean.keep()


def _drive(opt, model, xs, ys, steps):
    """The lesson's loop around the student's optimizer; the model's state_dict after it."""
    for _ in range(steps):
        opt.zero_grad()
        _mse_remote(model, xs, ys).backward()
        opt.step()
    return model.state_dict(destination={})


def _descend(net, steps, lr, loss_of, *, zero_grad=True, losses=None):
    """Plain gradient descent on this side: the expected result of the lesson's loop."""
    params = list(net.parameters())
    for _ in range(steps):
        if zero_grad:
            for p in params:
                p.grad = None
        loss = loss_of(net)
        if losses is not None:
            losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def expected_descent(weights, x, y, steps, lr):
    """The state_dict after `steps` steps of gradient descent on the mean squared error."""
    return _descend(trusted_net(weights), steps, lr, lambda net: ((net(x) - y) ** 2).mean())


NO_UPDATE = (
    "after optimizer.step() every parameter is as it was: step() must change each parameter "
    "in place, inside `with torch.no_grad():`, by `param -= lr * param.grad` (or "
    "param.sub_(lr * param.grad)). `param = param - lr * param.grad` computes a new tensor "
    "and only rebinds the loop variable: the model keeps its old parameter")
EXHAUSTED = (
    "GradientDescent(model.parameters(), lr) updated nothing, but the same class given a list "
    "of the parameters works: model.parameters() is a generator, which can be iterated only "
    "once, and your zero_grad() used it up, so step() found no parameters left. Keep them as "
    "a list in __init__: self.params = list(params)")
ZERO_GRAD = (
    "after optimizer.zero_grad() some param.grad still holds the last gradient: backward() "
    "adds to param.grad, so every later step would use the sum of all gradients so far. "
    "zero_grad() must set each parameter's gradient to zero (param.grad.zero_()) or to None")


def _step_message(name, got, before, expected, lr):
    """What a step that moved `name` the wrong way did, in terms of -lr * grad."""
    if not (isinstance(got, torch.Tensor) and got.shape == expected.shape):
        return None
    c = scale_between((got - before).double().numpy(), (expected - before).double().numpy())
    if c is None or abs(c - 1) < 1e-3:
        return None
    if abs(c + 1) < 1e-3:
        return (f"step() moved {name} by +lr * grad, uphill: gradient descent goes against "
                "the gradient, param -= lr * param.grad")
    return (f"step() moved {name} by {c:.3g} times -lr * grad (lr = {lr:g}): the update is "
            "param -= lr * param.grad, with the lr the optimizer was given")


def _parameter_handles(model, names):
    """Handles on the model's own Parameter objects, in the sandbox (a list to pass on)."""
    return [model.get_parameter.keep(name) for name in names]


def check_gradient_descent(student, weights, x, y, steps, lr):
    """GradientDescent(model.parameters(), lr) on a torch-built net: step, zero_grad, steps.

    The loop is this side's: zero_grad(), a loss from tensor methods, backward(), step(),
    so nothing of the student's but GradientDescent runs.
    """
    torch_remote = sandbox_torch(student)
    initial = as_sequential(weights)
    model = sandbox_net(torch_remote, weights)
    xs, ys = student.put(x), student.put(y)
    try:
        opt = student.GradientDescent(model.parameters(), lr=lr)
        state = _drive(opt, model, xs, ys, 1)
        if same_state(state, initial, rtol=0, atol=0):
            fresh = sandbox_net(torch_remote, weights)
            listed = student.GradientDescent(_parameter_handles(fresh, initial), lr=lr)
            if not same_state(_drive(listed, fresh, xs, ys, 1), initial, rtol=0, atol=0):
                raise AssertionError(EXHAUSTED)
            raise AssertionError(NO_UPDATE)
        for name, value in expected_descent(weights, x, y, 1, lr).items():
            message = _step_message(name, state.get(name), initial[name], value, lr)
            if message:
                raise AssertionError(message)
            expect_tensor(state.get(name), value, name=f"{name} after one step", rtol=1e-4,
                          atol=1e-6)
        opt.zero_grad()
        grads = [h.grad.get() for h in _parameter_handles(model, initial)]
        if any(isinstance(g, torch.Tensor) and bool(g.abs().max() > 0) for g in grads):
            raise AssertionError(ZERO_GRAD)
        state = _drive(opt, model, xs, ys, steps - 1)
    except StudentCodeError as exc:
        raise hinted(exc) from None
    for name, value in expected_descent(weights, x, y, steps, lr).items():
        expect_tensor(state.get(name), value, name=f"{name} after {steps} steps", rtol=1e-4,
                      atol=1e-6)


def gradient_descent_fault(student, weights, x, y, lr):
    """What is wrong with the student's GradientDescent given a list (None: it works)."""
    try:
        torch_remote = sandbox_torch(student)
        model = sandbox_net(torch_remote, weights)
        names = list(as_sequential(weights))
        opt = student.GradientDescent(_parameter_handles(model, names), lr=lr)
        xs, ys = student.put(x), student.put(y)
        state = _drive(opt, model, xs, ys, 1)
        if not same_state(state, expected_descent(weights, x, y, 1, lr)):
            return "its step() does not move every parameter by -lr * param.grad"
        opt.zero_grad()
        if any(isinstance(g, torch.Tensor) and bool(g.abs().max() > 0)
               for g in (h.grad.get() for h in _parameter_handles(model, names))):
            return "its zero_grad() leaves the gradients as they were"
    except (AssertionError, StudentCodeError) as exc:
        return f"it fails on its own ({str(exc).partition(chr(10))[0]})"
    return None


@pytest.fixture
def gradient_descent(student):
    """gradient_descent(weights, x, y, steps, lr): check the student's GradientDescent alone."""
    return lambda *args: check_gradient_descent(student, *args)


# -- train, given torch's own model and loss ---------------------------------------------

def expected_train(weights, x, y, steps, lr, *, zero_grad=True):
    """(losses, state_dict) of the lesson's loop with nn.L1Loss and plain gradient descent."""
    losses = []
    criterion = torch.nn.L1Loss()
    state = _descend(trusted_net(weights), steps, lr, lambda net: criterion(net(x), y),
                     zero_grad=zero_grad, losses=losses)
    return losses, state


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value):
    return f"a list of {len(value)}" if isinstance(value, list) else kind_of(value)


def _judge_train(losses, state, weights, x, y, steps, lr):
    if isinstance(losses, list) and any(isinstance(v, torch.Tensor) for v in losses):
        raise AssertionError(
            "train returned a list of tensors: append loss.item(), the loss as a Python float "
            "(a loss tensor keeps its whole graph alive, and the list should hold numbers)")
    assert isinstance(losses, list) and len(losses) == steps and all(map(_number, losses)), (
        f"train(..., steps={steps}) should return a list of {steps} losses as Python floats "
        f"(loss.item() of every step), not {_describe(losses)}")
    exp_losses, expected = expected_train(weights, x, y, steps, lr)
    own_mse = ((trusted_net(weights)(x) - y) ** 2).mean().item()
    if not np.isclose(losses[0], exp_losses[0], rtol=1e-5) and np.isclose(
            losses[0], own_mse, rtol=1e-5):
        raise AssertionError(
            "train computed the mean squared error itself instead of calling the criterion it "
            "was given: use loss = criterion(model(x), y) (the grader passed nn.L1Loss())")
    if same_state(state, as_sequential(weights), rtol=0, atol=0):
        raise AssertionError(
            "after train the model's parameters are as they were: every step must call "
            "loss.backward() and then optimizer.step(), with optimizer.zero_grad() before "
            "the backward (zeroing between backward and step throws the gradients away)")
    if not same_state(state, expected) and same_state(
            state, expected_train(weights, x, y, steps, lr, zero_grad=False)[1]):
        raise AssertionError(
            "you forgot to zero the gradients between steps, so they accumulated: backward() "
            "adds to param.grad; call optimizer.zero_grad() in every step of train, before "
            "loss.backward()")
    if steps > 1 and np.allclose(losses[:-1], exp_losses[1:], rtol=1e-5) and not np.allclose(
            losses, exp_losses, rtol=1e-5):
        raise AssertionError(
            "train records each loss after that step's update: the loss of step t is "
            "criterion(model(x), y) computed before step t's optimizer.step()")
    for t in sorted({0, steps - 1}):
        expect_number(losses[t], exp_losses[t], name=f"the loss of step {t}", rtol=1e-4)
    for name, value in expected.items():
        expect_tensor(state.get(name), value, name=f"{name} after {steps} steps", rtol=1e-4,
                      atol=1e-6)


def check_train(student, weights, x, y, steps, lr):
    """train(model, x, y, optimizer, criterion, steps) with torch's net and nn.L1Loss, built in
    the sandbox, and an optimizer that works: the student's GradientDescent when it does."""
    torch_remote = sandbox_torch(student)
    fault = gradient_descent_fault(student, weights, x, y, lr)
    model = sandbox_net(torch_remote, weights)
    try:
        if fault is None:
            opt = student.GradientDescent(_parameter_handles(model, as_sequential(weights)),
                                          lr=lr)
        else:
            # GradientDescent is wrong (its own tests say how), so train gets torch's plain
            # gradient descent instead; only here, since torch.optim's first use costs ~2 s.
            opt = torch_remote.optim.ASGD(model.parameters(), lr=lr, lambd=0.0, alpha=0.0)
        losses = student.train(model, x, y, opt, torch_remote.nn.L1Loss(), steps)
        state = model.state_dict(destination={})
    except StudentCodeError as exc:
        raise hinted(exc) from None
    _judge_train(losses, state, weights, x, y, steps, lr)


@pytest.fixture
def train_check(student):
    """train_check(weights, x, y, steps, lr): check the student's train (and not the rest)."""
    return lambda *args: check_train(student, *args)


# -- LinearRegression: nn.Parameter, not a plain tensor attribute -----------------------

PLAIN_ATTRIBUTE = (
    "LinearRegression().{name} is a plain tensor attribute (like the material's "
    "`self.weight = torch.randn(1, requires_grad=True)`), so it is not a parameter of the "
    "module: nn.Module registers only nn.Parameter attributes (and sub-modules). "
    "model.parameters() does not yield it, an optimizer built from model.parameters() never "
    "updates it, and state_dict() does not save it. Wrap it: "
    "self.{name} = nn.Parameter(torch.randn(1))")


def check_linear_parameters(student):
    """LinearRegression() has exactly the parameters weight and bias, shape (1,); the model."""
    try:
        model = student.LinearRegression()
        state = model.state_dict(destination={}, keep_vars=True)
    except StudentCodeError as exc:
        raise hinted(exc) from None
    assert isinstance(state, dict), "LinearRegression().state_dict() should return a dict"
    for name in ("weight", "bias"):
        if name in state:
            continue
        try:
            value = getattr(model, name).get()
        except StudentCodeError:
            value = None
        if isinstance(value, torch.Tensor):
            raise AssertionError(PLAIN_ATTRIBUTE.format(name=name))
        raise AssertionError(
            f"LinearRegression() has no parameter named {name}: its parameters are "
            f"{sorted(state)}; create self.weight and self.bias as nn.Parameter(torch.randn(1))")
    extra = sorted(set(state) - {"weight", "bias"})
    assert not extra, (
        f"LinearRegression() has the parameters {sorted(state)}; it should have exactly weight "
        "and bias, two nn.Parameter attributes of shape (1,) (y = weight * x + bias, no "
        "nn.Linear inside)")
    for name in ("weight", "bias"):
        value = state[name]
        assert isinstance(value, torch.Tensor) and tuple(value.shape) == (1,), (
            f"LinearRegression().{name} should have shape (1,), like torch.randn(1), not "
            f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
        assert value.requires_grad, (
            f"LinearRegression().{name} is in state_dict() but does not require grad (a buffer "
            "from register_buffer, or nn.Parameter(..., requires_grad=False)): it is not among "
            "model.parameters() that an optimizer updates; use nn.Parameter(torch.randn(1))")
    return model


def check_linear_regression(student, x, y, weight, bias, *, gradients):
    """Parameters, forward, and (gradients=True) what an optimizer would see and use."""
    model = check_linear_parameters(student)
    try:
        model.load_state_dict({"weight": weight, "bias": bias})
        got = model(x)
    except StudentCodeError as exc:
        raise hinted(exc) from None
    expect_tensor(got, x * weight + bias, name="LinearRegression()(x), weight * x + bias",
                  rtol=1e-5, atol=1e-6)
    if not gradients:
        return
    torch_remote = sandbox_torch(student)
    try:
        # What an optimizer built from model.parameters() holds: every parameter, flattened.
        seen = torch_remote.nn.utils.parameters_to_vector(model.parameters())
        model.zero_grad()
        _mse_remote(model, student.put(x), student.put(y)).backward()
        grads = {name: getattr(model, name).grad.get() for name in ("weight", "bias")}
    except StudentCodeError as exc:
        raise hinted(exc) from None
    assert isinstance(seen, torch.Tensor) and sorted(seen.tolist()) == sorted(
        torch.cat([weight, bias]).tolist()), (
        "model.parameters() does not yield exactly weight and bias, so an optimizer built from "
        "it would not update both: register each as an nn.Parameter attribute and nothing else")
    w, b = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    ((x * w + b - y) ** 2).mean().backward()
    for name, want in (("weight", w.grad), ("bias", b.grad)):
        got = grads[name]
        assert isinstance(got, torch.Tensor), (
            f"after loss.backward() LinearRegression().{name}.grad is None: no gradient reached "
            f"{name}, so an optimizer cannot update it. forward must use self.{name} itself "
            "(not self.{name}.data, .detach() or .item())".replace("{name}", name))
        expect_tensor(got, want, name=f"LinearRegression().{name}.grad after the loss's "
                      "backward()", rtol=1e-4, atol=1e-6)


@pytest.fixture
def linear_regression(student):
    """linear_regression(x, y, weight, bias, gradients=...): check the student's LinearRegression."""
    return lambda *args, **kwargs: check_linear_regression(student, *args, **kwargs)
