"""The trusted test session: the assignment's pytest files run here, outside the sandbox.

Tests are ordinary pytest functions. They receive fixtures:

- `student`: the proxy into the sandbox (`student.forward(x, w1, w2)`);
- `reference`: the reference solution, imported here (trusted code, no sandbox);
- `seed` and `rng`: the per-submission secret seed and a NumPy generator from it;
- `timing`: timing thresholds against the reference (see grader.timing).

Markers: `@pytest.mark.points(n)`, `@pytest.mark.visibility("hidden")`,
`@pytest.mark.timeout(seconds)`. A test's docstring (first line) is its name in feedback.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import contextlib
import functools
import hashlib
import hmac
import importlib
import importlib.util
import io
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from grader.assignment import Assignment
from grader.bounds import MAX_TEST_MESSAGE, clip
from grader.checks import Mismatch
from grader.errors import InfrastructureFault, InvalidAssignment, StudentCodeError
from grader.feedback import (
    Secrets,
    collection_failure,
    is_test_problem,
    secrets_of,
    staff_detail,
    student_message,
)
from grader.proxy import Connection, StudentProxy
from grader.results import HIDDEN, MISTAKES, VISIBILITIES, VISIBLE, TestResult
from grader.timing import Timing

log = logging.getLogger(__name__)
PYTEST_INI = Path(__file__).with_name("pytest-session.ini")
# pytest plugins a grading run never uses; unraisableexception alone costs ~170 ms a
# run in forced garbage collections.
UNUSED_PLUGINS = [arg for name in (
    "cacheprovider", "unraisableexception", "threadexception", "doctest", "junitxml",
    "pastebin", "stepwise", "faulthandler", "debugging", "setuponly", "setupplan",
    "nose", "legacypath", "lfplugin") for arg in ("-p", f"no:{name}")]
DEFAULT_TEST_TIMEOUT = 60.0


@dataclass
class SessionOptions:
    """How one run of the tests is set up."""

    seed: int
    suites: tuple[str, ...] = ("public", "hidden")
    on_result: Callable[[TestResult, int, int], None] | None = None
    timing_margin: bool = False
    reference: Connection | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_reference_modules: dict[Path, ModuleType] = {}


def load_reference(assignment: Assignment) -> ModuleType:
    """Import the reference solution in this (trusted) process, once per file."""
    path = assignment.solution.resolve()
    if path not in _reference_modules:
        name = f"torchgrade_reference_{assignment.slug}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _reference_modules[path] = module
    return _reference_modules[path]


def derive_test_seed(secret: int, test_id: str) -> int:
    """A test's seed from the submission's secret one, in [0, 2**31).

    HMAC-SHA256 keyed with the secret: the inputs a test sends into the sandbox can reveal
    at most their own seed, never the secret nor another test's inputs.
    """
    key = int(secret).to_bytes(16, "big", signed=True)
    digest = hmac.new(key, test_id.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") >> 1


# StudentCodeError kinds, as the MISTAKES a student is told of.
_CALL_MISTAKES = {"timeout": "timeout", "forbidden": "forbidden", "missing": "missing",
                  "load": "load", "exception": "error", "dead": "crash", "too_large": "crash",
                  "protocol": "crash", "bad_value": "unusable"}


def _mistake(exc: BaseException | None, skipped: bool, timing: dict[str, Any] | None,
             when: str = "call") -> str:
    """The MISTAKES key of a failed test."""
    if skipped:
        return "skipped"
    if exc is not None and is_test_problem(exc, when):
        return "setup"
    if isinstance(exc, StudentCodeError):
        return _CALL_MISTAKES.get(exc.kind, "error")
    if isinstance(exc, Mismatch):
        return exc.kind
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        slow = timing is not None and timing.get("ratio", 0) > timing.get("limit", float("inf"))
        return "slow" if slow else "check"
    return "unusable"


def _hint(kind: str, exc: BaseException | None) -> str:
    """The line a student sees of a failed test whose message is withheld."""
    if not kind:
        return ""
    # Only a built-in exception's name: a class the student's code made could be named
    # after the hidden inputs it was given.
    builtin = getattr(builtins, getattr(exc, "exc_type", "") or "-", None)
    if kind == "error" and isinstance(builtin, type) and issubclass(builtin, BaseException):
        return f"your code raised {builtin.__name__}"
    return MISTAKES.get(kind, MISTAKES["check"])


def _display_name(item: pytest.Item, suite: str, case: int | None) -> str:
    """A test's name in feedback: its docstring's first line, else its function's name.

    A parametrized hidden test is told apart by its case number, not by pytest's id: ids
    are made from the parameters, which may be the reference's values.
    """
    function = getattr(item, "function", None)
    doc = (function.__doc__ or "").strip().splitlines() if function is not None else []
    if suite != "hidden" or case is None:
        return doc[0] if doc else item.name
    return f"{doc[0] if doc else getattr(item, 'originalname', item.name)} (case {case})"


def _marker_value(item: pytest.Item, name: str, default: Any) -> Any:
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker and marker.args else default


class GradingPlugin:
    """Fixtures, markers and result collection for one submission's test run."""

    def __init__(self, assignment: Assignment, conn: Connection, options: SessionOptions) -> None:
        self.assignment = assignment
        self.conn = conn
        self.options = options
        self.results: list[TestResult] = []
        self.total = 0
        self.collect_errors: list[tuple[str, str]] = []
        # An assignment problem found while recording (a bad marker): it stops the run.
        self.invalid: InvalidAssignment | None = None
        self._secrets: Secrets | None = None
        self._cases: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self.fault: InfrastructureFault | None = None
        self._timing: Timing | None = None

    # -- configuration ---------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        for line in ("points(n): points the test is worth",
                     "visibility(v): visible, hidden or after_due_date",
                     "timeout(s): wall-clock seconds for the student's calls in this test"):
            config.addinivalue_line("markers", line)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append((report.nodeid, report.longreprtext))

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.total = len(items)
        seen: dict[tuple[str, str], int] = {}
        for item in items:  # each parametrized test's cases, numbered in collection order
            if getattr(item, "callspec", None) is not None:
                key = (str(item.path), getattr(item, "originalname", item.name))
                seen[key] = self._cases[item.nodeid] = seen.get(key, 0) + 1

    # -- fixtures --------------------------------------------------------------------

    @pytest.fixture
    def student(self) -> StudentProxy:
        """The student's code, reached through the sandbox."""
        return StudentProxy(self.conn)

    @pytest.fixture
    def reference(self) -> ModuleType:
        """The reference solution, imported in the trusted process."""
        return load_reference(self.assignment)

    @pytest.fixture
    def seed(self, request: pytest.FixtureRequest) -> int:
        """This test's seed: a one-way function (HMAC) of the secret seed and the test's id."""
        return derive_test_seed(self.options.seed, request.node.nodeid)

    @pytest.fixture
    def rng(self, seed: int):
        """A NumPy generator seeded from `seed`."""
        import numpy as np

        return np.random.default_rng(seed)

    @pytest.fixture
    def timing(self) -> Timing:
        """Timing thresholds against the reference solution."""
        if self.options.reference is None:
            raise InvalidAssignment("timing tests need the reference sandbox; none was started")
        self._timing = Timing(self.assignment, self.conn, self.options.reference,
                              with_margin=self.options.timing_margin)
        return self._timing

    # -- running ---------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # A call an earlier test began and never read ends before this test's clock starts.
        self.conn.settle()
        timeout = float(_marker_value(item, "timeout", DEFAULT_TEST_TIMEOUT))
        self.conn.begin_test(timeout)
        self._started[item.nodeid] = time.perf_counter()
        self._timing = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and isinstance(call.excinfo.value, InfrastructureFault):
            # The machine failed, not the student: no test is scored, the grading stops
            # and the fault reaches the caller, who retries it (never recorded as a score).
            self.fault = self.fault or call.excinfo.value
            item.session.shouldstop = "infrastructure fault"
            return
        if self.fault is None and self.invalid is None and (
                report.when == "call" or (report.when == "setup" and not report.passed)):
            try:
                self._record(item, call, report)
            except InvalidAssignment as exc:
                # Raised out of a hook, pytest would report it as its own internal error.
                self.invalid = exc
                item.session.shouldstop = "assignment problem"

    @property
    def secrets(self) -> Secrets:
        """The trusted side's paths and hidden file names, cut from what students see."""
        if self._secrets is None:
            self._secrets = secrets_of(self.assignment.path)
        return self._secrets

    def _record(self, item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
        suite = "hidden" if "/tests/hidden/" in str(item.path) else "public"
        points = float(_marker_value(item, "points", 1))
        visibility = _marker_value(item, "visibility", HIDDEN if suite == "hidden" else VISIBLE)
        if visibility not in VISIBILITIES:
            raise InvalidAssignment(f"{self.assignment.slug}: a test's visibility must be one of "
                                    f"{VISIBILITIES}", detail=f"{item.nodeid}: {visibility!r}")
        name = _display_name(item, suite, self._cases.get(item.nodeid))
        passed = report.passed
        exc = call.excinfo.value if call.excinfo is not None else None
        failed = exc if not passed else None
        message = "" if failed is None else clip(student_message(
            failed, name=name, suite=suite, when=report.when, secrets=self.secrets), MAX_TEST_MESSAGE)
        timing = (self._timing.reports[-1].as_dict() if self._timing and self._timing.reports
                  else None)
        kind = "" if passed else _mistake(exc, bool(report.skipped), timing, report.when)
        result = TestResult(
            name=name, points=points if passed else 0.0,
            max_points=points, passed=passed, visibility=visibility, message=message,
            suite=suite, duration_s=round(time.perf_counter() - self._started[item.nodeid], 4),
            timing=timing, skipped=bool(report.skipped), kind=kind,
            hint=_hint(kind, exc),
            detail=f"{item.nodeid}\n{staff_detail(failed)}" if failed is not None else "",
        )
        self.results.append(result)
        if self.options.on_result:
            self.options.on_result(result, len(self.results), self.total)


@contextlib.contextmanager
def _no_plugin_autoload():
    """Third-party pytest plugins installed here have no say in grading (and cost time)."""
    old = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = old


@functools.cache
@functools.cache
def _imported_names(paths: tuple[str, ...]) -> frozenset[str]:
    """Top-level modules the test files import (absolute imports only)."""
    names: set[str] = set()
    for folder in paths:
        for file in sorted(Path(folder).rglob("*.py")):
            try:
                tree = ast.parse(file.read_bytes())
            except (OSError, SyntaxError, ValueError):
                continue  # pytest reports it when it collects
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name.partition(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.partition(".")[0])
    return frozenset(names)


def _import_libraries(paths: tuple[str, ...], root: Path) -> None:
    """Import the libraries the tests use (torch, numpy) before the private bytecode cache.

    A module first imported while that cache is on is compiled from source, since its
    installed .pyc is not looked for: torch's 700 modules cost `grader check` about 2 s.
    Only installed libraries are imported here, never a module of the assignment's own.
    """
    for name in sorted(_imported_names(paths) - set(sys.modules)):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        origin = getattr(spec, "origin", None) or ""
        if spec is None or origin.startswith(str(root)) or not origin:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # the run itself reports a library that cannot be imported
            pass


_BYTECODE_CACHES: dict[int, str] = {}


def _bytecode_cache() -> str:
    """A bytecode cache private to this process (mkdtemp: mode 0700, a fresh name), made once.

    Private, because a cached .pyc of a hidden test is code this process runs: a folder
    another user could have made first would let them plant one. Kept for the process's
    life, so the next grading reads pytest's rewritten tests back (about 60 ms a test file).
    Keyed by pid: a forked worker child makes its own, and removes only its own at exit.
    """
    pid = os.getpid()
    if pid not in _BYTECODE_CACHES:
        folder = tempfile.mkdtemp(prefix="torchgrade-bytecode-")
        atexit.register(_remove_if_owner, folder, pid)
        _BYTECODE_CACHES[pid] = folder
    return _BYTECODE_CACHES[pid]


def _remove_if_owner(folder: str, pid: int) -> None:
    """Remove the cache at exit, in the process that made it only."""
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _one_thread():
    """The trusted side computes with one thread while the tests run.

    The student's code runs on its own CPU share in the sandbox, often at the same time
    (`student.f.begin(...)` while the reference computes): BLAS and torch threads here
    would only fight it for the cores. A worker runs one grading per core anyway.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=1):
            if torch is not None:
                torch.set_num_threads(1)
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


def _forget_test_modules(folder: Path) -> None:
    """Drop this run's test and conftest modules from sys.modules.

    pytest's importlib mode names modules by their path under the rootdir, so two
    assignments' tests/hidden/test_hidden.py share a name; a cached one would make
    the next assignment run the previous one's tests.
    """
    roots = tuple({os.path.join(str(p), "") for p in (folder, folder.absolute(), folder.resolve())})
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(roots):
            del sys.modules[name]


def test_paths(assignment: Assignment, suites: tuple[str, ...]) -> list[str]:
    """The test folders of the chosen suites that exist."""
    return [str(assignment.test_dir(s)) for s in suites if assignment.test_dir(s).is_dir()]


def run_tests(assignment: Assignment, conn: Connection, options: SessionOptions) -> list[TestResult]:
    """Run the suites' tests against the connection; every test becomes a TestResult."""
    plugin = GradingPlugin(assignment, conn, options)
    paths = test_paths(assignment, options.suites)
    if not paths:
        raise InvalidAssignment(f"{assignment.slug}: no tests in {', '.join(options.suites)}")
    args = ["-c", str(PYTEST_INI), "--rootdir", str(assignment.path), "-qq", "--no-header",
            "--import-mode=importlib", "--capture=no", "--tb=no", *UNUSED_PLUGINS, *paths]
    _import_libraries(tuple(paths), assignment.path)
    prefix, dont_write = sys.pycache_prefix, sys.dont_write_bytecode
    # Bytecode (pytest's assertion-rewritten test modules above all) goes to this process's
    # private cache: no __pycache__ is left in the assignment folder, and the next grading
    # here reads the rewritten tests back instead of rewriting them.
    sys.pycache_prefix, sys.dont_write_bytecode = _bytecode_cache(), False
    try:
        # pytest's own report is not ours to print: results go through on_result.
        with contextlib.redirect_stdout(io.StringIO()), _no_plugin_autoload(), _one_thread():
            code = pytest.main(args, plugins=[plugin])
    finally:
        sys.pycache_prefix, sys.dont_write_bytecode = prefix, dont_write
        _forget_test_modules(assignment.path)
    if plugin.fault is not None:
        raise plugin.fault
    if plugin.invalid is not None:
        raise plugin.invalid
    if plugin.collect_errors:
        error = collection_failure(assignment.slug, plugin.collect_errors)
        log.error("%s\n%s", error, error.detail)  # the worker's log keeps what students may not see
        raise error
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        raise InvalidAssignment(f"{assignment.slug}: its tests could not be run (pytest exit "
                                f"code {code})")
    return plugin.results
