"""Timing thresholds: the student's function against the reference, in identical sandboxes.

A test hands over a function that makes inputs (drawing from its `rng`), not the inputs
themselves: each timed repetition, the warm-up included, gets new ones, so an answer
remembered from an earlier call (by id, by a hash of the bytes, by shape) is never
the right one. A timed call is sent as any other call is (the ordinary `call` request
with the arguments inline), so nothing inside the sandbox tells it apart from the
tests' other calls. Every answer is checked here against the reference's on the same
inputs: a wrong answer given fast fails with its own message, not as a fast one.

On each repetition's inputs the student's call, the reference's and a call that does no
work (below) go in turn, each first in turn, so that noise falls on all. What is compared
is the job's CPU time, from its cgroup (the kernel's accounting, taken here from
`conn.timings`), for three reasons:

- time spent waiting for a CPU on a loaded machine is not in it, so load does not fail
  an honest student (wall time is used only where a job has no cgroup, `grader check`
  on a laptop, since the fallback clock there ticks in 10 ms steps);
- it holds every process and thread of the job, so no work done for an answer escapes
  it (threads add up; sleeping adds nothing and gains nothing);
- the trusted side's writing of inline inputs is not in it; what receiving them costs
  the sandbox (reading, decoding, freeing) is measured apart, in the reference's sandbox
  with the same inputs in a call that does no work (NO_WORK), and taken off both sides,
  so that sending 48 MB (09's matrices) or 2.4 MB for a millisecond's work does not
  drown the work being timed. The student's own sandbox is never asked for that figure,
  which it could inflate.

A GPU kernel's own time is not CPU time, but waiting for one is (CUDA spins while it
waits by default), and a product left on the CPU costs its whole time there: that
difference is what 09's threshold asks about.

Each side's cost is its fastest repetition (on this clock, noise only adds: another
job's cache misses, a wake-up that came late), and so is the cost of receiving the
inputs. The ratio of the two sides' work is compared with the manifest's `max_ratio`.
A ratio up to BORDERLINE times over the limit is measured again with new inputs, up to
EXTRA_ROUNDS times, and the best round counts. Taking the fastest cannot be gamed: every
answer is checked, and inputs are new each call, so a fast call is fast work.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.assignment import Assignment, TimingRule
from grader.checks import expect_array, expect_tensor, kind_of
from grader.errors import InvalidAssignment
from grader.proxy import Connection, RemoteObject
from grader.submission import NOTEBOOK

BORDERLINE = 1.25  # ratios up to this factor over the limit are measured again
EXTRA_ROUNDS = 2
# A call's own work is taken as at least this share of its whole cost (both sides alike),
# so that a call whose cost is nearly all in receiving its inputs is not divided by the
# noise of that figure (2.4 MB cost 1.9-7.5 ms of CPU to receive here, 48 MB 140-180 ms).
MIN_WORK_SHARE = 0.2
# An ordinary call in the reference's module that does no work, for the cost of receiving
# the inputs: the module's `__name__` is a str, and `str.format` ignores arguments it has
# no field for. Its request, decoding and freeing of the inputs are the timed call's.
NO_WORK = ["__name__", "format"]
WRONG_ANSWER_ADVICE = (
    "each call must compute its answer from the inputs it is given: an answer remembered "
    "from an earlier call, or a shortcut taken when the same shapes come again, is wrong here")


class Args:
    """Positional and keyword arguments for one timed call: `Args(x, w, stride=2)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


@dataclass
class TimingReport:
    """What one timing check measured (seconds: the fastest repetition, net of receiving inputs)."""

    rule: str
    ratio: float
    limit: float
    student_s: float
    reference_s: float
    clock: str
    transfer_s: float
    wall_ratio: float
    rounds: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form stored on the test result."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in vars(self).items()}


@dataclass
class _Sample:
    student: float
    reference: float
    transfer: float
    student_wall: float
    reference_wall: float


def _split(made: Any) -> tuple[tuple, dict]:
    if isinstance(made, Args):
        return tuple(made.args), dict(made.kwargs)
    if isinstance(made, tuple):
        return made, {}
    return (made,), {}


def _fingerprint(value: Any) -> bytes:
    """A digest of the inputs' contents, to refuse a maker that repeats itself."""
    digest = hashlib.blake2b(digest_size=16)

    def feed(v: Any) -> None:
        digest.update(type(v).__name__.encode())
        if hasattr(v, "detach") and hasattr(v, "numpy"):  # a torch tensor
            v = v.detach().cpu().contiguous().numpy()
        if hasattr(v, "tobytes") and hasattr(v, "shape"):
            digest.update(repr((v.shape, str(v.dtype))).encode() + v.tobytes())
        elif isinstance(v, (list, tuple)):
            for item in v:
                feed(item)
        elif isinstance(v, dict):
            for key, item in v.items():
                feed(key)
                feed(item)
        else:
            digest.update(repr(v).encode())

    feed(value)
    return digest.digest()


def _difference(got: Any, want: Any, name: str, rtol: float, atol: float) -> str | None:
    """What differs between a timed answer and the reference's, or None."""
    if isinstance(want, RemoteObject):
        raise InvalidAssignment(f"timing {name}: the reference returned an object that stays "
                                "in its sandbox; timed functions must return plain data")
    try:
        if type(want).__module__.startswith("torch") and hasattr(want, "shape"):
            expect_tensor(got, want, name=name, rtol=rtol, atol=atol, check_dtype=False)
        elif hasattr(want, "shape") and hasattr(want, "dtype"):
            expect_array(got, want, name=name, rtol=rtol, atol=atol, check_dtype=False)
        else:
            return _plain_difference(got, want, name, rtol, atol)
    except AssertionError as exc:
        return str(exc)
    return None


def _plain_difference(got: Any, want: Any, name: str, rtol: float, atol: float) -> str | None:
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        number = isinstance(got, (int, float)) and not isinstance(got, bool)
        if number and math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{name} is {got!r} ({kind_of(got)}); expected {want!r}"
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            return f"{name} should be a sequence of {len(want)} items, not {kind_of(got)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if (diff := _difference(g, w, f"{name}[{i}]", rtol, atol)) is not None:
                return diff
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"{name} should be a dict with the keys {sorted(map(str, want))}"
        for key in want:
            if (diff := _difference(got[key], want[key], f"{name}[{key!r}]", rtol, atol)) is not None:
                return diff
        return None
    return None if got == want else f"{name} is {got!r}; expected {want!r}"


def _work(call_s: float, transfer_s: float) -> float:
    """A call's own work: its cost less receiving the inputs, and at least a share of it."""
    return max(call_s - transfer_s, MIN_WORK_SHARE * call_s, 1e-9)


class Timing:
    """The `timing` fixture: `timing.check("rule", "function", make_inputs)`.

    `make_inputs()` is called once per timed call and returns that call's arguments: a
    tuple of positional arguments, `Args(...)` for keywords, or any other value as the
    only argument. Draw them from the test's `rng`, so that each call's are new:

        timing.check("conv2d", "my_conv2d", lambda: (*conv_problem(n=2), 1, 1), rtol=1e-4)
    """

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

    @property
    def clock(self) -> str:
        """'cpu' (the job cgroup's accounting) where the sandboxes have cgroups, else 'wall'."""
        return "cpu" if self.student.layers.cgroups and self.reference.layers.cgroups else "wall"

    def measure(self, rule_name: str, function: str, make_inputs: Callable[[], Any], *,
                rtol: float = 1e-5, atol: float = 1e-6) -> TimingReport:
        """Time `function` on new inputs per call in both sandboxes; every answer is checked.

        Raises AssertionError when a timed answer differs from the reference's on the
        same inputs (beyond rtol/atol). Borderline ratios are measured again.
        """
        rule = self._rule(rule_name)
        if not callable(make_inputs):
            raise InvalidAssignment(
                f"{self.assignment.slug}: timing {rule_name!r} needs a function that makes new "
                f"inputs for each call (e.g. `lambda: (x_from(rng),)`), not {kind_of(make_inputs)}")
        limit = rule.max_ratio / rule.margin if self.with_margin else rule.max_ratio
        seen: set[bytes] = set()
        best: TimingReport | None = None
        with self._reference_of_the_students_kind():
            for round_ in range(1, EXTRA_ROUNDS + 2):
                samples = [self._repetition(function, make_inputs, seen, i, rule, rtol, atol)
                           for i in range(rule.repeat + 1)][1:]  # the first warms caches: dropped
                report = self._report(rule, limit, samples, round_)
                if best is None or report.ratio < best.ratio:
                    best = report
                if best.ratio <= limit or best.ratio > limit * BORDERLINE:
                    break
        best.rounds = round_
        self.reports.append(best)
        return best

    @contextlib.contextmanager
    def _reference_of_the_students_kind(self) -> Iterator[None]:
        """Run the reference as a notebook, for this check, when the student's is one.

        A call into a notebook goes through its kernel, which costs each call about 15 ms
        of CPU that a module does not pay: against a module reference, 07's own solution
        as a notebook measured 7.7-9.1x (limit 6x). With both sides notebooks, that cost
        falls on both. (Where the engine already started a reference of the student's
        kind, it is used as it is.)
        """
        module = self.reference
        if self.student.kind != NOTEBOOK or module.kind == NOTEBOOK:
            yield
            return
        import nbformat  # only here: it costs every grading's start-up otherwise

        source = self.assignment.solution.read_text(encoding="utf-8")
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        with tempfile.TemporaryDirectory(prefix="torchgrade-reference-") as folder:
            path = Path(folder) / "solution.ipynb"
            path.write_text(nbformat.writes(notebook), encoding="utf-8")
            # the bytes where the connection takes them (the sandbox reads no path again)
            submission = path.read_bytes() if isinstance(module.submission, bytes) else path
            self.reference = Connection(submission, NOTEBOOK, module.limits, module.layers,
                                        forbidden_modules=module.forbidden_modules, gpu=module.gpu)
            try:
                yield
            finally:
                self.reference.close()
                self.reference = module

    def _repetition(self, function: str, make_inputs: Callable[[], Any], seen: set[bytes],
                    index: int, rule: TimingRule, rtol: float, atol: float) -> _Sample:
        args, kwargs = _split(make_inputs())
        mark = _fingerprint((args, kwargs))
        if mark in seen:
            raise InvalidAssignment(
                f"{self.assignment.slug}: timing {rule.name!r}: the inputs function gave the "
                "same inputs twice; each timed call needs new ones (draw them from `rng`)")
        seen.add(mark)
        # the three calls on these inputs, each in every place in turn
        calls = [("student", self.student, [function]), ("reference", self.reference, [function]),
                 ("transfer", self.reference, NO_WORK)]
        calls = calls[index % 3:] + calls[:index % 3]
        answers, costs = {}, {}
        for key, conn, path in calls:
            answers[key], costs[key] = self._timed_call(conn, path, args, kwargs)
        diff = _difference(answers["student"], answers["reference"], f"{function}(...)", rtol, atol)
        if diff is not None:
            raise AssertionError(
                f"your {function} gave a wrong answer while it was being timed (call "
                f"{index + 1} of {rule.repeat + 1}, each on new inputs): {diff}; "
                f"{WRONG_ANSWER_ADVICE}")
        clock = self.clock
        return _Sample(student=getattr(costs["student"], f"{clock}_s"),
                       reference=getattr(costs["reference"], f"{clock}_s"),
                       transfer=getattr(costs["transfer"], f"{clock}_s"),
                       student_wall=costs["student"].wall_s,
                       reference_wall=costs["reference"].wall_s)

    @staticmethod
    def _timed_call(conn: Connection, path: list[str], args: tuple, kwargs: dict) -> tuple[Any, Any]:
        """One ordinary call, inline arguments and all; its cost as measured from outside."""
        before = len(conn.timings)
        value = conn.call(None, path, args, kwargs)
        if len(conn.timings) <= before:
            raise RuntimeError("the connection recorded no timing for a call")
        return value, conn.timings[-1]

    def _report(self, rule: TimingRule, limit: float, samples: list[_Sample],
                round_: int) -> TimingReport:
        transfer = min(s.transfer for s in samples)
        student_s = _work(min(s.student for s in samples), transfer)
        reference_s = _work(min(s.reference for s in samples), transfer)
        wall_ratio = (min(s.student_wall for s in samples)
                      / max(min(s.reference_wall for s in samples), 1e-9))
        return TimingReport(rule.name, student_s / reference_s, limit, student_s, reference_s,
                            self.clock, transfer, wall_ratio, round_)

    def check(self, rule_name: str, function: str, make_inputs: Callable[[], Any], *,
              rtol: float = 1e-5, atol: float = 1e-6,
              advice: str = "avoid Python loops over elements and use whole-tensor operations",
              ) -> TimingReport:
        """Measure, then fail with a teaching message when the ratio is over the limit."""
        report = self.measure(rule_name, function, make_inputs, rtol=rtol, atol=atol)
        assert report.ratio <= report.limit, (
            f"your {function} took {report.ratio:.1f}x as long as the reference "
            f"({report.student_s * 1e3:.1f} ms against {report.reference_s * 1e3:.1f} ms of "
            f"{'CPU' if report.clock == 'cpu' else 'wall-clock'} time; the limit is "
            f"{report.limit:.1f}x): {advice}")
        return report
