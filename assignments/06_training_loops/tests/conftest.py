"""Training and held-out data for the public and hidden tests (no answers live here).

Each fixture draws a training set, which is sent to the student's `train_*` function,
and a held-out set from the same distribution, which stays on the trusted side and
scores the returned weights. `train_adam` is deterministic (its starting weights are
given), so its tests replay the material's loop here (`adam_run`) and compare.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


def linear_data(rng, n, w, b, noise=0.05):
    """x uniform in [0, 1), y = w * x + b + a little noise; both (n, 1) float32."""
    x = rng.uniform(0, 1, (n, 1))
    return _t(x), _t(w * x + b + rng.normal(0, noise, (n, 1)))


def quadratic_data(rng, n, a=3.0, c=2.0, grid=False):
    """y = a * x^2 + c + 0.2 * uniform noise, x on a grid of [-1, 1] (or uniform)."""
    x = np.linspace(-1, 1, n).reshape(n, 1) if grid else rng.uniform(-1, 1, (n, 1))
    return _t(x), _t(a * x ** 2 + c + 0.2 * rng.uniform(0, 1, (n, 1)))


def cluster_data(rng, n, mu0, mu1):
    """n points of class 0 around mu0 and n of class 1 around mu1 (std 1); y is (2n, 1)."""
    x = np.concatenate([rng.normal(mu0, 1, (n, 2)), rng.normal(mu1, 1, (n, 2))])
    y = np.concatenate([np.zeros((n, 1)), np.ones((n, 1))])
    return _t(x), _t(y)


@pytest.fixture
def linear_problem(rng):
    """(x, y) to train on and (x, y) held out, for a line drawn from the seed."""
    w, b = rng.uniform(1, 3), rng.uniform(0, 1)
    return linear_data(rng, 100, w, b), linear_data(rng, 1000, w, b)


@pytest.fixture
def quadratic_problem(rng):
    """The quadratic fit with a and c drawn from the seed; 100 grid points to train on."""
    a, c = rng.uniform(2, 4), rng.uniform(1, 3)
    return quadratic_data(rng, 100, a, c, grid=True), quadratic_data(rng, 1000, a, c)


@pytest.fixture
def cluster_problem(rng):
    """Two Gaussian clusters 4.8 apart, in a direction and place drawn from the seed."""
    angle = rng.uniform(0, 2 * np.pi)
    shift = 2.4 * np.array([np.cos(angle), np.sin(angle)])
    centre = rng.uniform(-1.5, 1.5, 2)
    mu0, mu1 = centre + shift, centre - shift
    return cluster_data(rng, 100, mu0, mu1), cluster_data(rng, 1000, mu0, mu1)


@pytest.fixture
def material_problems():
    """The material's own data sets, the same for everyone (public tests)."""
    rng = np.random.default_rng(100)
    return {
        # x = torch.rand(100, 1); y = 2 * x + torch.rand(1)
        "linear": (linear_data(rng, 100, 2.0, 0.3), linear_data(rng, 500, 2.0, 0.3)),
        # x = linspace(-1, 1, 100); y = 3 * x^2 + 2 + 0.2 * rand
        "quadratic": (quadratic_data(rng, 100, grid=True), quadratic_data(rng, 500)),
        # x0 = normal(1.7, 1) + 1 (class 0), x1 = normal(-1.7, 1) + 1 (class 1)
        "logistic": (cluster_data(rng, 100, 2.7, -0.7), cluster_data(rng, 500, 2.7, -0.7)),
        # N, D_in, H, D_out = 64, 1000, 100, 10; x = randn(N, D_in); y = randn(N, D_out)
        "adam": two_layer_problem(rng),
    }


@pytest.fixture
def adam_problem(rng):
    """The material's network sizes with starting weights and data drawn from the seed."""
    return two_layer_problem(rng)


def two_layer_problem(rng, n=64, d_in=1000, h=100, d_out=10):
    """The material's nn + optim example: starting weights for Linear(d_in, h), ReLU,
    Linear(h, d_out) (nn.Linear's own uniform initialisation), x (n, d_in), y (n, d_out)."""
    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return torch.from_numpy(rng.uniform(-bound, bound, shape).astype(np.float32))

    state = {"0.weight": uniform((h, d_in), d_in), "0.bias": uniform((h,), d_in),
             "2.weight": uniform((d_out, h), h), "2.bias": uniform((d_out,), h)}
    x = torch.from_numpy(rng.standard_normal((n, d_in)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((n, d_out)).astype(np.float32))
    return state, x, y


def adam_run(state, x, y, steps, lr, optimizer="adam", reduction="sum", zero_grad=True):
    """The material's loop from `state`: (trained weights, every step's loss).

    The keyword arguments replay the usual mistakes (SGD, the mean, no zero_grad), so a
    failing test can say which one the student's numbers match. Adam's update is written
    out as torch.optim.Adam computes it (its defaults, one tensor at a time): the first
    torch.optim optimizer a process makes imports torch._dynamo, about 2 s of grading time.
    """
    import torch.nn.functional as F

    params = {k: v.detach().clone().requires_grad_(True) for k, v in state.items()}
    grads = {k: torch.zeros_like(v) for k, v in params.items()}
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v2 = {k: torch.zeros_like(v) for k, v in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    losses = []
    for step in range(1, steps + 1):
        h = F.linear(x, params["0.weight"], params["0.bias"]).relu()
        loss = F.mse_loss(F.linear(h, params["2.weight"], params["2.bias"]), y,
                          reduction=reduction)
        losses.append(loss.item())
        new = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            for (k, p), g in zip(params.items(), new, strict=True):
                grads[k] = grads[k] + g if not zero_grad else g
                g = grads[k]
                if optimizer != "adam":
                    p.add_(g, alpha=-lr)
                    continue
                m[k].lerp_(g, 1 - beta1)
                v2[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v2[k].sqrt() / (1 - beta2 ** step) ** 0.5).add_(eps)
                p.addcdiv_(m[k], denom, value=-lr / (1 - beta1 ** step))
    return {k: p.detach() for k, p in params.items()}, losses


ADAM_LAYOUTS = {"0.weight": "linear1.weight", "0.bias": "linear1.bias",
                "2.weight": "linear2.weight", "2.bias": "linear2.bias"}


def _adam_result(returned, steps, call):
    """(weights as a dict of float tensors, losses as floats) from what train_adam returned."""
    from grader.proxy import RemoteObject

    assert isinstance(returned, (tuple, list)) and len(returned) == 2, (
        f"{call} should return a pair (model.state_dict(), losses), not a "
        f"{type(returned).__name__}")
    state, losses = returned
    if not (isinstance(state, dict) or (isinstance(state, RemoteObject)
                                        and state.type_name == "OrderedDict")):
        raise AssertionError(f"the first item {call} returns should be the trained weights, "
                             "model.state_dict(), not a " + type(state).__name__)
    weights = {}
    for key, other in ADAM_LAYOUTS.items():  # nn.Sequential's keys, or the material's TwoLayerNet
        value = state.get(key)
        value = state.get(other) if value is None else value
        assert isinstance(value, torch.Tensor), (
            f"the weights {call} returns have no tensor {key!r}: return model.state_dict() of "
            "nn.Sequential(nn.Linear(D_in, H), nn.ReLU(), nn.Linear(H, D_out))")
        weights[key] = value.detach().to(torch.float32)
    if isinstance(losses, torch.Tensor):
        losses = losses.detach().reshape(-1).tolist()
    assert isinstance(losses, (list, tuple)), (
        f"the second item {call} returns should be the list of every step's loss.item(), not "
        f"a {type(losses).__name__}")
    out = []
    for value in losses:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.detach().item()
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"the losses {call} returns should be numbers (loss.item()), not "
            f"{type(value).__name__}")
        out.append(float(value))
    assert len(out) == steps, (
        f"{call} returned {len(out)} losses; it should return one per step, {steps}: append "
        "loss.item() in every step of the loop")
    return weights, out


def _close(weights, expected):
    return all(weights[k].shape == v.shape
               and torch.allclose(weights[k], v, rtol=1e-4, atol=1e-5, equal_nan=True)
               for k, v in expected.items())


def check_adam(returned, state, x, y, steps, lr, call):
    """train_adam's answer against the material's loop, saying which mistake it matches."""
    weights, losses = _adam_result(returned, steps, call)
    for k, v in state.items():
        assert weights[k].shape == v.shape, (
            f"the trained {k!r} has shape {tuple(weights[k].shape)}; the starting weights' is "
            f"{tuple(v.shape)}: load `state` into the model with model.load_state_dict(state)")
    expected, expected_losses = adam_run(state, x, y, steps, lr)
    got, want = np.array(losses), np.array(expected_losses)
    losses_right = np.allclose(got, want, rtol=1e-4, atol=1e-6)
    weights_right = _close(weights, expected)
    if losses_right and weights_right:
        return
    n_terms = y.numel()
    if not losses_right and np.isclose(got[0], want[0] / n_terms, rtol=1e-4):
        raise AssertionError(
            f"your losses are the mean of the squared errors: the first is {got[0]:.4g}, the "
            f"sum over all {y.shape[0]} x {y.shape[1]} entries is {want[0]:.4g}. nn.MSELoss() "
            "averages by default; the material's loss_fn is nn.MSELoss(reduction='sum')")
    if not losses_right and np.isclose(got[0], want[0] / 2, rtol=1e-4):
        raise AssertionError(
            f"your first loss is {got[0]:.4g}, half the summed squared error {want[0]:.4g}: "
            "use nn.MSELoss(reduction='sum') itself, without the 0.5")
    if not losses_right and steps > 1 and np.allclose(got[:-1], want[1:], rtol=1e-4, atol=1e-6):
        raise AssertionError(
            "your losses[t] is the loss after step t's update; record loss.item() of the loss "
            "you call backward() on, before optimizer.step()")
    if weights_right:
        raise AssertionError(
            f"your weights are right, but the losses are not every step's loss.item(): the "
            f"first is {got[0]:.6g}, expected {want[0]:.6g}; the last is {got[-1]:.6g}, "
            f"expected {want[-1]:.6g}")
    mistakes = [
        (dict(zero_grad=False),
         "you never zero the gradients, so they accumulate: loss.backward() adds to every "
         ".grad, and without optimizer.zero_grad() in each step Adam is fed the sum of all "
         "earlier gradients (the loss then stops falling and climbs); call "
         "optimizer.zero_grad() before loss.backward() in every step, as the material does"),
        (dict(optimizer="sgd"),
         "your weights are what plain gradient descent gives: the exercise trains with "
         "torch.optim.Adam(model.parameters(), lr=lr), not torch.optim.SGD"),
        (dict(optimizer="sgd", zero_grad=False),
         "your weights are what plain gradient descent gives, with gradients never zeroed: "
         "train with torch.optim.Adam(model.parameters(), lr=lr) and call "
         "optimizer.zero_grad() in every step"),
    ]
    if not np.isclose(lr, 1e-4):
        mistakes.append((dict(lr=1e-4), f"your run used the material's lr=1e-4, but this call "
                                        f"asked for lr={lr:g}: pass the lr argument to Adam"))
    for kwargs, message in mistakes:
        run_lr = kwargs.pop("lr", lr)
        other, other_losses = adam_run(state, x, y, steps, run_lr, **kwargs)
        if _close(weights, other) or np.allclose(got, other_losses, rtol=1e-4, atol=1e-6,
                                                  equal_nan=True):
            raise AssertionError(message)
    if all(torch.equal(weights[k], v) for k, v in state.items()):
        raise AssertionError(
            "your returned weights are the starting weights: return the state_dict of the model "
            "you trained, after the loop (and check that optimizer.step() runs every step)")
    if not losses_right:
        raise AssertionError(
            f"your losses differ from the material's loop from these starting weights: the first "
            f"is {got[0]:.6g}, expected {want[0]:.6g} (the summed squared error of the starting "
            f"model); the last is {got[-1]:.6g}, expected {want[-1]:.6g}. Load `state` with "
            "model.load_state_dict(state) and do not re-initialise the layers; train with "
            "Adam(lr=lr) and nn.MSELoss(reduction='sum'), zeroing the gradients every step")
    raise AssertionError(
        "your losses are right, but the returned weights are not the model's after the last "
        "step: return model.state_dict() after the loop")


def logistic_verdict(w, b, x_test, y_test, min_accuracy, max_bce):
    """None when w, b classify the held-out points well; else what is wrong, in the
    lesson's terms. Weights that are far too large (overconfident: shrinking them lowers
    the loss) are what gradients that are never zeroed give; an underfit model's weights
    are too small (growing them would lower the loss)."""
    def scores(scale):
        logits = scale * (x_test @ w.T + b)
        accuracy = ((logits > 0).float() == y_test).float().mean().item()
        # from the logits, exactly: clamping probabilities would cap what a confidently
        # wrong point costs, and hide weights that are far too large
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_test).item()
        return accuracy, bce

    accuracy, bce = scores(1.0)
    if accuracy >= min_accuracy and bce <= max_bce:
        return None
    if accuracy < 1 - min_accuracy:
        return (f"your model gets the classes the wrong way round (held-out accuracy "
                f"{accuracy:.1%}): class 1 is y = 1, and the Sigmoid's output is the "
                "probability of class 1")
    shrunk = scores(0.2)[1]
    said = (f"held-out accuracy {accuracy:.1%} (needs {min_accuracy:.0%}) and binary "
            f"cross-entropy {bce:.3g} (needs at most {max_bce})")
    if shrunk < bce:
        return (f"{said}: your model is overconfident, not underfit. Its weights are far too "
                f"large (|weight| = {w.norm().item():.3g}): dividing them by 5 would lower the "
                f"held-out loss to {shrunk:.3g}. That is what gradients that are never zeroed "
                "do: loss.backward() adds to every .grad, so without optimizer.zero_grad() in "
                "each iteration every step uses the sum of all earlier gradients and the "
                "weights keep growing. Call optimizer.zero_grad() once per iteration (the "
                "material: backward, step, zero_grad); a learning rate far above the "
                "material's 0.01 can do this too")
    if accuracy < min_accuracy:
        return (f"{said}: your model is underfit (its weights are too small to separate these "
                "well-separated clusters yet): train longer or with a larger learning rate "
                "(the material: 1000 iterations, SGD with lr=0.01 and momentum=0.9, BCELoss)")
    return (f"{said}: your model is underfit: it separates the clusters but is not yet "
            "confident; train longer or with a larger learning rate (the material: 1000 "
            "iterations, SGD with lr=0.01 and momentum=0.9)")


@pytest.fixture
def checks():
    """The checks both suites apply (what is right, and which mistake it looks like)."""
    return SimpleNamespace(adam=check_adam, logistic=logistic_verdict)
