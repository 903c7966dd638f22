"""Keeps the embedded worker of `python -m web serve` running: restarted when it exits, stopped cleanly.

`python -m web.supervisor -- CMD...` runs CMD and starts it again whenever it exits. Restarts
back off: 1 s after the first exit, doubling to 60 s while it keeps dying soon after starting,
and 1 s again once a worker has run a minute. Each restart is one line on stderr with the exit
status. SIGTERM (or SIGINT) stops it: the worker gets SIGTERM, a wait, then SIGKILL to its
whole process group. The worker runs in a group of its own, so all of it (the Celery main
process, its pool processes, their sandboxes) goes at once, and what a dead worker leaves in
its group is killed before the next one starts.

Why a process of its own and not a thread of `serve`: gunicorn's arbiter reaps every child of
its process (waitpid(-1) on SIGCHLD), so a thread beside it loses the worker's exit status in
a race; and the supervisor asks the kernel for SIGTERM when `serve` dies (PR_SET_PDEATHSIG),
so even a `serve` killed with SIGKILL leaves no worker running unsupervised.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

PR_SET_PDEATHSIG = 1


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def describe_exit(code: int | None) -> str:
    """An exit code (negative: the signal) in words: 'exited with status 1', 'was killed by SIGKILL'."""
    if code is None:
        return "exited (its exit status was collected by another part of the server)"
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


class Supervisor:
    """Run cmd as a child process and start it again whenever it exits, until stop()."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None = None, *,
                 name: str = "embedded worker", min_backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 healthy_after_s: float = 60.0, stop_timeout_s: float = 15.0,
                 log: Callable[[str], None] = _stderr) -> None:
        self.cmd, self.env, self.name, self.log = list(cmd), env, name, log
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self.healthy_after_s, self.stop_timeout_s = healthy_after_s, stop_timeout_s
        self.restarts = 0
        self._started = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._exited = threading.Event()  # set when the current process has been waited for
        self._thread = threading.Thread(target=self._watch, name="torchgrade-worker-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        """The pid of the worker running now (None between a crash and its restart)."""
        proc = self._proc
        return proc.pid if proc is not None and not self._exited.is_set() else None

    def start(self) -> int:
        """Start the worker and the thread that watches it; the worker's pid."""
        with self._lock:
            self._spawn()
        self._thread.start()
        return self._proc.pid

    def _spawn(self) -> None:
        """Start one worker process (the caller holds the lock)."""
        self._exited = threading.Event()
        self._started = time.monotonic()
        self._proc = subprocess.Popen(self.cmd, env=self.env, process_group=0)

    def _wait(self, proc: subprocess.Popen) -> int | None:
        """Block until proc exits; its exit code (negative: killed by that signal), None if unknown."""
        code = None
        try:  # WNOWAIT: the zombie keeps its pid, so its group id cannot be reused before the kill below
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            if info is not None:
                code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        except ChildProcessError:
            pass
        self._kill_group(proc.pid, signal.SIGKILL)  # pool processes it left behind, if any
        try:
            os.waitpid(proc.pid, 0)
        except ChildProcessError:  # reaped by gunicorn's arbiter in between: the code above stands
            pass
        proc.returncode = code if code is not None else -1
        self._exited.set()
        return code

    def _watch(self) -> None:
        delay = self.min_backoff_s
        while True:
            proc, started = self._proc, self._started
            code = self._wait(proc)
            ran = time.monotonic() - started
            if self._stopping.is_set():
                return
            if ran >= self.healthy_after_s:
                delay = self.min_backoff_s
            self.restarts += 1
            self.log(f"torchgrade: the {self.name} (pid {proc.pid}) {describe_exit(code)} after "
                     f"{ran:.0f} s; restarting it in {delay:g} s (restart {self.restarts})")
            while not self._stopping.wait(delay):
                delay = min(delay * 2, self.max_backoff_s)
                with self._lock:
                    if self._stopping.is_set():
                        return
                    try:
                        self._spawn()
                        break
                    except OSError as exc:
                        self.log(f"torchgrade: could not start the {self.name} ({exc}); "
                                 f"trying again in {delay:g} s")
            else:
                return
            self.log(f"torchgrade: the {self.name} is running again as pid {self._proc.pid}")

    def stop(self) -> None:
        """Stop supervising and stop the worker: SIGTERM, then SIGKILL to its group after stop_timeout_s."""
        with self._lock:
            self._stopping.set()
            proc, exited = self._proc, self._exited
        if proc is not None and not exited.is_set():
            try:
                proc.send_signal(signal.SIGTERM)  # the Celery main process: a warm shutdown of its pool
            except ProcessLookupError:
                pass
            if not exited.wait(self.stop_timeout_s):
                self.log(f"torchgrade: the {self.name} (pid {proc.pid}) did not stop in "
                         f"{self.stop_timeout_s:g} s; killing it")
                self._kill_group(proc.pid, signal.SIGKILL)
                exited.wait(5)
        if self._thread.is_alive():
            self._thread.join(5)

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _die_with_parent(parent: int) -> None:
    """Ask for SIGTERM when the parent process ends (Linux); exit now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: serve's own shutdown still stops us
        return
    if os.getppid() != parent:  # the parent went before the request took effect
        raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """`python -m web.supervisor [options] -- CMD...`: supervise CMD until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m web.supervisor", description=main.__doc__)
    parser.add_argument("--name", default="embedded worker")
    parser.add_argument("--min-backoff", type=float, default=1.0)
    parser.add_argument("--max-backoff", type=float, default=60.0)
    parser.add_argument("--healthy-after", type=float, default=60.0)
    parser.add_argument("--stop-timeout", type=float, default=15.0)
    parser.add_argument("--parent", type=int, default=0, help="exit with this process (default: none)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("give the command to supervise after --")
    if args.parent:
        _die_with_parent(args.parent)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sup = Supervisor(cmd, dict(os.environ), name=args.name, min_backoff_s=args.min_backoff,
                     max_backoff_s=args.max_backoff, healthy_after_s=args.healthy_after,
                     stop_timeout_s=args.stop_timeout)
    pid = sup.start()
    _stderr(f"torchgrade: the {args.name} started as pid {pid} (supervised by pid {os.getpid()})")
    while not stop.wait(1.0):
        pass
    sup.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
