"""Warm jobs (issue 10): forked from a zygote, each one still a sandbox of its own.

Two jobs run at once, each loaded and waiting, and one tries every way into the other
and into the zygote it was forked from: its memory through /proc, signals, files in
/tmp and /dev/shm, System V shared memory, an abstract unix socket, the zygote's
modules. Then the zygote itself is killed, or frozen, and grading goes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from grader.engine import grade
from grader.notebooks import module_to_notebook
from grader.sandbox import process, zygote
from grader.sandbox.layers import probe
from grader.sandbox.limits import Limits
from grader.sandbox.process import JOB_UIDS, Sandbox

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

JOB = r'''
import ctypes, os, signal, socket, sys

libc = ctypes.CDLL(None, use_errno=True)

def ids():
    return {"uid": os.getuid(), "pid": os.getpid(),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}

def plant(marker):
    """Leave a mark everywhere another job could look."""
    with open("/tmp/mark", "w") as f:
        f.write(marker)
    with open("/dev/shm/mark", "w") as f:
        f.write(marker)
    shm = libc.shmget(0x7467, 4096, 0o1666)   # IPC_CREAT | 0666
    global listener
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0torchgrade-" + marker)
    listener.listen(1)
    return shm

def look(marker, pids):
    """Try every way into another job (or process) by what the trusted side told us."""
    found = {}
    for name in ("/tmp/mark", "/dev/shm/mark"):
        try:
            found[name] = open(name).read()
        except OSError as exc:
            found[name] = exc.errno
    found["shm"] = libc.shmget(0x7467, 4096, 0o666)  # -1: no such segment here
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0torchgrade-" + marker)
        found["socket"] = "connected"
    except OSError as exc:
        found["socket"] = exc.errno
    for pid in pids:
        try:
            with open(f"/proc/{pid}/mem", "rb") as f:
                found[f"mem {pid}"] = len(f.read(16))
        except OSError as exc:
            found[f"mem {pid}"] = exc.errno
        try:
            os.kill(pid, signal.SIGKILL)
            found[f"kill {pid}"] = "sent"
        except OSError as exc:
            found[f"kill {pid}"] = exc.errno
    try:
        os.kill(-1, signal.SIGKILL)  # every process this job may signal, but itself
        found["kill -1"] = "sent"
    except OSError as exc:
        found["kill -1"] = exc.errno
    return found

def spoil():
    """Change what a later job would inherit, were it forked from us."""
    import torch, numpy
    import grader.guest.dispatch as dispatch
    torch.tensor = None
    numpy.add = None
    dispatch.Dispatcher.handle = lambda self, request: "spoiled"
    sys.modules["grader.guest.serve"].read_frame = None
    os.environ["SPOILED"] = "1"
    return "spoiled"

def healthy():
    import torch, numpy
    return [float(torch.tensor([1.0, 2.0]).sum()), int(numpy.add(1, 2)), "SPOILED" in os.environ]

def draws():
    import random, numpy, torch
    return [random.random(), float(numpy.random.rand()), float(torch.rand(1))]
'''


@pytest.fixture(autouse=True)
def _retry_at_once():
    """A zygote a test broke is not held against the next test's jobs."""
    yield
    zygote._FAILED.clear()


def _start(source: str = JOB, kind: str = "module") -> Sandbox:
    box = Sandbox(source.encode(), kind, limits=Limits(), layers=probe())
    box.start()
    return box


def _call(box: Sandbox, name: str, *args):
    sent = box.send({"op": "call", "path": [name], "args": list(args)}, f"calling {name}")
    answer, _ = box.receive(sent, time.monotonic() + 30, f"calling {name}")
    assert answer.get("ok"), answer
    return answer["value"]


@pytest.fixture
def two_jobs():
    a, b = _start(), _start()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_jobs_are_forked_warm_each_in_namespaces_of_its_own(two_jobs):
    a, b = two_jobs
    assert isinstance(a.proc, zygote.ForkedJob) and isinstance(b.proc, zygote.ForkedJob)
    assert a.zygote is b.zygote  # one zygote for the view, in this process
    ia, ib = _call(a, "ids"), _call(b, "ids")
    assert ia["uid"] != ib["uid"] and JOB_UIDS.start <= ia["uid"] < JOB_UIDS.stop
    # Each job is its own pid namespace: its init (1) and its guest (2), nothing else.
    assert ia["pids"] == [1, 2] and ib["pids"] == [1, 2]


def test_a_job_cannot_reach_another_running_job(two_jobs):
    a, b = two_jobs
    _call(b, "plant", "b-secret")
    found = _call(a, "look", "b-secret", [b.proc.pid, a.zygote.info["pid"], a.zygote.proc.pid])
    assert found["/tmp/mark"] == 2 and found["/dev/shm/mark"] == 2  # ENOENT: their own tmpfs
    assert found["shm"] == -1  # an ipc namespace of its own
    assert found["socket"] == 111  # ECONNREFUSED: abstract sockets live in the net namespace
    for pid in (b.proc.pid, a.zygote.info["pid"], a.zygote.proc.pid):
        assert found[f"mem {pid}"] == 2  # no such process in its /proc
        assert found[f"kill {pid}"] == 3  # ESRCH: not in its pid namespace
    assert b.alive and _call(b, "ids")["pids"] == [1, 2]
    assert a.zygote.alive


def test_a_job_cannot_alter_the_zygote(two_jobs):
    a, b = two_jobs
    before = a.zygote.info["pid"]
    assert _call(a, "spoil") == "spoiled"
    c = _start()
    try:
        assert _call(c, "healthy") == [3.0, 3, False]
        assert c.zygote is a.zygote and c.zygote.info["pid"] == before
    finally:
        c.close()


def test_jobs_forked_from_one_zygote_draw_different_random_numbers(two_jobs):
    a, b = two_jobs
    da, db = _call(a, "draws"), _call(b, "draws")
    assert all(x != y for x, y in zip(da, db, strict=True)), (da, db)


def test_a_dead_zygote_is_replaced_and_its_running_jobs_go_on(two_jobs, nothing_left):
    a, _ = two_jobs
    old = a.zygote
    os.kill(old.info["pid"], signal.SIGKILL)
    old.proc.wait(timeout=10)
    assert _call(a, "ids")["pids"] == [1, 2]  # a job does not depend on its zygote
    c = _start()
    try:
        assert isinstance(c.proc, zygote.ForkedJob)
        assert c.zygote is not old and c.zygote.info["pid"] != old.info["pid"]
        assert _call(c, "healthy") == [3.0, 3, False]
    finally:
        c.close()


def test_a_frozen_zygote_is_not_waited_on(monkeypatch):
    first = _start()
    server = first.zygote
    first.close()
    monkeypatch.setattr(zygote, "FORK_TIMEOUT_S", 1.0)
    os.kill(server.info["pid"], signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match="did not fork the job in time"):
            box = _start()
        try:
            assert isinstance(box.proc, subprocess.Popen)  # started cold instead
            assert time.monotonic() - started < 15
            assert _call(box, "healthy") == [3.0, 3, False]
        finally:
            box.close()
        assert server not in zygote.running()
    finally:
        os.kill(server.info["pid"], signal.SIGCONT)
        server.close()


def test_warm_notebook_records_its_outputs():
    source = module_to_notebook("x = 2\nprint('hello')\nx * 21\n")
    source.cells.append(nbformat.v4.new_code_cell("from IPython.display import display\n"
                                                  "display({'a': 1})\n1 / 0"))
    source.cells.append(nbformat.v4.new_code_cell("def f(y):\n    return x * y"))
    box = _start(nbformat.writes(source), kind="notebook")
    try:
        assert isinstance(box.proc, zygote.ForkedJob)
        report = box.report
        assert report["ready"] and "f" in report["names"] and "x" in report["names"]
        failing = len(source.cells) - 1
        assert report["cell_errors"] == [f"cell {failing} raised ZeroDivisionError: division by zero"]
        executed = nbformat.reads(report["notebook"].decode(), as_version=4)
        outputs = [o for c in executed.cells for o in c.get("outputs", [])]
        kinds = [o["output_type"] for o in outputs]
        assert "stream" in kinds and "execute_result" in kinds and "display_data" in kinds
        assert any(o.get("text") == "hello\n" for o in outputs)
        assert any(o.get("data", {}).get("text/plain") == "42" for o in outputs)
        assert any(o.get("ename") == "ZeroDivisionError" and o.get("traceback") for o in outputs)
        assert _call(box, "f", 5) == 10
    finally:
        box.close()


def test_warm_and_cold_grade_the_same(probe_assignment, monkeypatch):
    warm = grade(probe_assignment.solution, probe_assignment, mode="service", seed=3)
    monkeypatch.setenv(zygote.WARM_ENV, "0")
    cold = grade(probe_assignment.solution, probe_assignment, mode="service", seed=3)
    assert warm.score == cold.score == warm.max_score
    assert [t.name for t in warm.tests] == [t.name for t in cold.tests]


def test_a_warm_job_charges_a_fraction_of_a_cold_ones_memory(monkeypatch):
    """The pages a warm job shares with its zygote are not its own: the cgroup's peak says so.

    A job that imports torch: cold, the import is the job's (about 150 MiB here); warm, it
    was done in the zygote and the job charges only what it touches (about 20-40 MiB).
    """
    source = "import torch\n\ndef f(n):\n    return float(torch.ones(n).sum())\n"

    def peak_mb() -> float:
        box = _start(source)
        try:
            assert _call(box, "f", 1000) == 1000.0
        finally:
            usage = box.close()
        assert usage.cpu_s > 0, usage
        return usage.memory_peak_bytes / 2**20

    warm = peak_mb()
    monkeypatch.setenv(zygote.WARM_ENV, "0")
    cold = peak_mb()
    assert cold > 80, f"a cold job that imports torch charged only {cold:.0f} MiB"
    assert warm < cold / 2, f"warm {warm:.0f} MiB against cold {cold:.0f} MiB"


def test_a_grading_reports_its_jobs_memory_and_cpu(probe_assignment):
    usage = grade(probe_assignment.solution, probe_assignment, mode="service", seed=3).usage
    assert usage["memory_peak_mb"] > 1 and usage["cpu_s"] > 0, usage


def test_a_uid_held_by_another_process_is_not_drawn(monkeypatch):
    held = 12345
    code = ("import fcntl, os, sys, time; from grader.sandbox import process; "
            "fd = process._uid_lock_fd(); "
            f"fcntl.lockf(fd, fcntl.LOCK_EX, 1, {held}, os.SEEK_SET); print('held', flush=True); "
            "sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        draws = iter([held, held, 777])
        monkeypatch.setattr(process.secrets, "randbelow", lambda n: next(draws))
        uid = process.claim_uid()
        assert uid == JOB_UIDS.start + 777
        process.release_uid(uid)
    finally:
        other.stdin.close()
        other.wait(timeout=10)
