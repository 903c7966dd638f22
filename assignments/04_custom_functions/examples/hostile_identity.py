"""Hostile: three real autograd.Functions that are all the identity.

forward saves x with ctx.save_for_backward and returns it unchanged; backward reads it
back and returns grad_output. The graph facts are all true (MyReLUBackward, one saved
tensor, backward run by autograd) and backward agrees with the slope of forward, but
neither computes the function asked for. Honest score: 0.
"""

import torch


def _identity(name):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clone()

    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output.clone()

    return type(name, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


MyReLU = _identity("MyReLU")
MySoftplus = _identity("MySoftplus")
LegendreP3 = _identity("LegendreP3")
