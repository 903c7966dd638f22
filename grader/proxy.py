"""The trusted side's view of the student's code: `student.forward(x, w1, w2)`.

Each call crosses the pipe into the sandbox and only plain data comes back. Objects
that are not plain data (a model, a generator) stay in the sandbox and come back as
`RemoteObject` handles whose methods can be called in turn. A `Connection` owns the
sandbox: it starts it, restarts it after a timeout or crash (so later tests still
earn their points), and enforces each test's deadline.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.assignment import Forbidden
from grader.errors import GradingTimeout, InfrastructureFault, StudentCodeError
from grader.guest.wire import Ref, WireError
from grader.sandbox.clock import backstop_s
from grader.sandbox.layers import Layers
from grader.sandbox.limits import Limits
from grader.sandbox.process import CallTiming, Sandbox

MAX_RESTARTS = 4
READ_GRACE_S = 1.0


@dataclass
class Connection:
    """A lazily (re)started sandbox holding one submission (or the reference)."""

    submission: bytes | Path  # the checked bytes (a Path is read by the sandbox, without links)
    kind: str
    limits: Limits
    layers: Layers
    forbidden_modules: dict[str, str] = field(default_factory=dict)
    gpu: bool = False
    # The manifest's whole [forbidden] table: calls and attributes are replaced in the guest
    # at run time, and a call that reached one fails on this side's reading of the manifest.
    forbidden: Forbidden | None = None
    # Top-level names whose code breaks a rule of the static check -> why: a call through
    # one fails its test here, before it reaches the sandbox (grader.attribution).
    blocked: dict[str, str] = field(default_factory=dict)
    load_error: str | None = None
    sandbox: Sandbox | None = None
    generation: int = 0
    restarts: int = 0
    memory_peak_bytes: int = 0  # the largest job's, by its cgroup's accounting (0 without one)
    cpu_s: float = 0.0  # every job's CPU time, by its cgroup's accounting
    logs: list[str] = field(default_factory=list)
    notebook: str | None = None
    messages: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)  # a notebook's cells that raised
    timings: list[CallTiming] = field(default_factory=list)
    # When a list, every request is appended to it (the benchmark replays them bare).
    recorder: list[dict[str, Any]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: Pending | None = None

    def __post_init__(self) -> None:
        # The whole grading's budget, across tests and restarts, on the job's own clock
        # (seconds it ran or slept: loads and calls), and the current test's share of it.
        self.spent_s = 0.0
        self._test = (float("inf"), 0.0)  # (the test's budget, spent_s when it began)
        # Past this wall-clock time the machine, not the submission, failed the grading.
        self.backstop_at = time.monotonic() + backstop_s(self.limits.total_timeout_s)

    def begin_test(self, budget_s: float) -> None:
        """A test begins: its calls together may run or sleep for budget_s seconds."""
        self._test = (budget_s, self.spent_s)

    def spend(self, seconds: float) -> None:
        """Count seconds the job ran or slept (a load, a call) against the budgets."""
        self.spent_s += max(seconds, 0.0)

    def prestart(self) -> None:
        """Start the sandbox now without waiting for it to load (overlaps test collection)."""
        with self._lock:
            if self.sandbox is None and self.load_error is None:
                self.sandbox = self._new_sandbox()
                self.sandbox.spawn()

    def warm(self) -> bool:
        """Start the warm zygote this connection's jobs fork from (not waiting for it)."""
        return self._new_sandbox().warm()

    def _new_sandbox(self) -> Sandbox:
        self.generation += 1
        bans = self.forbidden or Forbidden()
        return Sandbox(self.submission, self.kind, limits=self.limits, layers=self.layers,
                       forbidden_modules={**bans.modules, **self.forbidden_modules}, gpu=self.gpu,
                       guest_options={"forbidden_calls": bans.calls,
                                      "forbidden_attributes": bans.attributes})

    def _forbidden_uses(self, reported: Any) -> list[str]:
        """The manifest's rules among the names the guest reported (forged names are dropped)."""
        if not isinstance(reported, list) or self.forbidden is None:
            return []
        rules = {**self.forbidden.calls, **self.forbidden.attributes}
        return [f"your code used `{name.lstrip('.')}`, which is not allowed here: {rules[name]}"
                for name in dict.fromkeys(n for n in reported[:50] if isinstance(n, str))
                if name in rules]

    def _ensure(self) -> Sandbox | None:
        with self._lock:
            if self.load_error is not None:
                return None
            if self.sandbox is not None and not self.sandbox.ready:
                return self._load(self.sandbox, spawned=True)
            if self.sandbox is not None and self.sandbox.alive:
                return self.sandbox
            if self.sandbox is not None:
                self._retire()
                self.restarts += 1
                if self.restarts > MAX_RESTARTS:
                    self.load_error = ("your code had to be restarted too often (after timeouts "
                                       "or crashes); the remaining tests were not run")
                    return None
            self.sandbox = self._new_sandbox()
            return self._load(self.sandbox, spawned=False)

    def _load(self, sandbox: Sandbox, *, spawned: bool) -> Sandbox | None:
        try:
            if not spawned:
                sandbox.spawn()
            report = sandbox.wait_ready()
            self.spend(sandbox.load_s)
        except StudentCodeError as exc:
            self.spend(sandbox.load_s)
            self.load_error = f"your submission could not be loaded: {exc}"
            self.messages.append(self.load_error)
            return None
        self._take_report(report)
        return sandbox if self.load_error is None else None

    def _take_report(self, report: dict[str, Any]) -> None:
        notebook = report.get("notebook")
        if isinstance(notebook, bytes) and self.notebook is None:
            self.notebook = notebook.decode("utf-8", "replace")
        for err in report.get("cell_errors", [])[:20]:
            self.cell_errors.append(str(err)[:300])
            note = f"{str(err)[:300]} (the cells after it still ran)"
            if note not in self.messages:
                self.messages.append(note)
        for use in self._forbidden_uses(report.get("forbidden")):
            note = f"{use} (while your submission was loading; it was refused)"
            if note not in self.messages:
                self.messages.append(note)
        names = report.get("names")
        if isinstance(names, list):
            self.names = [str(n) for n in names][:500]
        if report.get("ready") is not True:
            error = report.get("error") if isinstance(report.get("error"), dict) else {}
            kind, msg = str(error.get("type", "")), str(error.get("message", ""))[:1000]
            self.load_error = (f"your submission could not be loaded: "
                               f"{kind + ': ' if kind and kind != 'SystemExit' else ''}{msg}")
            tb = str(error.get("traceback", ""))[:2000]
            self.messages.append(self.load_error + (f"\n{tb}" if tb else ""))

    def _retire(self) -> None:
        sandbox, self.sandbox = self.sandbox, None
        usage = sandbox.close()
        self.memory_peak_bytes = max(self.memory_peak_bytes, usage.memory_peak_bytes)
        self.cpu_s += usage.cpu_s
        log = sandbox.capture.text()
        if log:
            self.logs.append(log)

    def close(self) -> None:
        """Stop the sandbox for good."""
        with self._lock:
            if self.sandbox is not None:
                self._retire()

    def log(self) -> str:
        """Everything the student's code printed, across restarts."""
        return "\n".join(self.logs)

    def request(self, message: dict[str, Any], what: str) -> Any:
        """Send one request within the current test's deadline; return its value."""
        return self.start(message, what).result()

    def start(self, message: dict[str, Any], what: str) -> Pending:
        """Send one request now and return at once; `Pending.result()` reads the answer.

        The student's code runs while the test goes on (computing the reference's answer,
        say). Only one request is in flight: the next one reads this answer first.
        """
        self.settle()
        sandbox = self._ensure()
        if sandbox is None:
            raise StudentCodeError(self.load_error or "your code is not running", kind="load")
        if time.monotonic() > self.backstop_at:
            raise InfrastructureFault(
                f"the grading took far longer in wall-clock time than the {self.limits.total_timeout_s:g} s "
                "its code may use: the machine was starved or stalled; grade it again")
        left_total = self.limits.total_timeout_s - self.spent_s
        timeout = min(self.limits.call_timeout_s, left_total)
        total_message = (f"your code ran or slept for the grading's whole time limit "
                         f"({self.limits.total_timeout_s:g} s in all, not counting time spent "
                         f"waiting for a CPU) while {what}")
        if timeout <= 0:
            raise GradingTimeout(total_message)
        test_budget, test_start = self._test
        left_test = test_budget - (self.spent_s - test_start)
        if left_test < timeout:
            timeout = left_test
            if timeout <= 0:
                raise GradingTimeout(f"this test's time ({test_budget:g} s of your code's "
                                     f"running or sleeping) ran out before {what}")
        if self.recorder is not None:
            self.recorder.append(message)
        sent = sandbox.send(message, what)
        self._pending = Pending(self, sandbox, sent, timeout, what,
                                total_message if timeout >= left_total else None)
        return self._pending

    def settle(self) -> None:
        """Read the answer of the request in flight, if any (kept for its `result()`)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.collect()

    def answer(self, response: dict[str, Any]) -> Any:
        """The value of a response, or the student's error raised as StudentCodeError."""
        uses = self._forbidden_uses(response.get("forbidden"))
        if uses:
            # Whatever the call returned: it reached an API the exercise forbids.
            raise StudentCodeError("; ".join(uses), kind="forbidden")
        if response.get("ok") is True:
            return response.get("value")
        error = response.get("error") if isinstance(response.get("error"), dict) else {}
        exc_type = str(error.get("type", "Exception"))[:100]
        message_text = str(error.get("message", ""))[:1500]
        tb = str(error.get("traceback", ""))[-1500:]
        if exc_type == "LookupError":
            if self.cell_errors and message_text.startswith("your submission defines no"):
                # Not a missing function: the cell that defines it failed before it got there.
                cells = "; ".join(dict.fromkeys(self.cell_errors[:3]))
                message_text = (f"{message_text.replace('your submission defines', 'your notebook defines')}"
                                f". A cell failed ({cells}), and a cell stops at the line that "
                                "raises, so what it defines after that line never exists: fix that "
                                "cell, then run the notebook from the top to check")
            raise StudentCodeError(message_text, kind="missing", exc_type=exc_type)
        detail = f"{exc_type}: {message_text}" if message_text else exc_type
        raise StudentCodeError(f"your code raised {detail}" + (f"\n{tb}" if tb else ""),
                               exc_type=exc_type)

    def _encode_arg(self, value: Any) -> Ref:
        if isinstance(value, RemoteObject) and value._generation == self.generation:
            return value._ref
        if isinstance(value, RemoteObject):
            raise StudentCodeError("an object from before your code was restarted is gone",
                                   kind="dead")
        raise WireError(f"cannot send a {type(value).__name__} to student code")

    def call(self, target: Ref | None, path: list[str], args: tuple, kwargs: dict,
             keep: bool = False) -> Any:
        """Call a function or method in the sandbox (`keep`: its result stays there)."""
        return self.start_call(target, path, args, kwargs, keep).result()

    def start_call(self, target: Ref | None, path: list[str], args: tuple, kwargs: dict,
                   keep: bool = False) -> Pending:
        """Send a call and return at once (see `start`)."""
        self._refuse_blocked(target, path)
        what = f"calling {'.'.join(path) or (target.type_name if target else 'object')}"
        message = {"op": "call", "target": target, "path": path, "args": tuple(args),
                   "kwargs": dict(kwargs)}
        if keep:
            message["keep"] = True
        return self.start(_with_refs(message, self._encode_arg), what)

    def _refuse_blocked(self, target: Ref | None, path: list[str]) -> None:
        if target is None and path and path[0] in self.blocked:
            raise StudentCodeError(self.blocked[path[0]], kind="forbidden")

    def get(self, target: Ref | None, path: list[str]) -> Any:
        """Read an attribute's value from the sandbox."""
        self._refuse_blocked(target, path)
        return self.request({"op": "get", "target": target, "path": path},
                            f"reading {'.'.join(path)}")


class Pending:
    """A request sent to the sandbox whose answer has not been read yet."""

    def __init__(self, conn: Connection, sandbox: Sandbox, sent: tuple[float, float],
                 timeout: float, what: str, total_message: str | None) -> None:
        self._conn, self._sandbox, self._sent, self._what = conn, sandbox, sent, what
        self._timeout, self._total_message = timeout, total_message
        self._sent_at = time.monotonic()
        self._generation = conn.generation
        self._outcome: tuple[bool, Any] | None = None

    def collect(self) -> None:
        """Read the answer now (the value or the error is kept for `result()`)."""
        if self._outcome is not None:
            return
        # The student's time runs from the send. When this side comes to read late (it was
        # computing meanwhile), an answer still gets READ_GRACE_S to arrive: it may have
        # been waiting on a full pipe all along.
        deadline = max(self._sent_at + self._timeout,
                       time.monotonic() + min(self._timeout, READ_GRACE_S))
        conn, generation = self._conn, self._generation
        try:
            response, timing = self._sandbox.receive(
                self._sent, deadline, self._what,
                from_ref=lambda ref: RemoteObject(conn, ref, generation))
            conn.timings.append(timing)
            conn.spend(timing.job_s)
            self._outcome = (True, conn.answer(response))
        except GradingTimeout as exc:
            self._outcome = (False, GradingTimeout(self._total_message) if self._total_message
                             else exc)
        except (StudentCodeError, WireError) as exc:
            self._outcome = (False, exc)

    def result(self) -> Any:
        """The call's value; raises the student's error, a timeout or a crash as the call would."""
        if self._conn._pending is self:
            self._conn._pending = None
        self.collect()
        ok, value = self._outcome
        if not ok:
            raise value
        return value


def _with_refs(message: dict[str, Any], encode_arg) -> dict[str, Any]:
    """Replace RemoteObject handles in the arguments with their Refs."""

    def walk(value: Any) -> Any:
        if isinstance(value, RemoteObject):
            return encode_arg(value)
        if type(value) in (list, tuple):
            return type(value)(walk(v) for v in value)
        if type(value) is dict:
            return {k: walk(v) for k, v in value.items()}
        return value

    return {k: walk(v) for k, v in message.items()}


class RemotePath:
    """A not-yet-resolved name in the student's code: call it, or `.get()` its value."""

    def __init__(self, conn: Connection, target: Ref | None, path: list[str]) -> None:
        self._conn, self._target, self._path = conn, target, path

    def __getattr__(self, name: str) -> RemotePath:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemotePath(self._conn, self._target, self._path + [name])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._conn.call(self._target, self._path, args, kwargs)

    def keep(self, *args: Any, **kwargs: Any) -> RemoteObject:
        """Call it, but leave the result in the sandbox and return a handle on it.

        For results that are data but must stay where they are, such as a tensor whose
        autograd graph the test drives next (`y.backward(g)`, `y.grad_fn`).
        """
        return self._conn.call(self._target, self._path, args, kwargs, keep=True)

    def begin(self, *args: Any, **kwargs: Any) -> Pending:
        """Call it without waiting: the student's code runs while the test computes the
        expected answer; `.result()` then gives the value (or raises) as a call would."""
        return self._conn.start_call(self._target, self._path, args, kwargs)

    def get(self) -> Any:
        """The attribute's value (plain data, or a RemoteObject)."""
        return self._conn.get(self._target, self._path)

    def __repr__(self) -> str:
        return f"<student code {'.'.join(self._path)}>"


class RemoteObject:
    """A handle on an object living in the sandbox (a model, a custom Function...)."""

    def __init__(self, conn: Connection, ref: Ref, generation: int) -> None:
        self._conn, self._ref, self._generation = conn, ref, generation

    @property
    def type_name(self) -> str:
        """The class name the sandbox reported (untrusted; for messages only)."""
        return self._ref.type_name

    def __getattr__(self, name: str) -> RemotePath:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemotePath(self._conn, self._ref, [name])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._conn.call(self._ref, [], args, kwargs)

    def __repr__(self) -> str:
        return f"<student {self._ref.type_name} object>"

    # Comparisons never reach student code: a handle equals only itself.
    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


class StudentProxy:
    """What tests receive as the `student` fixture."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> RemotePath:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemotePath(self._conn, None, [name])

    def defines(self, name: str) -> bool:
        """Whether the submission defines this top-level name."""
        self._conn._ensure()
        return name in self._conn.names

    def put(self, value: Any) -> RemoteObject:
        """Store a value in the sandbox and get a handle (to time calls without transfer)."""
        return self._conn.request({"op": "put", "value": value}, "storing an input")
