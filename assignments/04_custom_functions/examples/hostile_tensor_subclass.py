"""Hostile: plain autograd ops behind a Tensor subclass that lies about its grad_fn.

Each `apply` computes the formula with ordinary torch ops (clamp, exp, log1p, powers), so
autograd, not the student, differentiates; the result is a subclass of torch.Tensor named
`Tensor` whose `grad_fn` property reports a node of a class named `MyReLUBackward` (and so
on) holding x as its saved tensor. No backward is written anywhere. Honest score: 0.
"""

import torch


class Tensor(torch.Tensor):
    """A tensor whose grad_fn is whatever it was told to say."""

    @property
    def grad_fn(self):
        return self.__dict__.get("_forged_node")


def _fake(name, formula):
    node_class = type(f"{name}Backward", (), {})

    def apply(x):
        y = formula(x).as_subclass(Tensor)
        node = node_class()
        node.saved_tensors = (x,)
        y._forged_node = node
        return y

    return type(name, (), {"apply": staticmethod(apply)})


MyReLU = _fake("MyReLU", lambda x: x.clamp(min=0))
MySoftplus = _fake("MySoftplus", lambda x: x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())))
LegendreP3 = _fake("LegendreP3", lambda x: 0.5 * (5 * x ** 3 - 3 * x))
