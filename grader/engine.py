"""Grade one submission: check it, start its sandbox, run the trusted tests, score it.

Steps, each small: read and check the bytes (format, size, encoding), check the source
for forbidden APIs, start the sandbox (in the background, while pytest collects),
run the public and hidden tests through the proxy, collect the log and the executed
notebook. A student's mistake is always a result; only a broken assignment or a
missing required sandbox layer raises.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from grader.assignment import Assignment
from grader.attribution import Attribution, attribute
from grader.bounds import MAX_NOTEBOOK_BYTES, bound_result
from grader.errors import InvalidSubmission
from grader.proxy import Connection
from grader.results import GRADED, REJECTED, GradeResult, TestResult
from grader.sandbox.layers import Layers, probe
from grader.session import SessionOptions, run_tests
from grader.static_checks import find_violations
from grader.submission import MODULE, load_submission, syntax_error

SERVICE, LOCAL = "service", "local"
# pytest keeps process-wide state (sys.modules, its plugin manager): one run at a time
# per process, whatever thread (an embedded worker, a web request) asks.
_SESSION_LOCK = threading.Lock()


def new_seed() -> int:
    """A fresh secret seed for one submission's generated inputs."""
    return secrets.randbits(62)


def _layers(mode: str) -> Layers:
    layers = probe()
    if mode == SERVICE:
        layers.require()
    return layers


def _rejected(assignment: Assignment, seed: int, layers: Layers, messages: list[str],
              started: float) -> GradeResult:
    return bound_result(GradeResult(assignment=assignment.slug, status=REJECTED, score=0.0,
                       max_score=assignment.points, seed=seed, messages=messages,
                       sandbox=layers.as_dict(), suite_version=assignment.suite_version(),
                       duration_s=time.perf_counter() - started))


def _checked_notebook(text: str | None) -> str | None:
    """The executed notebook as valid nbformat JSON, or None (it came from the sandbox)."""
    if not text:
        return None
    if len(text) > MAX_NOTEBOOK_BYTES:
        return text  # not parsed here: bound_result drops it and says why
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception:
        return None
    return nbformat.writes(nb)


def _connection(assignment: Assignment, data: bytes, kind: str, layers: Layers) -> Connection:
    return Connection(data, kind, assignment.limits, layers, forbidden=assignment.forbidden,
                      gpu=assignment.device == "gpu")


def warm_up(assignments: list[Assignment], layers: Layers | None = None) -> int:
    """Start the zygotes these assignments' jobs fork from, in the background; how many.

    A worker's pool process calls this as it starts, so that its first grading does not
    wait for torch to be imported. Assignments that share a view share one zygote.
    """
    from grader.sandbox.layers import probe

    layers = layers or probe()
    return sum(_connection(a, b"", "module", layers).warm() for a in assignments)


def grade(submission: Path, assignment: Assignment, *, mode: str = SERVICE,
          seed: int | None = None, suites: tuple[str, ...] = ("public", "hidden"),
          on_result: Callable[[TestResult, int, int], None] | None = None,
          timing_margin: bool = False, recorder: list | None = None) -> GradeResult:
    """Grade a submission file against an assignment; never raises for the student's errors."""
    started = time.perf_counter()
    seed = new_seed() if seed is None else seed
    layers = _layers(mode)
    warnings = layers.warnings() if mode == LOCAL else []
    try:
        sub = load_submission(Path(submission))
    except InvalidSubmission as exc:
        return _rejected(assignment, seed, layers, warnings + [str(exc)], started)
    violations = find_violations(sub.source, assignment.forbidden)
    attribution = attribute(sub.source, violations) if violations else Attribution()
    if attribution.whole_file:  # module-level code runs as the file loads: refuse it all
        return _rejected(assignment, seed, layers,
                         warnings + [v.message() for v in violations], started)
    # The bytes read once, without following links: nothing reads the submission by path again.
    conn = _connection(assignment, sub.data, sub.kind, layers)
    conn.blocked = {name: attribution.reason(name) for name in attribution.blocked}
    conn.messages += attribution.messages()
    conn.recorder = recorder
    if sub.kind == MODULE and (error := syntax_error(sub.source)):
        conn.load_error = f"your submission could not be loaded: {error}"
        conn.messages.append(conn.load_error)
    else:
        conn.prestart()
    reference = None
    if assignment.timing and "hidden" in suites:
        reference = _connection(assignment, assignment.solution.read_bytes(), MODULE, layers)
        reference.prestart()
    try:
        with _SESSION_LOCK:
            tests = run_tests(assignment, conn, SessionOptions(
                seed=seed, suites=suites, on_result=on_result, timing_margin=timing_margin,
                reference=reference))
    finally:
        conn.close()
        if reference is not None:
            reference.close()
    score = sum(t.points for t in tests)
    return bound_result(GradeResult(
        assignment=assignment.slug, status=GRADED, score=score,
        max_score=sum(t.max_points for t in tests) or assignment.points, tests=tests,
        seed=seed, messages=warnings + conn.messages, sandbox=layers.as_dict(), log=conn.log(),
        executed_notebook=_checked_notebook(conn.notebook),
        suite_version=assignment.suite_version(), duration_s=time.perf_counter() - started,
        usage=_usage(conn)))


def _usage(conn: Connection) -> dict[str, float]:
    """What the submission's code used, on its own clock."""
    return {"job_s": round(conn.spent_s, 4), "calls": len(conn.timings),
            "slowest_call_s": round(max((t.job_s for t in conn.timings), default=0.0), 4),
            "restarts": conn.restarts,
            "memory_peak_mb": round(conn.memory_peak_bytes / 2**20, 1),
            "cpu_s": round(conn.cpu_s, 4)}


def write_gradescope(result: GradeResult, path: Path) -> None:
    """Write Gradescope's results.json for a result."""
    Path(path).write_text(json.dumps(result.to_gradescope(), indent=2))
