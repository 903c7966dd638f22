"""One sandboxed process that holds a submission and answers calls over a pipe.

The trusted side starts it, reads the load report, sends requests, and kills the
whole job (every process in its cgroup and pid namespace) when done or when a
limit is hit. Time is measured here, outside: wall clock around each call and the
cgroup's CPU accounting. What the job prints goes to a capped log, never parsed.
"""

from __future__ import annotations

import atexit
import compileall
import fcntl
import functools
import json
import os
import resource
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grader.guest
from grader.errors import (
    GraderError,
    GradingTimeout,
    InfrastructureFault,
    StudentCodeError,
)
from grader.guest.wire import PREFIX, STARTED, WireError, decode_body, encode_frame, frame_seq, split_prefix
from grader.guest.wire import Limits as WireLimits
from grader.sandbox import seccomp, zygote
from grader.sandbox.bwrap import JOB_DIR, bwrap_argv, data_fd, hidden_for, hide_argv
from grader.sandbox.cgroups import JobCgroup, Usage, job_prefix
from grader.sandbox.clock import JobClock, Mark, Watch, proc_cpu_s
from grader.sandbox.layers import Layers
from grader.sandbox.limits import Limits
from grader.submission import read_file_no_follow

GUEST_DIR = Path(grader.guest.__file__).parent
# Host job folders exist only for jobs without namespaces (`grader check` on a laptop);
# a sandboxed job gets its files from memory, inside its own mount namespace.
JOBS_ROOT = Path(tempfile.gettempdir()) / "torchgrade-jobs"
# Each job runs as a host uid of its own, from a range no account uses (systemd's table of
# uid ranges leaves 0x70000000-0x7FFEFFFF unassigned), not as nobody: a host process
# running as nobody, or as another job, could otherwise reach a running job through
# /proc/<pid>/root (its submission), its fds or its memory.
JOB_UIDS = range(0x70000000, 0x70000000 + (1 << 24))
MAX_SUBMISSION_BYTES = 64 << 20  # a Path given to Sandbox: far over what the engine accepts
_BPF: list[bytes] = []  # the seccomp filter, exported once per process
_FRESH_ROOTS: dict[Path, Path] = {}
_ROOT_LOCK = threading.Lock()
PIPE_BYTES = 1 << 20  # asked of every pipe to a job (F_SETPIPE_SZ): fewer, larger transfers
DRAIN_PAUSE_S = 0.05  # after a read that found the output pipe less than half full
DRAIN_BYTES_PER_S = 256 << 20  # output past the cap is discarded no faster than this
EXIT_GRACE_S = 2.0  # for a job whose channel closed to show its exit status
FRAME_GRACE_S = 1.0  # of the job's time, at least, to finish an answer it began


def _private_dir(path: Path) -> bool:
    """A real folder (not a link) owned by our euid, with no access for group or others."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _claim_root(path: Path) -> bool:
    """Make path our private root: new, or ours already (an older 0711 one is tightened)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # a link, or not a folder
    try:
        st = os.fstat(fd)
        # Ours, and nobody else could ever write in it: safe to tighten. Otherwise refuse.
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return False
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return _private_dir(path)


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def jobs_root(create: bool = True) -> Path | None:
    """The folder job folders are made under (None when it does not exist and create is off).

    It is a private folder of this process's euid (mode 0700, checked with lstat): where
    JOBS_ROOT is another user's, a link or open to others, this process makes a fresh
    private one of its own instead and uses that.
    """
    with _ROOT_LOCK:
        fresh = _FRESH_ROOTS.get(JOBS_ROOT)
        if fresh is not None and _private_dir(fresh):
            return fresh
        if _private_dir(JOBS_ROOT) or (create and _claim_root(JOBS_ROOT)):
            return JOBS_ROOT
        if not create:
            return None
        fresh = Path(tempfile.mkdtemp(prefix="torchgrade-jobs-"))
        _FRESH_ROOTS[JOBS_ROOT] = fresh
        atexit.register(_remove_if_empty, fresh)
        return fresh


_UID_LOCK = threading.Lock()
_LIVE_UIDS: set[int] = set()
_UID_FILE: list[int] = []  # one fd, kept open: closing any fd of it drops this process's locks


def _uid_lock_fd() -> int | None:
    if not _UID_FILE:
        root = jobs_root()
        try:
            _UID_FILE.append(os.open(root / "uids.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                                     | os.O_CLOEXEC, 0o600))
        except OSError:
            return None
    return _UID_FILE[0]


def claim_uid() -> int:
    """A job uid that no other live job on this machine has.

    Drawn at random from JOB_UIDS; held by a one-byte lock at the uid's offset in a lock
    file shared by every grading process of this user (the kernel drops it when the
    process ends), and by a set within this process. `release_uid` gives it back.
    """
    with _UID_LOCK:
        fd = _uid_lock_fd()
        while True:
            index = secrets.randbelow(len(JOB_UIDS))
            if index in _LIVE_UIDS:
                continue
            if fd is not None:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, index, os.SEEK_SET)
                except OSError:
                    continue  # another process's live job has it
            _LIVE_UIDS.add(index)
            return JOB_UIDS.start + index


def release_uid(uid: int) -> None:
    """Give back a uid from `claim_uid` (its job has ended)."""
    index = uid - JOB_UIDS.start
    with _UID_LOCK:
        if index in _LIVE_UIDS and _UID_FILE:
            fcntl.lockf(_UID_FILE[0], fcntl.LOCK_UN, 1, index, os.SEEK_SET)
        _LIVE_UIDS.discard(index)


@dataclass
class CallTiming:
    """Measured from outside the sandbox for one call."""

    wall_s: float
    cpu_s: float
    job_s: float = 0.0  # on the job's own clock: ran or slept, not waiting for a CPU


class Sent(NamedTuple):
    """What `send` hands to `receive`: the request's number and the clock at its start."""

    cpu0: float
    t0: float
    seq: int
    mark: Mark


@dataclass
class Capture:
    """The job's stdout and stderr, kept up to a cap; the rest is counted and dropped."""

    cap: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def text(self) -> str:
        """What was kept, with a note of what was dropped."""
        out = self.data.decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[output truncated: {self.dropped:,} more bytes were dropped]"
        return out


@functools.cache
def _compile_guest() -> None:
    """Write the guest's bytecode beside it once per process, for every job to read.

    Jobs run with -B and the guest folder read-only, so without this each one compiled
    the guest's sources anew (about 12 ms of its start-up). A read-only install is fine:
    the job then compiles, as before.
    """
    try:
        compileall.compile_dir(GUEST_DIR, quiet=2)
    except OSError:
        pass


def _seccomp_fd() -> int:
    """A memfd holding the job's seccomp filter (the same strict one for modules and notebooks)."""
    if not _BPF:
        with os.fdopen(seccomp.bpf_fd(), "rb") as f:
            _BPF.append(f.read())
    fd = os.memfd_create("torchgrade-seccomp", 0)
    os.write(fd, _BPF[0])
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _grow_pipe(fd: int) -> int:
    """Ask for a PIPE_BYTES pipe; return the size it has."""
    try:
        return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        try:
            return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        except OSError:
            return 65536


def _discard(fd: int, sink: int, n: int) -> int:
    """Move up to n bytes from the pipe to /dev/null inside the kernel; 0 at end of file."""
    try:
        return os.splice(fd, sink, n)
    except (OSError, AttributeError):  # no splice here: read and drop
        return len(os.read(fd, n))


def _drain(fd: int, capture: Capture, pipe_bytes: int) -> None:
    """Read the job's output until end of file: keep up to the cap, discard the rest.

    What this costs the trusted side is bounded per byte, not per write: reads are a
    pipe long, output past the cap never leaves the kernel (splice to /dev/null), and
    a read that found the pipe less than half full is followed by a pause, so a job
    writing one byte at a time wakes this thread 20 times a second, not once a byte.
    Reading goes on past the cap so that the job never waits on a full pipe for long:
    one writing faster than half a pipe a pause finds it that full and is read at once.
    Past the cap, output is taken at DRAIN_BYTES_PER_S at most: a job flooding faster
    waits in its writes (its own time, and it still moves) instead of costing our CPU.
    """
    sink = os.open(os.devnull, os.O_WRONLY)
    paced = time.monotonic()
    try:
        while True:
            room = capture.cap - len(capture.data)
            if room > 0:
                chunk = os.read(fd, pipe_bytes)
                n = len(chunk)
                capture.data += chunk[:room]
                capture.dropped += max(n - room, 0)
            else:
                n = _discard(fd, sink, pipe_bytes)
                capture.dropped += n
                paced = max(paced, time.monotonic()) + n / DRAIN_BYTES_PER_S
            if n == 0:
                return
            pause = DRAIN_PAUSE_S if n < pipe_bytes // 2 else 0.0
            time.sleep(max(pause, paced - time.monotonic(), 0.0))
    finally:
        os.close(sink)
        os.close(fd)


class Sandbox:
    """A started submission process; use as a context manager."""

    def __init__(self, submission: bytes | Path, kind: str, *, limits: Limits, layers: Layers,
                 forbidden_modules: dict[str, str] | None = None, gpu: bool = False,
                 guest_options: dict[str, Any] | None = None) -> None:
        # The checked bytes, given once: nothing reads the submission by its name again
        # (a Path, accepted for now, is read here once without following a link).
        self.data = (submission if isinstance(submission, bytes)
                     else read_file_no_follow(Path(submission), MAX_SUBMISSION_BYTES))
        # More of the guest's config (the run-time bans: forbidden_calls, forbidden_attributes).
        self.guest_options = dict(guest_options or {})
        self.kind = kind
        self.limits = limits
        self.layers = layers
        self.forbidden_modules = forbidden_modules or {}
        self.gpu = gpu
        self.proc: subprocess.Popen | None = None
        self.cgroup: JobCgroup | None = None
        self.job_dir: Path | None = None
        self.capture = Capture(cap=limits.output_kb * 1024)
        self.report: dict[str, Any] = {}
        self.ready = False
        self.load_s = 0.0  # the load's seconds on the job's clock (ran or slept)
        self.dead_reason = ""
        self.wire_limits = WireLimits(max_blob_bytes=limits.return_mb << 20)
        self._drainer: threading.Thread | None = None
        self.clock: JobClock | None = None
        self._req_w = self._resp_r = -1
        self._seq = 0  # of the last request; the load report is frame 0
        self._awaiting: int | None = None  # the request whose answer is due
        self.uid: int | None = None  # the job's own uid (claim_uid), where there is uid drop
        self.zygote: zygote.Zygote | None = None  # the warm server it was forked from, if any
        self._pending: tuple | None = None  # what spawn set up for a job not yet forked

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def file_name(self) -> str:
        """The submission's file name where the job reads it."""
        return "submission.ipynb" if self.kind == "notebook" else "submission.py"

    def _make_job_dir(self) -> Path:
        """A host folder for a job without namespaces: private (0700) to us, as is the job."""
        job = Path(tempfile.mkdtemp(prefix=job_prefix(), dir=jobs_root()))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(job / self.file_name, flags, 0o600), "wb") as f:
            f.write(self.data)
        return job

    def start(self) -> dict[str, Any]:
        """Start the job and wait for its load report (what the submission defines)."""
        self.spawn()
        return self.wait_ready()

    def wait_ready(self) -> dict[str, Any]:
        """Read the load report, once; later calls return it again."""
        self._launch()
        if not self.ready:
            self.ready = True
            watch = Watch(self.clock, self.limits.load_timeout_s)
            try:
                self._read_started(watch)
                self.report = self._read_response(watch, 0, "loading your submission")
            finally:
                self.load_s = watch.counted_s(force=True)
        return self.report

    def _read_started(self, watch: Watch) -> None:
        """Read the guest's STARTED bytes; a job that failed before them is the machine's fault."""
        try:
            started = self._read_exact(len(STARTED), watch, "starting the sandbox", "answer")
        except StudentCodeError as exc:  # it died, or got no time, before any student code ran
            if self.zygote is not None:  # forked warm: the next jobs start cold for a while
                zygote.retire(self.zygote)
            how = ("did not start within its time" if isinstance(exc, GradingTimeout)
                   else "ended before the grader's guest started")
            if self._drainer is not None:  # the job is gone: its output ends soon
                self._drainer.join(timeout=2.0)
            said = self.capture.text().strip()[:400]
            raise InfrastructureFault(
                f"the sandbox could not start: the job {how}" + (f"; it said: {said}" if said else "")
                + ". No student code ran: grade it again") from None
        if started != STARTED:
            raise self._violation("starting the sandbox", "bytes before the grader's guest started")

    def spawn(self) -> None:
        """Start the job without waiting for it to load.

        The job is forked from this process's warm zygote for its view when there is one
        (grader.sandbox.zygote), else started cold. Call this from a thread that outlives
        the job: a cold job's bubblewrap (--die-with-parent) ends with the thread that
        started it.
        """
        _compile_guest()
        self.job_dir = None if self.layers.namespaces else self._make_job_dir()
        lim = self.limits
        if self.layers.cgroups:
            self.cgroup = JobCgroup.create(self.layers.cgroup_version,
                                           memory_bytes=lim.memory_mb << 20,
                                           pids=lim.processes, cpus=lim.cpus)
        if self.layers.namespaces and self.layers.uid_drop:
            self.uid = claim_uid()
        req_r, resp_w, out_r, out_w, out_bytes = self._pipes()
        inside = JOB_DIR if self.job_dir is None else str(self.job_dir)
        config = {"kind": self.kind, "path": f"{inside}/{self.file_name}",
                  "forbidden_modules": self.forbidden_modules,
                  "max_blob_bytes": lim.return_mb << 20, **self.guest_options}
        view = self._view()
        server = (zygote.for_view(view, os.path.realpath(sys.executable), self._pythonpath())
                  if view else None)
        self._pending = (server, config, req_r, resp_w, out_r, out_w, out_bytes)
        if server is None or server.is_ready:
            self._launch()
        # else: the zygote is still importing; the job is forked when it is first needed
        # (wait_ready), so that this process collects its tests meanwhile.

    def _launch(self) -> None:
        """Fork the pending job from its zygote, or start it cold; then watch its output."""
        if self._pending is None:
            return
        server, config, req_r, resp_w, out_r, out_w, out_bytes = self._pending
        self._pending = None
        try:
            self.proc = self._fork_warm(server, config, req_r, resp_w, out_w) if server else None
            if self.proc is None:
                self.proc = self._start_cold(config, req_r, resp_w, out_w)
        except BaseException:
            os.close(out_r)
            raise
        finally:
            for fd in (req_r, resp_w, out_w):
                os.close(fd)
        self.clock = JobClock(self.proc.pid, self.cgroup, self.limits.cpus)
        self._drainer = threading.Thread(target=_drain, args=(out_r, self.capture, out_bytes),
                                         daemon=True)
        self._drainer.start()
        self.started_at = time.monotonic()

    def warm(self) -> bool:
        """Start the zygote this job would be forked from, without waiting; False: none here."""
        view = self._view()
        return bool(view) and zygote.for_view(view, os.path.realpath(sys.executable),
                                              self._pythonpath()) is not None

    def _view(self) -> zygote.View | None:
        """What a zygote for this job must look like, or None where jobs start cold."""
        if not zygote.enabled() or (self.layers.namespaces and not self.layers.uid_drop):
            return None  # a user namespace's single uid: every job would share it
        python_dirs = _python_dirs()
        hidden = (hidden_for(self.forbidden_modules, ("/usr", *python_dirs))
                  if self.layers.namespaces else ())
        return zygote.View(hidden=hidden, forbidden=tuple(sorted(self.forbidden_modules)),
                           env=tuple(sorted(self._env().items())), python_dirs=tuple(python_dirs),
                           gpu=self.gpu, namespaces=self.layers.namespaces)

    def _fork_warm(self, server: zygote.Zygote, config: dict[str, Any], req_r: int, resp_w: int,
                   out_w: int) -> zygote.ForkedJob | None:
        """The job forked from a warm zygote; None where it failed (start the job cold)."""
        ns = self.layers.namespaces
        request = {"namespaces": ns, "uid": self.uid, "rlimits": rlimits(self.limits, self.layers),
                   "tmp_bytes": self.limits.tmp_mb << 20, "job_dir": JOB_DIR,
                   "file_name": self.file_name, "cwd": "/tmp" if ns else str(self.job_dir),
                   "env": {} if ns else {"TMPDIR": str(self.job_dir)}, "config": config}
        fds = {"req": req_r, "resp": resp_w, "out": out_w}
        ours = []
        try:
            if self.cgroup is not None:
                for i, path in enumerate(self.cgroup.procs_files()):
                    ours.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
                    fds[f"cgroup{i}"] = ours[-1]
            if ns and self.layers.seccomp:
                ours.append(_seccomp_fd())
                fds["seccomp"] = ours[-1]
            if ns:
                ours.append(data_fd(self.data))
                fds["submission"] = ours[-1]
            job = server.fork(request, fds)
        except zygote.ZygoteError as exc:
            zygote.retire(server)
            warnings.warn(f"{exc}; this job starts cold", RuntimeWarning, stacklevel=2)
            return None
        finally:
            for fd in ours:
                os.close(fd)
        self.zygote = server
        return job

    def _start_cold(self, config: dict[str, Any], req_r: int, resp_w: int, out_w: int) -> subprocess.Popen:
        """A fresh interpreter in bubblewrap (the job's own namespaces, cgroup, rlimits, uid)."""
        keep = [req_r, resp_w]
        use_seccomp = self.layers.seccomp and self.layers.namespaces
        seccomp_fd = _seccomp_fd() if use_seccomp else None
        if seccomp_fd is not None:
            keep.append(seccomp_fd)
        argv, env, data_fds = self._argv(json.dumps({**config, "fd_in": req_r, "fd_out": resp_w}),
                                         seccomp_fd)
        keep += data_fds
        procs_files = self.cgroup.procs_files() if self.cgroup else []
        lim, layers = self.limits, self.layers
        try:
            return subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                pass_fds=keep, start_new_session=True, cwd=str(self.job_dir or "/"),
                preexec_fn=lambda: _enter_job(procs_files, lim, layers),
            )
        finally:
            for fd in keep[2:]:
                os.close(fd)

    def _env(self) -> dict[str, str]:
        """The job's environment (PYTHONPATH and TMPDIR aside)."""
        threads = str(max(1, int(self.limits.cpus)))
        env = {"HOME": "/tmp", "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg"}
        for name in ("CUDA_VISIBLE_DEVICES", "TORCHGRADE_GPU_MEMORY_FRACTION"):
            if self.gpu and name in os.environ:
                env[name] = os.environ[name]
        return env

    def _pythonpath(self) -> str:
        """Where the job imports the guest and installed packages from."""
        if not self.layers.namespaces:
            return os.pathsep.join([str(GUEST_DIR.parent.parent), *_package_dirs()])
        return os.pathsep.join(["/opt/torchgrade", *_package_dirs()])

    def _argv(self, config: str, seccomp_fd: int | None) -> tuple[list[str], dict[str, str], list[int]]:
        """The command, its environment, and the fds bubblewrap copies the job's files from."""
        env = self._env()
        env["PYTHONPATH"] = self._pythonpath()
        python = os.path.realpath(sys.executable)
        # -S: no site module, so none of the host's .pth files run in the job (an editable
        # install's finder, certificate hooks: about 35 ms of start-up here, and not the
        # job's business); the package folders go on PYTHONPATH instead.
        guest_cmd = [python, "-S", "-s", "-B", "-m", "grader.guest.serve", config]
        if not self.layers.namespaces:
            env["TMPDIR"] = str(self.job_dir)
            return guest_cmd, env, []
        python_dirs = _python_dirs()
        # Forbidden modules are not in the job's file system at all (stubs that raise).
        hide, fds = hide_argv(hidden_for(self.forbidden_modules, ("/usr", *python_dirs)))
        fds.append(data_fd(self.data))
        argv = bwrap_argv(job_files={self.file_name: fds[-1]}, guest_dir=GUEST_DIR, env=env,
                          tmp_mb=self.limits.tmp_mb, seccomp_fd=seccomp_fd, gpu=self.gpu,
                          python_dirs=python_dirs, hide=hide, drop_to=self.uid)
        return argv + guest_cmd, {}, fds

    def _pipes(self) -> tuple[int, int, int, int, int]:
        """The job's request, answer and output pipes (a pipe long each; our ends never block).

        Returns the job's ends of the request and answer pipes, both ends of the output
        pipe and the output pipe's size.
        """
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        for fd in (self._req_w, self._resp_r):
            _grow_pipe(fd)
            os.set_blocking(fd, False)
        return req_r, resp_w, out_r, out_w, _grow_pipe(out_r)

    def close(self) -> Usage:
        """Kill the whole job, reap it, remove its cgroup and folder; return the kernel's accounting.

        Safe to call twice, after a failed start, and from an exception: each step runs
        whatever the one before it raised.
        """
        usage = Usage()
        if self._pending is not None:  # set up, never started
            for fd in self._pending[2:6]:
                os.close(fd)
            self._pending = None
        try:
            if self.proc is not None:
                self._kill()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            try:
                cgroup, self.cgroup = self.cgroup, None
                if cgroup is not None:
                    try:
                        usage = cgroup.usage()
                    finally:
                        cgroup.destroy()
            finally:
                self._close_fds()
                if self.clock is not None:
                    self.clock.close()
                if self.uid is not None:
                    release_uid(self.uid)
                    self.uid = None
                if self.job_dir is not None:
                    shutil.rmtree(self.job_dir, ignore_errors=True)
                    self.job_dir = None
        return usage

    def _close_fds(self) -> None:
        for fd in (self._req_w, self._resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._resp_r = -1
        if self._drainer is not None:
            self._drainer.join(timeout=2)
            self._drainer = None
        if isinstance(self.proc, zygote.ForkedJob):
            self.proc.close()
        self.proc = None

    def _kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    @property
    def alive(self) -> bool:
        """Whether the job's main process is still running."""
        return self.proc is not None and self.proc.poll() is None and not self.dead_reason

    # -- calls -----------------------------------------------------------------------
    #
    # Every read and write below waits in poll() on a non-blocking pipe, bounded by the
    # call's budget on the job's own clock (grader.sandbox.clock) and a wall-clock
    # backstop: a job that stops reading, stops writing, or hogs its process is killed,
    # never waited on. Each request carries a number its answer must echo; anything else
    # on the answer pipe (a frame out of sequence, malformed, or sent unasked) was written
    # by the student's code, and the job is killed before it can shift later answers.

    def cpu_s(self) -> float:
        """CPU seconds the whole job has used so far (kernel accounting)."""
        if self.cgroup is not None:
            return self.cgroup.cpu_s()
        return proc_cpu_s(self.proc.pid) if self.proc is not None else 0.0

    def send(self, message: dict[str, Any], what: str, timeout: float | None = None) -> Sent:
        """Send one request without waiting for its answer; the token is for `receive`.

        The write is bounded by `timeout` seconds of the job's clock (the call's limit by
        default): a job that stops reading its input is stopped.
        """
        if not self.alive:
            raise StudentCodeError(self.dead_reason or "your code's process is no longer running",
                                   kind="dead")
        if self._awaiting is not None:
            raise RuntimeError("the sandbox's previous request has not been answered yet")
        self._check_quiet(what)
        frame = encode_frame(message, seq=self._seq + 1)
        self._seq += 1
        mark = self.clock.mark()
        # The CPU counter is read now, not taken from the mark: a mark may reuse a sample
        # from before the last call (clock.MARK_FRESH_S), and a call's CPU time must not
        # include its predecessor's (timing takes each call's CPU on its own).
        sent = Sent(self.cpu_s(), time.perf_counter(), self._seq, mark)
        self._awaiting = self._seq
        self._write_all(frame, Watch(self.clock, timeout or self.limits.call_timeout_s, mark), what)
        return sent

    def receive(self, sent: Sent, deadline: float, what: str,
                from_ref=None) -> tuple[dict[str, Any], CallTiming]:
        """The answer to the request `send` returned `sent` for.

        `deadline` (monotonic) sets the call's budget; it is spent on the job's clock from
        the send, so time the job waited for a CPU is not spent.
        """
        if sent.seq != self._awaiting:
            raise RuntimeError(f"request {sent.seq} is not the one awaiting an answer")
        watch = Watch(self.clock, deadline - sent.mark.wall, sent.mark)
        try:
            response = self._read_response(watch, sent.seq, what, from_ref)
        finally:
            self._awaiting = None
        self.clock.settle()  # the call's CPU, all of it charged before it is read
        timing = CallTiming(time.perf_counter() - sent.t0, self.cpu_s() - sent.cpu0,
                            watch.counted_s(force=True))
        return response, timing

    def _check_quiet(self, what: str) -> None:
        """Between calls the answer pipe is empty: bytes there were written unasked."""
        poller = select.poll()
        poller.register(self._resp_r, select.POLLIN)
        if not poller.poll(0):
            return
        try:
            data = os.read(self._resp_r, PREFIX.size)
        except BlockingIOError:
            return
        if not data:
            raise self._died(what)
        raise self._violation(what, "it wrote there when nothing was asked")

    def _read_response(self, watch: Watch, seq: int, what: str, from_ref=None) -> dict[str, Any]:
        prefix = self._read_exact(PREFIX.size, watch, what, "answer")
        try:
            header_len, blob_len = split_prefix(prefix, self.wire_limits)
        except WireError as exc:
            self.dead_reason = f"while {what}: {exc}"
            self._kill()
            raise StudentCodeError(str(exc), kind="too_large") from None
        # The answer has begun: what is left is a transfer, which gets time of its own.
        watch.allow(FRAME_GRACE_S + (header_len + blob_len) / 50e6)
        header = self._read_exact(header_len, watch, what, "middle")
        got = frame_seq(header)
        if got != seq:
            raise self._violation(what, f"an answer numbered {got}, not {seq}" if got is not None
                                  else "a frame that the grader's guest did not write")
        blob = self._read_exact(blob_len, watch, what, "middle") if blob_len else b""
        try:
            value = decode_body(header, blob, self.wire_limits, from_ref)
        except WireError as exc:
            # The whole frame was read: the channel is still in step, the job may go on.
            raise StudentCodeError(f"what your code returned could not be read: {exc}",
                                   kind="bad_value") from None
        if not isinstance(value, dict):
            raise self._violation(what, "a frame that is not an answer")
        return value

    def _read_exact(self, n: int, watch: Watch, what: str, stage: str) -> bytes:
        chunks, left = [], n
        while left:
            self._wait(self._resp_r, select.POLLIN, watch, what, stage)
            try:
                chunk = os.read(self._resp_r, min(left, PIPE_BYTES))
            except BlockingIOError:
                continue
            if not chunk:
                raise self._died(what)
            chunks.append(chunk)
            left -= len(chunk)
            stage = "middle"
        return b"".join(chunks)

    def _write_all(self, data: bytes, watch: Watch, what: str) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._req_w, select.POLLOUT, watch, what, "input")
            try:
                view = view[os.write(self._req_w, view[:PIPE_BYTES]):]
            except BlockingIOError:
                continue
            except OSError:  # EPIPE: the job closed its input, or ended
                raise self._died(what) from None

    def _wait(self, fd: int, event: int, watch: Watch, what: str, stage: str) -> None:
        """Return when fd is ready; kill the job and raise when the call is past a bound."""
        poller = select.poll()
        poller.register(fd, event)
        while True:
            wait = watch.wait_s()
            started = time.monotonic()
            if poller.poll(max(wait, 0.005) * 1000):
                return
            self.clock.note_wait(wait, time.monotonic() - started)
            bound = watch.over()
            if bound:
                raise self._over(bound, watch, what, stage)

    def _over(self, bound: str, watch: Watch, what: str, stage: str) -> GraderError:
        counted, wall, limit = watch.counted_s(), watch.wall_s(), _secs(watch.budget_s)
        self._kill()
        if bound == "backstop":
            self.dead_reason = f"the machine gave your code too little CPU time while {what}"
            return InfrastructureFault(
                f"the sandbox was starved of CPU while {what}: in {wall:.0f} s it ran or slept "
                f"for only {counted:.1f} s of its {limit} s. The machine is at fault, not the "
                "submission: grade it again")
        self.dead_reason = f"your code was stopped after it ran or slept for {limit} s while {what}"
        text = {
            "input": f"your code stopped reading its input: it ran or slept for more than {limit} s "
                     f"while {what} without taking the arguments",
            "answer": f"your code ran or slept for more than {limit} s, past its time limit while {what}",
            "middle": f"your code began its answer, then ran or slept for more than {limit} s "
                      f"without finishing it while {what}",
        }[stage]
        return GradingTimeout(f"{text} (time spent waiting for a CPU is not counted); look for an "
                              "endless loop, a sleep or work that grows too fast")

    def _violation(self, what: str, detail: str) -> StudentCodeError:
        """The student's code wrote on the grader's channel: stop the job before it matters."""
        self._kill()
        self.dead_reason = f"your code wrote on the grader's channel while {what}"
        return StudentCodeError(
            f"your code wrote on the grader's channel while {what} ({detail}), so it was stopped; "
            "give results as return values, never by writing to the grader's file descriptors",
            kind="protocol")

    def _exit_status(self) -> int | None:
        """The job's exit status; None when it was still running after a grace (then killed)."""
        try:
            return self.proc.wait(timeout=EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            return None

    def _died(self, what: str) -> StudentCodeError:
        """Explain, from the kernel's accounting and the wait status, why the channel ended."""
        status = self._exit_status()
        usage = self.cgroup.usage() if self.cgroup else Usage()
        lim = self.limits
        if usage.oom_kills:
            kind, reason = "memory", (f"your code ran out of memory while {what} (the limit is "
                                      f"{lim.memory_mb} MB); look for a tensor far larger than needed")
        elif usage.pids_limit_hits:
            kind, reason = "processes", (f"your code started too many processes while {what} "
                                         f"(the limit is {lim.processes})")
        elif status is None:
            kind, reason = "protocol", (f"your code closed or replaced the grader's channel while "
                                        f"{what}, so it was stopped; leave the grader's file "
                                        "descriptors alone")
        elif status in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            kind, reason = "file_size", f"your code wrote a file over {lim.file_size_mb} MB"
        elif status in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL):
            kind, reason = "killed", f"your code was killed while {what} (CPU time or memory)"
        else:
            kind, reason = "exit", (f"your code ended its own process while {what} (exit status "
                                    f"{status}); do not call os._exit or exit in code that is graded")
        self.dead_reason = reason
        return StudentCodeError(reason, kind=kind)


def _secs(seconds: float) -> str:
    """Seconds for a message: 4, 2.5."""
    return f"{round(seconds, 1):g}"


@functools.cache
def _package_dirs() -> tuple[str, ...]:
    """The folders installed packages live in (site- or dist-packages) on this process's path."""
    return tuple(p for p in sys.path
                 if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p))


def _python_dirs() -> list[str]:
    dirs = {sys.base_prefix, sys.prefix, str(Path(os.path.realpath(sys.executable)).parent.parent)}
    return sorted(d for d in dirs if not d.startswith("/usr/"))


def rlimits(lim: Limits, layers: Layers) -> dict[str, tuple[int, int]]:
    """A job's resource limits, by the name of their RLIMIT_ constant: (soft, hard)."""
    cpu = int(lim.total_timeout_s * max(lim.cpus, 1)) + 5
    limits = {"RLIMIT_CORE": (0, 0), "RLIMIT_FSIZE": (lim.file_size_mb << 20,) * 2,
              "RLIMIT_CPU": (cpu, cpu + 5), "RLIMIT_NOFILE": (1024, 1024)}
    if not layers.cgroups:
        # Without a memory cgroup, the address-space limit is the only memory bound
        # (it breaks CUDA, which is why it is not used when the cgroup is there).
        # RLIMIT_NPROC is left alone: it counts all of the user's processes on a laptop.
        limits["RLIMIT_AS"] = ((lim.memory_mb + 4096) << 20,) * 2
    return limits


def _enter_job(procs_files: list[str], lim: Limits, layers: Layers) -> None:
    """Runs in the child between fork and exec: join the cgroup, set rlimits."""
    pid = str(os.getpid())
    for path in procs_files:
        with open(path, "w") as f:
            f.write(pid)
    for name, value in rlimits(lim, layers).items():
        resource.setrlimit(getattr(resource, name), value)
