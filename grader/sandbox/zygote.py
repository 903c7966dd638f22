"""The trusted side of the fork server: one warm zygote per sandbox view, in each process.

Starting a job cold is a new Python in bubblewrap that imports torch (about 1.1 s of
CPU); a job forked from a zygote that imported it already starts in milliseconds. The
zygote runs in bubblewrap with the view a job of its kind gets (the system and Python
folders read-only, the assignment's forbidden modules hidden, no network), as root with
only the capabilities it needs to make each job's namespaces, mounts and uid
(grader.guest.zygote does that in the child). It holds nothing secret: it never sees a
test, a reference output or a seed, only each job's limits and file descriptors.

A zygote belongs to the process that started it (a worker's pool process) and ends when
that process closes its control socket. One that has died, or does not answer, is
dropped and started again later; meanwhile jobs start cold, as before: a grading never
waits on a broken zygote. `TORCHGRADE_WARM=0` turns the warm path off.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

from grader.sandbox.bwrap import Hidden

WARM_ENV = "TORCHGRADE_WARM"
# What the zygote imports before any job (each only where the assignment allows it, and
# with one thread: libgomp is not fork-safe once torch has run parallel work). torch.optim
# and a first non-scalar backward import torch._dynamo and sympy: seconds, paid once here.
PRELOAD = ("numpy", "torch", "torch.nn", "torch.nn.functional", "torch.optim",
           "torch.utils.data", "torch._dynamo", "torch.fx.experimental.symbolic_shapes",
           "sympy", "nbformat")
READY_TIMEOUT_S = 60.0  # wall seconds for a zygote to import what it preloads
FORK_TIMEOUT_S = 10.0  # wall seconds for a fork to report the job's pid
RETRY_AFTER_S = 30.0  # after a zygote failed, jobs of its view start cold this long
ZYGOTE_TMP_MB = 16  # the zygote's own /tmp (each job mounts a /tmp of its own size)
MAX_ZYGOTES = 4  # views with a live zygote in one process (the oldest is closed past it)
# Capabilities the zygote keeps (inside its own namespaces, as root): to make each job's
# namespaces and mounts, to switch it to its uid, to drop the bounding set, to kill it,
# to bring up its loopback interface.
ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL", "CAP_NET_ADMIN")


class ZygoteError(Exception):
    """The zygote could not start, fork or answer: start the job cold instead."""


@dataclass(frozen=True)
class View:
    """What a zygote's jobs share: the file system they see, their environment, their layers."""

    hidden: tuple[Hidden, ...]
    forbidden: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    python_dirs: tuple[str, ...]
    gpu: bool
    namespaces: bool


class ForkedJob:
    """A job forked from a zygote, as the trusted side sees it (the part of Popen we use).

    `pid` is the job's first process in this process's pid namespace (its init, the
    leader of its process group). Its exit status comes on the job's own status socket
    from its monitor; the socket closing without one means the monitor was killed
    (the job's cgroup was killed), reported as SIGKILL.
    """

    def __init__(self, pid: int, status: socket.socket, buffered: bytes = b"") -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status = status
        self._buffer = buffered
        self._parse()

    def _parse(self) -> None:
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            word, _, value = line.decode(errors="replace").partition(" ")
            if word == "exit" and self.returncode is None:
                self.returncode = int(value)

    def _read(self, timeout: float) -> None:
        if self._status.fileno() < 0:
            return
        if not select.select([self._status], [], [], max(timeout, 0.0))[0]:
            return
        try:
            data = self._status.recv(4096)
        except OSError:
            data = b""
        if not data:
            self._status.close()
            if self.returncode is None:
                self.returncode = -9
            return
        self._buffer += data
        self._parse()

    def poll(self) -> int | None:
        """The exit status if the job has ended, else None (never waits)."""
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the job to end; subprocess.TimeoutExpired past timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("sandboxed job", timeout)
            self._read(min(left, 1.0))
        return self.returncode

    def close(self) -> None:
        """Close the status socket (the monitor then kills the job if it still runs)."""
        self._status.close()


class Zygote:
    """One running fork server and its control socket."""

    def __init__(self, view: View, python: str, pythonpath: str) -> None:
        self.view = view
        self.python = python
        self.pythonpath = pythonpath
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.info: dict = {}
        self.lock = threading.Lock()
        self.owner = os.getpid()
        self._log = tempfile.TemporaryFile()

    def _argv(self, child_fd: int) -> tuple[list[str], dict[str, str], list[int]]:
        from grader.guest import zygote as guest_zygote
        from grader.sandbox.bwrap import bwrap_argv, hide_argv
        from grader.sandbox.process import GUEST_DIR

        preload = [m for m in PRELOAD if m.partition(".")[0] not in self.view.forbidden]
        config = json.dumps({"control_fd": child_fd, "preload": preload,
                             "forbidden": list(self.view.forbidden)})
        env = dict(self.view.env, PYTHONPATH=self.pythonpath)
        command = [self.python, "-S", "-s", "-B", "-m", guest_zygote.__name__, config]
        if not self.view.namespaces:
            return command, env, [child_fd]
        hide, fds = hide_argv(self.view.hidden)
        argv = bwrap_argv(job_files={}, guest_dir=GUEST_DIR, env=env, tmp_mb=ZYGOTE_TMP_MB,
                          seccomp_fd=None, gpu=self.view.gpu, python_dirs=list(self.view.python_dirs),
                          hide=hide, drop_to=None, fork_server=ZYGOTE_CAPS)
        return argv + command, {}, [child_fd, *fds]

    def start(self) -> None:
        """Start the zygote; `wait_ready` waits for its imports (jobs can be set up meanwhile)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            argv, env, fds = self._argv(child.fileno())
            try:
                self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                             stdout=self._log, stderr=self._log, pass_fds=fds,
                                             start_new_session=True, cwd="/")
            finally:
                for fd in fds[1:]:
                    os.close(fd)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.control = parent

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the zygote has imported what it preloads; ZygoteError if it cannot."""
        with self.lock:
            if self.info:
                if not self.info.get("ready"):
                    raise ZygoteError("the fork server could not start")
                return
            ready = bool(select.select([self.control], [], [], timeout)[0]) if self.control else False
            message = self.control.recv(1 << 16) if ready else b""
            try:
                self.info = json.loads(message) if message else {"ready": False}
            except ValueError:
                self.info = {"ready": False}
            if not self.info.get("ready"):
                said = self.log_tail()
                reason = ("it did not get ready in time" if not ready else
                          f"it imported forbidden modules {self.info['leaked']}" if self.info.get("leaked")
                          else "it ended before it was ready")
                said = f"; it said: {said}" if said else ""
                self.info["ready"] = False
                raise ZygoteError(f"the fork server could not start: {reason}{said}")
            if self.info.get("threads", 1) != 1:
                self.info["ready"] = False
                raise ZygoteError(f"the fork server has {self.info['threads']} threads after its "
                                  "imports; forking it is not safe")

    @property
    def is_ready(self) -> bool:
        """Whether the zygote said it is ready (without waiting)."""
        return bool(self.info.get("ready"))

    def log_tail(self) -> str:
        """The last of what the zygote printed (for a message about why it failed)."""
        try:
            self._log.seek(0)
            return self._log.read()[-400:].decode(errors="replace").strip()
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        """Whether the zygote is running and its control socket open."""
        return (self.proc is not None and self.proc.poll() is None and self.control is not None
                and self.control.fileno() >= 0)

    def fork(self, request: dict, fds: dict[str, int]) -> ForkedJob:
        """Fork a job: send the request with its fds, read the job's pid from its status socket.

        fds must not hold "status": the job's status socket is made here. The caller
        still owns (and closes) the fds it passed.
        """
        self.wait_ready()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            named = {**fds, "status": theirs.fileno()}
            message = json.dumps({**request, "fds": list(named)}).encode()
            with self.lock:
                if not self.alive:
                    raise ZygoteError("the fork server is not running")
                try:
                    socket.send_fds(self.control, [message], list(named.values()))
                except OSError as exc:
                    raise ZygoteError(f"the fork server did not take the request: {exc}") from None
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        buffered = b""
        deadline = time.monotonic() + FORK_TIMEOUT_S
        while b"\n" not in buffered:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ours], [], [], left)[0]:
                ours.close()
                raise ZygoteError("the fork server did not fork the job in time")
            data = ours.recv(4096)
            if not data:
                ours.close()
                raise ZygoteError("the fork server ended the job before it started")
            buffered += data
        line, _, rest = buffered.partition(b"\n")
        word, _, value = line.decode(errors="replace").partition(" ")
        if word != "pid":
            ours.close()
            raise ZygoteError(value or "the fork server answered out of turn")
        return ForkedJob(int(value), ours, rest)

    def close(self) -> None:
        """End the zygote: close its control socket (it exits), kill it after a grace."""
        if self.control is not None:
            self.control.close()
        if self.proc is not None and os.getpid() == self.owner:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


_LOCK = threading.Lock()
_ZYGOTES: dict[View, Zygote] = {}
_FAILED: dict[View, float] = {}
_OWNER = [os.getpid()]


def enabled() -> bool:
    """Whether jobs may start warm here (TORCHGRADE_WARM is not 0)."""
    return os.environ.get(WARM_ENV, "1") != "0"


def for_view(view: View, python: str, pythonpath: str) -> Zygote | None:
    """A zygote for the view (started now if needed, not waited for), or None: start cold."""
    if not enabled():
        return None
    with _LOCK:
        if os.getpid() != _OWNER[0]:  # a forked copy of the process that owns them
            _ZYGOTES.clear()
            _FAILED.clear()
            _OWNER[0] = os.getpid()
        zygote = _ZYGOTES.get(view)
        if zygote is not None and zygote.alive:
            return zygote
        if zygote is not None:
            _drop(zygote, failed=False)
        if time.monotonic() < _FAILED.get(view, 0.0):
            return None
        zygote = Zygote(view, python, pythonpath)
        try:
            zygote.start()
        except OSError as exc:
            _FAILED[view] = time.monotonic() + RETRY_AFTER_S
            warnings.warn(f"{exc}; jobs start cold for now", RuntimeWarning, stacklevel=2)
            return None
        while len(_ZYGOTES) >= MAX_ZYGOTES:
            oldest = next(iter(_ZYGOTES))
            _ZYGOTES.pop(oldest).close()
        _ZYGOTES[view] = zygote
        return zygote


def _drop(zygote: Zygote, *, failed: bool) -> None:
    if _ZYGOTES.get(zygote.view) is zygote:
        del _ZYGOTES[zygote.view]
    if failed:
        _FAILED[zygote.view] = time.monotonic() + RETRY_AFTER_S
    zygote.close()


def retire(zygote: Zygote) -> None:
    """Drop a zygote that failed a job; its view starts cold until RETRY_AFTER_S has passed."""
    with _LOCK:
        _drop(zygote, failed=True)


def running() -> list[Zygote]:
    """The live zygotes of this process."""
    with _LOCK:
        return [z for z in _ZYGOTES.values() if z.alive and z.owner == os.getpid()]


def server_pids() -> set[int]:
    """Pids of this process's zygotes (bubblewrap's and the server's): not a job's leftovers."""
    pids = set()
    for zygote in running():
        pids.add(zygote.proc.pid)
        if zygote.info.get("pid"):
            pids.add(int(zygote.info["pid"]))
    return pids


@atexit.register
def close_all() -> None:
    """End every zygote of this process."""
    with _LOCK:
        zygotes = [z for z in _ZYGOTES.values() if z.owner == os.getpid()]
        _ZYGOTES.clear()
    for zygote in zygotes:
        zygote.close()
