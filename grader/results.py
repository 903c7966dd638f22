"""Typed results of a grading run: a failure is also a result, never an exception."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Gradescope's visibility words; we use the same ones so the export is a straight copy.
VISIBLE = "visible"
HIDDEN = "hidden"
AFTER_DUE_DATE = "after_due_date"
VISIBILITIES = (VISIBLE, HIDDEN, AFTER_DUE_DATE)

# What kind of mistake a failed test found: all a student sees of a test whose message is
# withheld (hidden, or after_due_date before the due date), so nothing here names an input.
MISTAKES = {
    "values": "wrong values: the result has the right type and shape, but its values differ",
    "shape": "wrong shape: the result has the right type but not the expected shape",
    "dtype": "wrong dtype: the result is the right kind of value with the wrong dtype",
    "type": "wrong type: the function returned a different kind of value than the exercise asks for",
    "check": "a property the exercise asks for does not hold (the test's own check failed)",
    "error": "your code raised an exception",
    "timeout": "your code ran past its time limit",
    "slow": "correct, but slower than the exercise's timing threshold",
    "forbidden": "your code used an API this exercise does not allow",
    "missing": "a function, class or variable the test needs is missing",
    "load": "your submission could not be loaded, so this test could not run",
    "crash": "your code crashed or broke a limit (memory, processes, output size)",
    "unusable": "the test could not use what your code returned (its type, shape or dtype)",
    "skipped": "not run on this machine",
    "setup": "the test could not run: a problem in the test, not in your code",
}

# What became of a whole submission. Student mistakes are GRADED with a low score;
# REJECTED means the input never ran (bad notebook, forbidden API, too large).
GRADED = "graded"
REJECTED = "rejected"


@dataclass
class TestResult:
    """One test's outcome: points earned out of points possible, and why."""

    __test__ = False  # a result, not a pytest test class

    name: str
    points: float
    max_points: float
    passed: bool
    visibility: str = VISIBLE
    message: str = ""
    suite: str = "public"
    duration_s: float = 0.0
    # A timing test records the measured ratio and its limit so feedback can show both.
    timing: dict[str, Any] | None = None
    # Not run here (a GPU test on a machine without a GPU): scored zero, said plainly.
    skipped: bool = False
    # Of a failed test: a MISTAKES key, and the line students see when the message is withheld.
    kind: str = ""
    hint: str = ""
    # The failure in full (exception, traceback through the test's files): the staff's only.
    # `message` is what a student may see; grader.feedback says what each holds.
    detail: str = ""

    def visible_to_student(self, *, past_due: bool) -> bool:
        """Whether a student may see this test's score and message now."""
        if self.visibility == VISIBLE:
            return True
        return self.visibility == AFTER_DUE_DATE and past_due

    def withheld(self) -> dict[str, Any]:
        """This test as a student sees it while its message is withheld."""
        return {"name": self.name, "points": self.points, "max_points": self.max_points,
                "passed": self.passed, "visibility": self.visibility, "suite": self.suite,
                "skipped": self.skipped, "kind": self.kind, "withheld": True,
                "message": "" if self.passed else (self.hint or MISTAKES["check"])}


@dataclass
class GradeResult:
    """The whole outcome of grading one submission against one assignment."""

    assignment: str
    status: str
    score: float
    max_score: float
    tests: list[TestResult] = field(default_factory=list)
    seed: int = 0
    # Messages for the student that concern the whole submission (load errors, warnings).
    messages: list[str] = field(default_factory=list)
    # Which sandbox layers were in force, e.g. {"namespaces": True, "cgroups": True}.
    sandbox: dict[str, bool] = field(default_factory=dict)
    # What the student's code printed, capped; for instructors.
    log: str = ""
    # The executed notebook (nbformat JSON text) when the submission was a notebook.
    executed_notebook: str | None = None
    # A fingerprint of the test suite the score was computed with (for regrade history).
    suite_version: str = ""
    duration_s: float = 0.0
    # The submission's time on its own clock (ran or slept, not waiting for a CPU): `job_s`
    # in all, `slowest_call_s`, `calls`, `restarts`. `grader validate` sets limits from it.
    usage: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Score as a fraction of the maximum, 0 when nothing was possible."""
        return self.score / self.max_score if self.max_score else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (the workers store it, `--json` prints it)."""
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of `to_dict()`."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradeResult:
        """Inverse of `to_dict()`."""
        data = dict(data)
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**data)

    def for_student(self, *, past_due: bool) -> dict[str, Any]:
        """What a student may see: every test's name and points; a withheld test's message is
        only the kind of mistake (`hint`), never its inputs, its code or its timings."""
        data = self.to_dict()
        data["tests"] = [_without_detail(asdict(t)) if t.visible_to_student(past_due=past_due)
                         else t.withheld() for t in self.tests]
        data["withheld_tests"] = sum(not t.visible_to_student(past_due=past_due) for t in self.tests)
        # The secret seed is the instructors' (a regrade reproduces it); students never see it.
        data.pop("seed", None)
        data.pop("log", None)
        data.pop("executed_notebook", None)
        return data

    def to_gradescope(self) -> dict[str, Any]:
        """The results.json of Gradescope's autograder specification.

        Gradescope shows each test's output to students (by its visibility), so it is the
        student-safe `message`, never the staff's `detail`."""
        return {
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "execution_time": round(self.duration_s, 3),
            "output": "\n".join(self.messages),
            "visibility": VISIBLE,
            "tests": [
                {
                    "name": t.name,
                    "score": round(t.points, 4),
                    "max_score": t.max_points,
                    "output": t.message,
                    "visibility": t.visibility,
                    "status": "passed" if t.passed else "failed",
                }
                for t in self.tests
            ],
        }


def _without_detail(test: dict[str, Any]) -> dict[str, Any]:
    test.pop("detail", None)
    return test
