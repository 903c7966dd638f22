"""Timing thresholds: the student's function against the reference, in identical sandboxes.

Inputs are stored in both sandboxes first, so only the call itself is timed. Calls
alternate (student, reference, student, ...) so that machine noise falls on both;
the ratio of medians is compared with the manifest's `max_ratio`. Every time is
taken here, outside the sandbox; nothing the sandbox reports about itself is used.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from grader.assignment import Assignment, TimingRule
from grader.errors import InvalidAssignment
from grader.proxy import Connection


@dataclass
class TimingReport:
    """What one timing check measured."""

    rule: str
    ratio: float
    limit: float
    student_s: float
    reference_s: float
    cpu_ratio: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form stored on the test result."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in vars(self).items()}


class Timing:
    """The `timing` fixture: `timing.check("rule", "function", *args)`."""

    def __init__(self, assignment: Assignment, student: Connection, reference: Connection,
                 *, with_margin: bool = False) -> None:
        self.assignment = assignment
        self.student = student
        self.reference = reference
        self.with_margin = with_margin
        self.reports: list[TimingReport] = []

    def _rule(self, name: str) -> TimingRule:
        try:
            return self.assignment.timing[name]
        except KeyError:
            raise InvalidAssignment(
                f"{self.assignment.slug}: a test uses timing rule {name!r}, which the "
                "manifest's [timing] table does not define") from None

    def measure(self, rule_name: str, function: str, *args: Any, **kwargs: Any) -> TimingReport:
        """Time `function(*args)` in both sandboxes, interleaved; return the ratio."""
        rule = self._rule(rule_name)
        sides = []
        for conn in (self.student, self.reference):
            stored = conn.request({"op": "put", "value": (args, kwargs)}, "storing timing inputs")
            sides.append((conn, stored))
        samples: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
        for i in range(rule.repeat + 1):  # the first round warms caches and is dropped
            for side, (conn, stored) in enumerate(sides):
                before = len(conn.timings)
                conn.call_stored(function, stored)
                if i:
                    timing = conn.timings[before]
                    samples[side].append((timing.wall_s, timing.cpu_s))
        student_s = statistics.median(w for w, _ in samples[0])
        reference_s = statistics.median(w for w, _ in samples[1])
        cpu_s = statistics.median(c for _, c in samples[0])
        cpu_ref = statistics.median(c for _, c in samples[1])
        limit = rule.max_ratio / rule.margin if self.with_margin else rule.max_ratio
        report = TimingReport(rule.name, student_s / max(reference_s, 1e-9), limit, student_s,
                              reference_s, cpu_s / max(cpu_ref, 1e-9))
        self.reports.append(report)
        return report

    def check(self, rule_name: str, function: str, *args: Any, **kwargs: Any) -> TimingReport:
        """Measure, then fail with a teaching message when the ratio is over the limit."""
        report = self.measure(rule_name, function, *args, **kwargs)
        assert report.ratio <= report.limit, (
            f"your {function} took {report.ratio:.1f}x as long as the reference "
            f"({report.student_s * 1e3:.1f} ms against {report.reference_s * 1e3:.1f} ms; "
            f"the limit is {report.limit:.1f}x): avoid Python loops over elements and use "
            "whole-tensor operations")
        return report

