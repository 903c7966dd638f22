"""Hostile: a right forward, and a backward that replays the grader's finite differences.

forward is written honestly and remembers every output it computed. backward writes no
derivative: it looks up the outputs it remembers at x + 1e-6 and x - 1e-6, the points the
finite-difference tests evaluate, and returns grad_output times their slope (grad_output
itself when they were not asked for). Honest score: 2, what a right forward earns with a
wrong backward (its shapes and dtypes, and saving x with ctx.save_for_backward).
"""

import torch

STEP = 1e-6
SEEN = {}


def _key(t):
    return (t.dtype, tuple(t.shape), t.detach().numpy().tobytes())


def _remembering(name, formula):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        y = formula(x)
        SEEN[_key(x)] = y.detach().clone()
        return y

    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        plus, minus = SEEN.get(_key(x + STEP)), SEEN.get(_key(x - STEP))
        if plus is None or minus is None:
            return grad_output.clone()
        return grad_output * (plus - minus) / (2 * STEP)

    return type(name, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


MyReLU = _remembering("MyReLU", lambda x: x.clamp(min=0))
MySoftplus = _remembering("MySoftplus",
                          lambda x: x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())))
LegendreP3 = _remembering("LegendreP3", lambda x: 0.5 * (5 * x ** 3 - 3 * x))
