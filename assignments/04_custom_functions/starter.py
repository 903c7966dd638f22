# %% [markdown]
# # Custom autograd Functions: forward, backward and ctx.save_for_backward
#
# Autograd knows the derivative of every built-in operation. When you need an operation
# of your own, with a gradient you write yourself, subclass `torch.autograd.Function` and
# give it two static methods:
#
# - `forward(ctx, x)` computes the output from the input tensor. `ctx` is a context object
#   that carries information from forward to backward: save the tensors backward will need
#   with `ctx.save_for_backward(x)`.
# - `backward(ctx, grad_output)` receives the gradient of the loss with respect to the
#   output, dL/dy, and returns the gradient with respect to the input,
#   dL/dx = grad_output * f'(x) (the chain rule). Read the saved tensors back with
#   `x, = ctx.saved_tensors`. Never write into `grad_output` (no `grad_output[...] = ...`,
#   `*=` or `_` methods on it): it is autograd's tensor, and other branches of the graph
#   receive the same tensor. Return a new tensor, or change a clone
#   (`grad_input = grad_output.clone()`). The grader checks that grad_output is unchanged.
#
# You never call `forward` or `backward` yourself: `y = MyReLU.apply(x)` runs forward and
# records a node in the graph (`y.grad_fn`, of class `MyReLUBackward`), and `y.backward()`
# calls your backward through it.
#
# Write the three Functions below. All three work element by element: the output and the
# gradient have the shape **and the dtype** of the input (float64 in, float64 out). The
# library's versions are not allowed here (`torch.relu`, `F.relu`, `F.softplus`,
# `nn.ReLU`, `nn.Softplus`, and `torch.autograd.grad` inside backward): the lesson is to
# write the formula and its derivative yourself. `torch.exp`, `torch.log1p`,
# `torch.sigmoid` and `clamp` are fine.

# %%
import torch

# %% [markdown]
# ## 1. MyReLU (the material's example)
#
# relu(x) = max(x, 0). Its derivative is 1 where x > 0 and 0 where x < 0, so backward
# passes grad_output through unchanged where x > 0 and **masks** it to zero where x < 0.
# The material clones grad_output first (`grad_input = grad_output.clone()`) so that it
# does not change autograd's tensor in place, then sets `grad_input[x < 0] = 0`.
# At exactly x = 0 the derivative is undefined; the grader never tests that point.

# %%
class MyReLU(torch.autograd.Function):
    """ReLU with a hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        """Save x with ctx.save_for_backward; return max(x, 0) (x.clamp(min=0))."""
        raise NotImplementedError("MyReLU.forward: ctx.save_for_backward(x), then x.clamp(min=0)")

    @staticmethod
    def backward(ctx, grad_output):
        """Return grad_output where x >= 0 and 0 where x < 0."""
        raise NotImplementedError("MyReLU.backward: x, = ctx.saved_tensors; clone grad_output "
                                  "and zero it where x < 0")


# %% [markdown]
# ## 2. MySoftplus
#
# The material's activation functions include Softplus, a smooth approximation of ReLU:
# softplus(x) = log(1 + e^x). Its derivative is e^x / (1 + e^x) = sigmoid(x), so
# backward returns grad_output * sigmoid(x).
#
# The tests use inputs in the material's range [-6, 6] (x = linspace(-6, 6, 100)) and, in
# one hidden test, large inputs: |x| up to 1000. Mind them: in float64, e^x overflows to inf
# for x above about 709, so the formula as written gives inf for softplus(1000) (whose value
# is 1000). Rewrite log(1 + e^x) = max(x, 0) + log(1 + e^-|x|) so that exp never sees a
# large positive number (`torch.log1p(t)` is log(1 + t), accurate for small t). Backward
# too must stay finite there: e^x / (1 + e^x) is inf / inf = nan at x = 1000, while
# `torch.sigmoid(x)` is computed without overflow.

# %%
class MySoftplus(torch.autograd.Function):
    """softplus(x) = log(1 + e^x) with a hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        """Save x; return log(1 + e^x), without overflow for large x."""
        raise NotImplementedError("MySoftplus.forward: save x, return log(1 + e^x)")

    @staticmethod
    def backward(ctx, grad_output):
        """Return grad_output * sigmoid(x)."""
        raise NotImplementedError("MySoftplus.backward: the chain rule with "
                                  "d/dx log(1 + e^x) = sigmoid(x)")


# %% [markdown]
# ## 3. LegendreP3
#
# The PyTorch tutorial the material summarises ("Learning PyTorch with Examples") fits
# y = sin(x) on [-pi, pi] with a + b * P3(c + d * x), where P3 is the Legendre polynomial
# of degree 3, written as a custom Function:
#
#     P3(x) = 0.5 * (5x^3 - 3x)        P3'(x) = 1.5 * (5x^2 - 1)
#
# A check: P3(1) = 1, P3(-1) = -1, P3(0) = 0, and P3'(0) = -1.5.

# %%
class LegendreP3(torch.autograd.Function):
    """The Legendre polynomial P3 with a hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        """Save x; return 0.5 * (5x^3 - 3x)."""
        raise NotImplementedError("LegendreP3.forward: save x, return 0.5 * (5 * x ** 3 - 3 * x)")

    @staticmethod
    def backward(ctx, grad_output):
        """Return grad_output * P3'(x)."""
        raise NotImplementedError("LegendreP3.backward: grad_output times the derivative of P3")


# %% [markdown]
# ## How the grader runs your Functions
#
# The grader calls `MyReLU.apply(x)` on a tensor `x` that requires grad, looks at
# `y.grad_fn` (it should be your `MyReLUBackward`, with the tensors forward saved with
# `ctx.save_for_backward`), calls `y.backward(grad_output)`, reads `x.grad` and checks that
# grad_output is unchanged. It checks the numbers on its side, against the formulas and
# against finite differences of your own forward. Do the same round trip yourself:
#
#     x = torch.tensor([-1.0, 2.0], requires_grad=True)
#     y = MyReLU.apply(x)
#     y.backward(torch.tensor([10.0, 10.0]))
#     y, x.grad, type(y.grad_fn).__name__      # tensor([0., 2.]), tensor([ 0., 10.]), 'MyReLUBackward'
#
# and compare your backward with finite differences of your forward:
#
#     x = torch.randn(5, dtype=torch.float64, requires_grad=True)
#     torch.autograd.gradcheck(LegendreP3.apply, (x,))   # True when backward is right
