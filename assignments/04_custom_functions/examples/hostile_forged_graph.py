"""Hostile: no autograd.Function at all; the graph the grader reads is forged.

`apply` finds the grader's request on the call stack. Called plainly it returns x (the
identity, no work); when the grader keeps the result to drive its graph, it returns an
object whose class is named `Tensor`, whose `grad_fn` is an object of a class named
`MyReLUBackward` (and so on) with `saved_tensors`, and whose `backward` writes a made-up
`.grad` (grad_output itself) on the leaf. Honest score: 0.
"""

import sys


def _kept():
    frame = sys._getframe(1)
    while frame is not None:
        request = frame.f_locals.get("request")
        if isinstance(request, dict) and "op" in request:
            return bool(request.get("keep"))
        frame = frame.f_back
    return False


class Tensor:
    """Reported by the sandbox as a Tensor."""

    def __init__(self, x, node):
        self._x, self.grad_fn = x, node

    def backward(self, gradient=None, retain_graph=None):
        self._x.grad = gradient.clone()

    def detach(self):
        return self._x.detach().clone()


def _fake(name):
    node_class = type(f"{name}Backward", (), {})

    def apply(x):
        if not _kept():
            return x.detach().clone()
        node = node_class()
        node.saved_tensors = (x,)
        return Tensor(x, node)

    return type(name, (), {"apply": staticmethod(apply)})


MyReLU = _fake("MyReLU")
MySoftplus = _fake("MySoftplus")
LegendreP3 = _fake("LegendreP3")
