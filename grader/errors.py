"""Named errors, each with a message a student or instructor can act on."""

from __future__ import annotations

from grader.guest.wire import WireError

__all__ = [
    "GraderError",
    "GradingTimeout",
    "InfrastructureFault",
    "InvalidAssignment",
    "InvalidSubmission",
    "SandboxUnavailable",
    "StudentCodeError",
    "WireError",
]


class GraderError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidAssignment(GraderError):
    """An assignment folder or its manifest is malformed (the instructor's to fix).

    Its text may be shown to a student as the reason their grading failed; `detail` holds
    what only the course staff may see (pytest's report on a hidden test file, say).
    """

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class InvalidSubmission(GraderError):
    """A submission cannot be graded as given (the student's to fix); it scores zero."""


class SandboxUnavailable(GraderError):
    """A sandbox layer that this mode requires is missing on this machine."""


class StudentCodeError(GraderError):
    """The student's code raised, timed out or broke a limit during a call."""

    def __init__(self, message: str, *, kind: str = "exception", exc_type: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.exc_type = exc_type


class GradingTimeout(StudentCodeError):
    """A call into the student's code ran past its time limit (on the job's own clock: it ran or slept)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="timeout")


class InfrastructureFault(GraderError):
    """The machine, not the submission, failed the grading (a sandbox that got no CPU for
    several times its limit, or was frozen): retry it elsewhere, never record a score."""
