"""Hostile submissions to 04 (custom autograd Functions): each earns exactly its honest score.

The tests of 04 reach the student's Functions through the proxy and drive their graph from
the trusted side, but everything the sandbox reports about that graph (the class of y and of
y.grad_fn, its saved tensors, x.grad) is the student's word. Each fake here forges some of
it or does no work: graded in the real sandbox, it must get its honest score exactly, within
the deadline, and leave nothing behind. The fakes are files in the assignment's examples/,
listed in its expected.toml too, so `grader validate 04_custom_functions` holds them to the
same scores.

What these cases do not cover, because no test of behaviour can: a backward that asks
autograd for the derivative afresh on each call (recomputing forward under grad mode from the
saved x), or that calls the autograd node of a library op whose derivative is the right one
(ReLU through clamp, with the reported names forged), gives the right answer for every input,
every grad_output and every change to x. Only the manifest's forbidden calls stand against
them (torch.autograd.grad and friends), enforced in the guest; see the report on issue 13.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignment import find
from grader.results import GRADED

ASSIGNMENT = find("04_custom_functions")
EXAMPLES = ASSIGNMENT.path / "examples"
# A grading of 04 takes 5 to 15 s alone, three times that on a loaded machine; its own
# total limit is 120 s.
DEADLINE_S = 90

# (file in examples/, honest score, words the feedback must have)
CASES = [
    # No Function: an object named Tensor with a forged grad_fn, saved tensors and x.grad.
    ("hostile_forged_graph.py", 0, "calling your MyReLU.backward(ctx, grad_output) on y.grad_fn"),
    # Plain autograd ops behind a Tensor subclass whose grad_fn says MyReLUBackward.
    ("hostile_tensor_subclass.py", 0, "x.grad must come from your own MyReLU.backward"),
    # Real Functions, all the identity: backward agrees with forward's slope.
    ("hostile_identity.py", 0, "MyReLU forward returns x unchanged"),
    # backward runs autograd through a graph that forward built on a detached copy of x.
    ("hostile_autograd_backward.py", 0, "Trying to backward through the graph a second time"),
    # The released public tests' answers pasted in and looked up by x.
    ("hostile_stored_answers.py", 0, "no stored answer for this x"),
    # Right forwards; backward replays the finite-difference points forward was asked for.
    # 2 is what right forwards earn with a wrong backward (shapes and dtypes, save_for_backward).
    ("hostile_memo_slope.py", 2, "disagrees with the slope of your own MySoftplus.forward"),
]


@pytest.mark.parametrize("case", CASES, ids=[Path(c[0]).stem.removeprefix("hostile_")
                                             for c in CASES])
def test_fake_earns_its_honest_score(case, grade_hostile):
    file, score, words = case
    result = grade_hostile(EXAMPLES / file, ASSIGNMENT, deadline_s=DEADLINE_S)
    assert result.status == GRADED, result.messages
    passed = [t.name for t in result.tests if t.passed]
    assert result.score == score, f"{file} scored {result.score}, passing {passed}"
    feedback = "\n".join(t.message for t in result.tests)
    assert words in feedback, feedback[:2000]
