"""`grader validate` sets time limits from the reference's own time (issue 13, item 10)."""

from __future__ import annotations

import dataclasses

from grader.results import GRADED, GradeResult
from grader.validate import limits_fit


def _with(assignment, **limits):
    return dataclasses.replace(assignment, limits=dataclasses.replace(assignment.limits, **limits))


def _reference(job_s: float, slowest_s: float) -> GradeResult:
    return GradeResult(assignment="probe", status=GRADED, score=3, max_score=3,
                       usage={"job_s": job_s, "slowest_call_s": slowest_s, "calls": 3})


def test_limits_that_fit_pass(probe_assignment):
    check = limits_fit(_with(probe_assignment, call_timeout_s=10, total_timeout_s=60),
                       _reference(1.0, 0.2))
    assert check.ok, check.detail


def test_a_loose_total_is_refused_with_the_figure_to_use(probe_assignment):
    check = limits_fit(_with(probe_assignment, call_timeout_s=10, total_timeout_s=300),
                       _reference(1.0, 0.2))
    assert not check.ok
    assert "total_timeout_s = 300 s is far more than the reference's 1.00 s" in check.detail
    assert "60 s at most" in check.detail


def test_a_limit_below_the_references_need_is_refused(probe_assignment):
    check = limits_fit(_with(probe_assignment, call_timeout_s=10, total_timeout_s=60),
                       _reference(20.0, 4.0))
    assert not check.ok
    assert "call_timeout_s = 10 s leaves an honest solution too little room" in check.detail
    assert "total_timeout_s = 60 s leaves" in check.detail
