"""One sandboxed process that holds a submission and answers calls over a pipe.

The trusted side starts it, reads the load report, sends requests, and kills the
whole job (every process in its cgroup and pid namespace) when done or when a
limit is hit. Time is measured here, outside: wall clock around each call and the
cgroup's CPU accounting. What the job prints goes to a capped log, never parsed.
"""

from __future__ import annotations

import compileall
import functools
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grader.guest
from grader.errors import GradingTimeout, StudentCodeError
from grader.guest.wire import PREFIX, WireError, decode_body, encode_frame, split_prefix
from grader.guest.wire import Limits as WireLimits
from grader.sandbox import seccomp
from grader.sandbox.bwrap import bwrap_argv
from grader.sandbox.cgroups import JobCgroup, Usage, job_prefix
from grader.sandbox.layers import Layers
from grader.sandbox.limits import Limits

GUEST_DIR = Path(grader.guest.__file__).parent
JOBS_ROOT = Path(tempfile.gettempdir()) / "torchgrade-jobs"
NOBODY = 65534
_BPF: dict[bool, bytes] = {}


def jobs_root(create: bool = True) -> Path | None:
    """The folder job folders are made under (None when it does not exist and create is off)."""
    if create:
        JOBS_ROOT.mkdir(mode=0o711, exist_ok=True)
    return JOBS_ROOT if JOBS_ROOT.is_dir() else None


@dataclass
class CallTiming:
    """Measured from outside the sandbox for one call."""

    wall_s: float
    cpu_s: float


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


def _seccomp_fd(allow_netlink: bool) -> int:
    if allow_netlink not in _BPF:
        with os.fdopen(seccomp.bpf_fd(allow_netlink=allow_netlink), "rb") as f:
            _BPF[allow_netlink] = f.read()
    fd = os.memfd_create("torchgrade-seccomp", 0)
    os.write(fd, _BPF[allow_netlink])
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _drain(fd: int, capture: Capture) -> None:
    # Keep reading past the cap so that a flood of output never blocks the job on a
    # full pipe in a way that would look like our timeout rather than its own.
    with os.fdopen(fd, "rb", buffering=0) as f:
        while chunk := f.read(65536):
            room = capture.cap - len(capture.data)
            capture.data += chunk[:max(room, 0)]
            capture.dropped += max(len(chunk) - max(room, 0), 0)


class Sandbox:
    """A started submission process; use as a context manager."""

    def __init__(self, submission: Path, kind: str, *, limits: Limits, layers: Layers,
                 forbidden_modules: dict[str, str] | None = None, gpu: bool = False) -> None:
        self.submission = submission
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
        self.dead_reason = ""
        self.wire_limits = WireLimits(max_blob_bytes=limits.return_mb << 20)
        self._drainer: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _make_job_dir(self) -> Path:
        jobs_root()
        job = Path(tempfile.mkdtemp(prefix=job_prefix(), dir=JOBS_ROOT))
        name = "submission.ipynb" if self.kind == "notebook" else "submission.py"
        shutil.copyfile(self.submission, job / name)
        if self.layers.uid_drop:
            # Readable by the job user alone, not by every user of the host.
            for path, mode in ((job / name, 0o400), (job, 0o500)):
                os.chown(path, NOBODY, NOBODY)
                path.chmod(mode)
        else:
            (job / name).chmod(0o644)
            job.chmod(0o755)
        return job

    def start(self) -> dict[str, Any]:
        """Start the job and wait for its load report (what the submission defines)."""
        self.spawn()
        return self.wait_ready()

    def wait_ready(self) -> dict[str, Any]:
        """Read the load report, once; later calls return it again."""
        if not self.ready:
            self.ready = True
            self.report = self._read_response(time.monotonic() + self.limits.load_timeout_s,
                                              "loading your submission")
        return self.report

    def spawn(self) -> None:
        """Start the job without waiting for it to load.

        Call this from a thread that outlives the job: bubblewrap's --die-with-parent
        kills the job when the thread that started it ends.
        """
        _compile_guest()
        self.job_dir = self._make_job_dir()
        lim = self.limits
        if self.layers.cgroups:
            self.cgroup = JobCgroup.create(self.layers.cgroup_version,
                                           memory_bytes=lim.memory_mb << 20,
                                           pids=lim.processes, cpus=lim.cpus)
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        keep = [req_r, resp_w]
        use_seccomp = self.layers.seccomp and self.layers.namespaces
        seccomp_fd = _seccomp_fd(self.kind == "notebook") if use_seccomp else None
        if seccomp_fd is not None:
            keep.append(seccomp_fd)
        inside = "/job" if self.layers.namespaces else str(self.job_dir)
        config = {"kind": self.kind, "path": f"{inside}/submission."
                  + ("ipynb" if self.kind == "notebook" else "py"),
                  "fd_in": req_r, "fd_out": resp_w, "forbidden_modules": self.forbidden_modules,
                  "max_blob_bytes": lim.return_mb << 20, "cell_timeout": lim.load_timeout_s}
        argv, env = self._argv(json.dumps(config), seccomp_fd)
        procs_files = self.cgroup.procs_files() if self.cgroup else []
        try:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                pass_fds=keep, start_new_session=True, cwd=str(self.job_dir),
                preexec_fn=lambda: _enter_job(procs_files, lim, self.layers),
            )
        finally:
            for fd in keep + [out_w]:
                os.close(fd)
        self._drainer = threading.Thread(target=_drain, args=(out_r, self.capture), daemon=True)
        self._drainer.start()
        self.started_at = time.monotonic()

    def _argv(self, config: str, seccomp_fd: int | None) -> tuple[list[str], dict[str, str]]:
        threads = str(max(1, int(self.limits.cpus)))
        env = {"HOME": "/tmp", "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg"}
        for name in ("CUDA_VISIBLE_DEVICES", "TORCHGRADE_GPU_MEMORY_FRACTION"):
            if self.gpu and name in os.environ:
                env[name] = os.environ[name]
        python = os.path.realpath(sys.executable)
        # -S: no site module, so none of the host's .pth files run in the job (an editable
        # install's finder, certificate hooks: about 35 ms of start-up here, and not the
        # job's business); the package folders go on PYTHONPATH instead.
        guest_cmd = [python, "-S", "-s", "-B", "-m", "grader.guest.serve", config]
        if not self.layers.namespaces:
            env["PYTHONPATH"] = os.pathsep.join([str(GUEST_DIR.parent.parent), *_package_dirs()])
            env["TMPDIR"] = str(self.job_dir)
            return guest_cmd, env
        env["PYTHONPATH"] = os.pathsep.join(["/opt/torchgrade", *_package_dirs()])
        argv = bwrap_argv(job_dir=self.job_dir, guest_dir=GUEST_DIR, env=env,
                          tmp_mb=self.limits.tmp_mb, seccomp_fd=seccomp_fd, gpu=self.gpu,
                          python_dirs=_python_dirs(), drop_to=NOBODY if self.layers.uid_drop else None)
        return argv + guest_cmd, {}

    def close(self) -> Usage:
        """Kill the whole job, reap it, and return the kernel's accounting."""
        usage = Usage()
        if self.proc is not None:
            self._kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if self.cgroup is not None:
                usage = self.cgroup.usage()
                self.cgroup.destroy()
                self.cgroup = None
            for fd in (self._req_w, self._resp_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self._drainer is not None:
                self._drainer.join(timeout=2)
            self.proc = None
        if self.job_dir is not None:
            shutil.rmtree(self.job_dir, ignore_errors=True)
            self.job_dir = None
        return usage

    def _kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def alive(self) -> bool:
        """Whether the job's main process is still running."""
        return self.proc is not None and self.proc.poll() is None and not self.dead_reason

    # -- calls -----------------------------------------------------------------------

    def cpu_s(self) -> float:
        """CPU seconds the whole job has used so far (kernel accounting)."""
        if self.cgroup is not None:
            return self.cgroup.usage().cpu_s
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) \
                / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def send(self, message: dict[str, Any], what: str) -> tuple[float, float]:
        """Send one request without waiting for its answer; the token is for `receive`."""
        if not self.alive:
            raise StudentCodeError(self.dead_reason or "your code's process is no longer running",
                                   kind="dead")
        frame = encode_frame(message)
        cpu0, t0 = self.cpu_s(), time.perf_counter()
        try:
            _write_all(self._req_w, frame)
        except (BrokenPipeError, OSError):
            raise self._died(what) from None
        return cpu0, t0

    def receive(self, sent: tuple[float, float], deadline: float, what: str,
                from_ref=None) -> tuple[dict[str, Any], CallTiming]:
        """The answer to the request `send` returned `sent` for, by a monotonic deadline."""
        cpu0, t0 = sent
        response = self._read_response(deadline, what, from_ref)
        timing = CallTiming(time.perf_counter() - t0, self.cpu_s() - cpu0)
        return response, timing

    def _read_response(self, deadline: float, what: str, from_ref=None) -> dict[str, Any]:
        prefix = self._read_exact(PREFIX.size, deadline, what)
        try:
            header_len, blob_len = split_prefix(prefix, self.wire_limits)
        except WireError as exc:
            self.dead_reason = f"while {what}: {exc}"
            self._kill()
            raise StudentCodeError(str(exc), kind="too_large") from None
        header = self._read_exact(header_len, deadline, what)
        blob = self._read_exact(blob_len, deadline, what) if blob_len else b""
        try:
            value = decode_body(header, blob, self.wire_limits, from_ref)
        except WireError as exc:
            raise StudentCodeError(f"what your code returned could not be read: {exc}",
                                   kind="bad_value") from None
        if not isinstance(value, dict):
            raise StudentCodeError("malformed answer from your code's process", kind="bad_value")
        return value

    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        chunks, left = [], n
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.dead_reason = f"your code was stopped after it ran too long while {what}"
                self._kill()
                raise GradingTimeout(
                    f"your code ran longer than the time limit while {what}; "
                    "look for an endless loop or work that grows too fast")
            ready, _, _ = select.select([self._resp_r], [], [], min(remaining, 1.0))
            if not ready:
                continue
            chunk = os.read(self._resp_r, min(left, 1 << 20))
            if not chunk:
                raise self._died(what)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _died(self, what: str) -> StudentCodeError:
        """Explain, from the kernel's accounting and the wait status, why the job ended."""
        try:
            status = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            status = self.proc.wait()
        usage = self.cgroup.usage() if self.cgroup else Usage()
        lim = self.limits
        if usage.oom_kills:
            kind, reason = "memory", (f"your code ran out of memory while {what} (the limit is "
                                      f"{lim.memory_mb} MB); look for a tensor far larger than needed")
        elif usage.pids_limit_hits:
            kind, reason = "processes", (f"your code started too many processes while {what} "
                                         f"(the limit is {lim.processes})")
        elif status in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            kind, reason = "file_size", f"your code wrote a file over {lim.file_size_mb} MB"
        elif status in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL):
            kind, reason = "killed", f"your code was killed while {what} (CPU time or memory)"
        else:
            kind, reason = "exit", (f"your code ended its own process while {what} (exit status "
                                    f"{status}); do not call os._exit or exit in code that is graded")
        self.dead_reason = reason
        return StudentCodeError(reason, kind=kind)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@functools.cache
def _package_dirs() -> tuple[str, ...]:
    """The folders installed packages live in (site- or dist-packages) on this process's path."""
    return tuple(p for p in sys.path
                 if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p))


def _python_dirs() -> list[str]:
    dirs = {sys.base_prefix, sys.prefix, str(Path(os.path.realpath(sys.executable)).parent.parent)}
    return sorted(d for d in dirs if not d.startswith("/usr/"))


def _enter_job(procs_files: list[str], lim: Limits, layers: Layers) -> None:
    """Runs in the child between fork and exec: join the cgroup, set rlimits."""
    pid = str(os.getpid())
    for path in procs_files:
        with open(path, "w") as f:
            f.write(pid)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_size_mb << 20,) * 2)
    cpu = int(lim.total_timeout_s * max(lim.cpus, 1)) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    if not layers.cgroups:
        # Without a memory cgroup, the address-space limit is the only memory bound
        # (it breaks CUDA, which is why it is not used when the cgroup is there).
        # RLIMIT_NPROC is left alone: it counts all of the user's processes on a laptop.
        resource.setrlimit(resource.RLIMIT_AS, ((lim.memory_mb + 4096) << 20,) * 2)
