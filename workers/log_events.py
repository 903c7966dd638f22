"""One clear log line per event: a fault's repeats collapsed, a dead pool process in one line.

In a 33 s database outage a worker logged 1219 retry warnings, and each pool process
killed under it a full traceback. Operators read these logs at the worst moment, so a
handler filter (installed on the worker's handlers, in the main process and each pool
process) lets the first line of a kind through, counts the repeats for WINDOW_S, and says
how many there were on the next line of that kind after the window. Lines of a kind
differ only in their numbers (ids, ports, seconds).
"""

from __future__ import annotations

import logging
import re
import time

WINDOW_S = 60.0
MAX_KINDS = 512
_NUMBER = re.compile(r"\d+(\.\d+)?")
_WHY_LOST = re.compile(r"Worker exited prematurely: (.*?)(?: Job: \d+\.)?['\"\n]")


OUTAGE_TYPES = {"OperationalError", "InterfaceError", "DisconnectionError", "ConnectionError",
                "TimeoutError", "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError"}


def _is_outage(exc: BaseException) -> bool:
    """A broker or database that is away: a fault to report, not a bug to trace."""
    return any(cls.__name__ in OUTAGE_TYPES for cls in type(exc).__mro__)


def _kind(record: logging.LogRecord) -> tuple[str, int, str]:
    return record.name, record.levelno, _NUMBER.sub("#", record.getMessage())[:300]


class OneLinePerEvent(logging.Filter):
    """Collapse repeated warnings and errors of one kind; one line for a dead pool process."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # kind -> [first at, repeats]

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to emit the record (rewritten in place where it is shortened)."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ in ("TimeLimitExceeded", "SoftTimeLimitExceeded"):
            # the task's on_failure says what it did about it (graded again, or failed)
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__})", ()
            record.exc_info, record.exc_text = None, None
        elif exc is not None and "WorkerLostError" in f"{type(exc).__name__} {record.getMessage()}":
            # the message goes back to the queue (task_reject_on_worker_lost): no traceback
            why = _WHY_LOST.search(f"{exc}\n{record.getMessage()}")
            record.msg = "a pool process died while grading (%s); its message is requeued"
            record.args = (why.group(1) if why else type(exc).__name__,)
            record.exc_info, record.exc_text = None, None
        elif exc is not None and _is_outage(exc):
            # "Connection to broker lost", a database away: the cause in one line, no traceback
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {first})", ()
            record.exc_info, record.exc_text = None, None
        if record.levelno < logging.WARNING:
            return True
        kind, now = _kind(record), time.monotonic()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.getMessage()} (and {int(seen[1])} more like it in {self.window_s:g} s)"
            record.args = ()
        if len(self._seen) >= MAX_KINDS:
            self._seen.clear()
        self._seen[kind] = [now, 0]
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of logger (default: the root logger), once each."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, OneLinePerEvent) for f in handler.filters):
            handler.addFilter(OneLinePerEvent())
