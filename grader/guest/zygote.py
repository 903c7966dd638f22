"""Inside the sandbox: the fork server (zygote) that every warm job is forked from.

Run as `python -m grader.guest.zygote CONFIG_JSON` inside bubblewrap by the trusted side
(grader.sandbox.zygote). It imports what jobs need (torch, numpy, IPython, the guest)
with one thread and no student code, says it is ready, then forks one job per request
on its control socket. It never reads a submission, a test or a seed: a request holds
the job's limits, uid and file descriptors, and the job reads its own submission from
the sealed memfd it was given, after it has left the fork server's namespaces.

Each job is three processes: a monitor (root, outside the job's pid namespace) that
reports the job's pid and exit status on the job's own status socket and kills the job
when the trusted side goes away; the job's init (pid 1, the job's uid) that reaps; and
the guest, which loads the submission and serves calls exactly as a cold job does.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

MAX_REQUEST = 1 << 20
MAX_FDS = 32


def preload(names: list[str]) -> list[str]:
    """Import each module that imports cleanly; return the ones that did."""
    done = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # a module missing here: jobs import it themselves, cold
            continue
        done.append(name)
    return done


def warm_notebook_shell() -> None:
    """Import what the in-process kernel uses, so that a notebook job starts warm."""
    import grader.guest.kernel  # noqa: F401


def thread_count() -> int:
    """Threads of this process (the kernel's count: native threads too)."""
    return len(os.listdir("/proc/self/task"))


def main(argv: list[str]) -> int:
    """Preload, report ready on the control socket, then fork a job per request until EOF."""
    config = json.loads(argv[1])
    control = socket.socket(fileno=config["control_fd"])
    import grader.guest.serve  # noqa: F401  (the guest itself, and the wire)

    environ = dict(os.environ)
    preloaded = preload(config.get("preload", []))
    warm_notebook_shell()
    os.environ.clear()  # what the imports set (TORCHINDUCTOR_CACHE_DIR) is not the job's
    os.environ.update(environ)
    # What the imports made lives for the zygote's life: collect once, then freeze it out
    # of the collector's sight (gc.freeze, Python 3.7), so that a full collection in a job
    # (one the student's code asks for, say) does not walk the zygote's objects and copy
    # the pages their gc headers are on. The reference solutions gained nothing measurable
    # from it (05: same job CPU and memory peak); it bounds the case that would.
    gc.collect()
    gc.freeze()
    forbidden = set(config.get("forbidden", ()))
    leaked = sorted({m.partition(".")[0] for m in sys.modules} & forbidden)
    ready = {"ready": not leaked, "preloaded": preloaded, "threads": thread_count(),
             "leaked": leaked, "pid": os.getpid()}
    sys.stdout.flush()
    sys.stderr.flush()
    control.send(json.dumps(ready).encode())
    if leaked:
        return 1
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_REQUEST, MAX_FDS)
        except InterruptedError:
            continue
        if not message:
            return 0  # the trusted side is gone: so are we
        request = json.loads(message)
        named = dict(zip(request["fds"], fds, strict=False))
        try:
            pid = os.fork()
        except OSError as exc:
            _say(named.get("status"), f"error the fork server could not fork: {exc}")
            pid = -1
        if pid == 0:
            _monitor(control, request, named)  # never returns
        for fd in fds:
            os.close(fd)


def _say(fd: int | None, line: str) -> None:
    if fd is not None:
        try:
            os.write(fd, (line + "\n").encode())
        except OSError:
            pass


def _monitor(control: socket.socket, request: dict[str, Any], fds: dict[str, int]) -> None:
    """The job's first process: join its cgroup and namespaces, start its init, report on it."""
    status = fds["status"]
    try:
        from grader.guest import isolate

        control.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        isolate.join_cgroup([fd for name, fd in fds.items() if name.startswith("cgroup")])
        if request["namespaces"]:
            isolate.enter_namespaces()
        child = os.fork()
        if child == 0:
            _init(request, fds)  # never returns
        _say(status, f"pid {child}")
        for name, fd in fds.items():
            if name != "status" and not name.startswith("cgroup"):
                os.close(fd)
        pidfd = os.pidfd_open(child)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(status, select.POLLIN | select.POLLHUP)
        while True:
            events = dict(poller.poll())
            if pidfd in events:
                break
            if status in events:  # the trusted side closed its end: it is gone
                os.kill(child, signal.SIGKILL)
                break
        _, wait_status = os.waitpid(child, 0)
        _say(status, f"exit {os.waitstatus_to_exitcode(wait_status)}")
        os._exit(0)
    except BaseException as exc:
        _say(status, f"error the job could not be set up: {type(exc).__name__}: {exc}")
        os._exit(1)


def _init(request: dict[str, Any], fds: dict[str, int]) -> None:
    """Pid 1 of the job: make its file system, drop to its uid, start the guest, reap."""
    try:
        from grader.guest import isolate

        os.setsid()  # no controlling terminal; the job's process group
        os.close(fds.pop("status"))
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(fds["out"], 1)  # from here on, what goes wrong is in the job's own output
        os.dup2(fds["out"], 2)
        os.close(fds.pop("out"))
        if request["namespaces"]:
            with os.fdopen(fds.pop("submission"), "rb") as f:
                data = f.read()
            isolate.make_filesystem(request["job_dir"], {request["file_name"]: data},
                                    request["tmp_bytes"])
        isolate.set_limits(request["rlimits"])
        bpf = b""
        if "seccomp" in fds:
            with os.fdopen(fds.pop("seccomp"), "rb") as f:
                bpf = f.read()
        isolate.drop_privileges(request.get("uid"))
        isolate.prctl(isolate.PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the uid change
        if bpf:
            isolate.load_seccomp(bpf)
        guest = os.fork()
        if guest == 0:
            _guest(request, fds)  # never returns
        os.close(fds["req"])
        os.close(fds["resp"])
        while True:
            pid, wait_status = os.wait()
            if pid == guest:
                code = os.waitstatus_to_exitcode(wait_status)
                os._exit(code if code >= 0 else 128 - code)
    except BaseException as exc:
        try:
            import traceback

            where = traceback.extract_tb(exc.__traceback__)[-1]
            os.write(2, f"the job could not be set up: {type(exc).__name__}: {exc} "
                        f"(at {where.name}, line {where.lineno})\n".encode())
        finally:
            os._exit(125)


def _guest(request: dict[str, Any], fds: dict[str, int]) -> None:
    """The job's guest: fresh seeds, then load and serve the submission as a cold job would."""
    code = 1
    try:
        from grader.guest import isolate

        isolate.prctl(isolate.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolate.prctl(isolate.PR_SET_DUMPABLE, 1)  # its own /proc/self, as after an exec
        os.chdir(request["cwd"])
        reseed()
        from grader.guest.serve import run

        config = dict(request["config"], fd_in=fds["req"], fd_out=fds["resp"])
        code = run(config)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def reseed() -> None:
    """Seed the random generators afresh: every job forked from one process starts equal."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
