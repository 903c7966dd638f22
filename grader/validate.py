"""`grader validate`: prove an assignment sound before students see it.

The reference solution must score full marks, the starter (module and notebook) must
score zero, each timing threshold must hold for the reference with its margin, the
test points must add up to the manifest's total, and each typical-mistake example
in `examples/expected.toml` must get exactly its expected score and feedback.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignment import Assignment
from grader.engine import LOCAL, SERVICE, grade
from grader.errors import InvalidAssignment
from grader.results import GradeResult, TestResult

EXAMPLES = "examples/expected.toml"


@dataclass
class Check:
    """One validation step and whether it held."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class Validation:
    """All checks for one assignment."""

    slug: str
    checks: list[Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check held."""
        return all(c.ok for c in self.checks)


@dataclass(frozen=True)
class Example:
    """A typical-mistake submission and what grading it must give.

    Either `file` names a submission in examples/, or `name` plus `replace` derive one
    from the reference solution by exact text replacements, so the mistake itself is
    what the entry shows.
    """

    name: str
    score: float
    expect: tuple[str, ...]
    file: Path | None = None
    replace: tuple[tuple[str, str], ...] = ()
    why: str = ""
    status: str = "graded"

    def materialize(self, assignment: Assignment, folder: Path) -> Path:
        """The submission file (written into folder when derived from the solution)."""
        if self.file is not None:
            return self.file
        source = assignment.solution.read_text(encoding="utf-8")
        for old, new in self.replace:
            if old not in source:
                raise InvalidAssignment(f"{assignment.slug}: example {self.name!r} replaces "
                                        f"text that solution.py does not contain: {old!r}")
            source = source.replace(old, new)
        path = folder / f"{self.name}.py"
        path.write_text(source, encoding="utf-8")
        return path


def load_examples(assignment: Assignment) -> list[Example]:
    """The typical-mistake examples listed in examples/expected.toml."""
    path = assignment.path / EXAMPLES
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for entry in data.get("example", []):
        try:
            file = assignment.path / "examples" / entry["file"] if "file" in entry else None
            replace = tuple((str(old), str(new)) for old, new in entry.get("replace", []))
            if (file is None) == (not replace):
                raise ValueError("give either `file` or `replace`")
            out.append(Example(name=entry.get("name") or Path(entry.get("file", "")).stem,
                               score=float(entry["score"]), expect=tuple(entry.get("expect", [])),
                               file=file, replace=replace, why=entry.get("why", ""),
                               status=entry.get("status", "graded")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidAssignment(f"{path}: malformed example entry {entry!r}: {exc}") from None
    return out


def feedback_text(result: GradeResult) -> str:
    """Everything a grader would show about a result, as one text to search."""
    return "\n".join(result.messages + [t.message for t in result.tests])


def _staff_line(test: TestResult) -> str:
    """A failed test as the staff see it: its message and the last line of its detail."""
    last = test.detail.strip().splitlines()[-1] if test.detail.strip() else ""
    return test.message[:300] + (f" [{last[:300]}]" if last and last not in test.message else "")


def _full_marks(assignment: Assignment, mode: str) -> list[Check]:
    result = grade(assignment.solution, assignment, mode=mode, timing_margin=True)
    failing = [f"{t.name}: {_staff_line(t)}" for t in result.tests if not t.passed and not t.skipped]
    skipped = sum(t.max_points for t in result.tests if t.skipped)
    checks = [Check("reference scores full marks" + (" on the tests that ran" if skipped else ""),
                    result.score + skipped == result.max_score and not failing,
                    f"{result.score}/{result.max_score}; " + "; ".join(failing))]
    total = sum(t.max_points for t in result.tests)
    checks.append(Check("test points add up to the manifest's total",
                        abs(total - assignment.points) < 1e-9,
                        f"tests give {total}, manifest says {assignment.points}"))
    if not skipped:  # a reference that could not run all its tests here proves no limit
        checks.append(limits_fit(assignment, result))
    timed = [t for t in result.tests if t.timing]
    for t in timed:
        checks.append(Check(f"timing threshold holds with margin: {t.name}", t.passed,
                            f"ratio {t.timing['ratio']:.2f} against limit {t.timing['limit']:.2f}"))
    return checks


# Limits are set from what the reference needs on its own clock: room for an honest
# solution LIMIT_MARGIN times slower, and no more than LOOSE_FACTOR times (or the floor),
# so a submission that sleeps or spins cannot hold a grader much longer than that.
LIMIT_MARGIN, LOOSE_FACTOR = 4.0, 40.0
CALL_FLOOR_S, TOTAL_FLOOR_S = 10.0, 60.0


def limits_fit(assignment: Assignment, result: GradeResult) -> Check:
    """The manifest's time limits leave an honest solution room and a hostile one little."""
    lim, usage = assignment.limits, result.usage
    job, slowest = float(usage.get("job_s", 0.0)), float(usage.get("slowest_call_s", 0.0))
    problems = []
    for name, limit, need, floor in (("call_timeout_s", lim.call_timeout_s, slowest, CALL_FLOOR_S),
                                     ("total_timeout_s", lim.total_timeout_s, job, TOTAL_FLOOR_S)):
        if limit < LIMIT_MARGIN * need:
            problems.append(f"{name} = {limit:g} s leaves an honest solution too little room: "
                            f"the reference needs {need:.2f} s; give at least "
                            f"{LIMIT_MARGIN * need:.0f} s")
        elif limit > max(LOOSE_FACTOR * need, floor):
            problems.append(f"{name} = {limit:g} s is far more than the reference's {need:.2f} s: "
                            f"a submission that sleeps holds a grader that long; "
                            f"{max(LOOSE_FACTOR * need, floor):.0f} s at most")
    return Check("time limits fit the reference (its own time: ran or slept)", not problems,
                 "; ".join(problems))


def _zero(assignment: Assignment, path: Path, mode: str) -> Check:
    result = grade(path, assignment, mode=mode)
    passing = [t.name for t in result.tests if t.passed]
    return Check(f"starter {path.name} scores zero", result.score == 0,
                 f"{result.score}/{result.max_score}; passing: {', '.join(passing)}")


def _example(assignment: Assignment, example: Example, mode: str) -> Check:
    with tempfile.TemporaryDirectory() as folder:
        result = grade(example.materialize(assignment, Path(folder)), assignment, mode=mode)
    text = feedback_text(result)
    missing = [e for e in example.expect if e.lower() not in text.lower()]
    ok = abs(result.score - example.score) < 1e-9 and not missing and result.status == example.status
    detail = (f"got {result.score} ({result.status}), expected {example.score} ({example.status})"
              + (f"; feedback lacks {missing}" if missing else ""))
    return Check(f"example {example.name} gets its expected score and feedback", ok, detail)


def validate(assignment: Assignment, *, mode: str = SERVICE, gpu_available: bool | None = None,
             on_check: Callable[[Check], None] | None = None) -> Validation:
    """Run every check for one assignment."""
    if gpu_available is None:
        gpu_available = _gpu_available()
    report = Validation(assignment.slug)
    if assignment.device == "gpu" and not gpu_available:
        report.skipped.append("GPU checks were NOT run: no CUDA device is visible here; the "
                              "reference, starter and timing thresholds for the GPU are unproven")
    steps: list[Callable[[], list[Check]]] = [
        lambda: _full_marks(assignment, mode),
        lambda: [_zero(assignment, assignment.starter_module, mode)],
    ]
    if assignment.starter_notebook.exists():
        steps.append(lambda: [_zero(assignment, assignment.starter_notebook, mode)])
    else:
        steps.append(lambda: [Check("starter notebook exists", False,
                                    str(assignment.starter_notebook))])
    for example in load_examples(assignment):
        steps.append(lambda e=example: [_example(assignment, e, mode)])
    for step in steps:
        for check in step():
            report.checks.append(check)
            if on_check:
                on_check(check)
    return report


def _gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


__all__ = ["LOCAL", "SERVICE", "Check", "Example", "Validation", "load_examples", "validate"]
