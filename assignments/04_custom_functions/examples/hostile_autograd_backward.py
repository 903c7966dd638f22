"""Hostile: real Functions whose backward asks autograd for the derivative.

forward saves x with ctx.save_for_backward (so the graph facts are true), then computes
the formula with grad enabled on a detached copy of x and keeps that private graph on ctx;
backward reads x back (so autograd's saved-tensor check fires as for an honest Function)
and returns what autograd computes through the private graph. `torch.set_grad_enabled`
and `Tensor.backward` are not on the forbidden list. Honest score: 0.
"""

import torch


def _fake(name, formula):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        copy = x.detach().clone().requires_grad_(True)
        with torch.set_grad_enabled(True):
            out = formula(copy)
        ctx.graph = (copy, out)
        return out.detach()

    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        copy, out = ctx.graph
        out.backward(grad_output)
        return copy.grad

    return type(name, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


MyReLU = _fake("MyReLU", lambda x: x.clamp(min=0))
MySoftplus = _fake("MySoftplus", lambda x: x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())))
LegendreP3 = _fake("LegendreP3", lambda x: 0.5 * (5 * x ** 3 - 3 * x))
