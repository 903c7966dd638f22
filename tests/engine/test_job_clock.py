"""Limits count the job's own time: what it ran or slept, never what it waited for a CPU.

Under heavy load a correct submission still passes; a sleep or an endless loop still
stops when its own time is up; a frozen sandbox is the infrastructure's failure, not the
student's. The load is made here, by spinning processes each in a session of its own
(so each is its own scheduling group, as other users' work would be), and each ends by
itself after at most SPIN_MAX_S, whatever happens to the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.engine import grade
from grader.errors import GradingTimeout, InfrastructureFault
from grader.proxy import Connection, StudentProxy
from grader.sandbox import clock
from grader.sandbox.clock import JobClock, Watch
from grader.sandbox.layers import probe
from grader.sandbox.leftovers import leftovers

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

SPIN_MAX_S = 40.0
SPIN = ("import sys, time\nend = time.monotonic() + float(sys.argv[1])\n"
        "while time.monotonic() < end:\n    pass\n")
# A CPU-bound call may take up to the wall-clock backstop (3 x 4 s + 5 s) on a loaded
# machine; past it the failure is the infrastructure's (a service retries those).
BUSY_DEADLINE_S = 3 * 4 + 5 + 6
BUSY_TIMEOUT = r"ran or slept for more than 4 s|InfrastructureFault: the sandbox was starved"


@contextlib.contextmanager
def spinners(n: int, *, cpu: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """n processes that spin (on one CPU, if given) until the block ends or SPIN_MAX_S."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    procs = [subprocess.Popen([sys.executable, "-c", SPIN, str(SPIN_MAX_S)], start_new_session=True,
                              preexec_fn=pin) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _test(result, name: str):
    return next(t for t in result.tests if t.name.startswith(name))


def _nothing_left(children: bool = True) -> None:
    for _ in range(50):
        if not leftovers(children=children):
            return
        time.sleep(0.05)
    raise AssertionError(f"left behind: {leftovers(children=children)}")


BURN = """
import os, time
def answer(x):
    return x * 2
def run():
    os.sched_setaffinity(0, {1})  # onto the loaded CPU
    end = time.process_time() + 0.6  # 0.6 s of CPU: well under the 4 s limit
    while time.process_time() < end:
        pass
    return "ok"
def echo(value):
    time.sleep(1000)
"""


@pytest.mark.parametrize("sources", [("pressure", "schedstat"), ("pressure",), ("schedstat",)])
def test_a_cpu_bound_call_under_heavy_load_is_not_timed_out(sources, monkeypatch, probe_assignment,
                                                             write_submission):
    """8 spinners on the call's CPU: its wall time passes its limit, its own time does not.

    The load is on CPU 1 only (the call moves itself there), so that its share of that CPU
    is known (at most a ninth) whatever else the machine does, and CPU 0 stays free.
    """
    monkeypatch.setattr(clock, "STALL_SOURCES", sources)
    sub = write_submission(BURN)
    with spinners(8, cpu=1):
        started = time.monotonic()
        result = grade(sub, probe_assignment, mode="service", seed=7)
        took = time.monotonic() - started
        _nothing_left(children=False)
    _nothing_left()
    run, echo = _test(result, "run"), _test(result, "echo")
    assert run.passed, run.message
    assert run.duration_s > 4, f"the load was too light to test anything ({run.duration_s} s)"
    # Sleeping is the job's own time, load or not: still stopped after 4 s.
    assert not echo.passed and "ran or slept for more than 4 s" in echo.message, echo.message
    assert "waiting for a CPU is not counted" in echo.message
    assert echo.duration_s < 4 + 2
    assert result.score == 2
    assert took < 3 * 4 + 5 + 4 + 6


def test_a_sleep_times_out_promptly(grade_hostile, probe_assignment, write_submission):
    sub = write_submission("import time\ndef answer(x):\n    return 2 * x\n"
                           "def run():\n    time.sleep(1000)\ndef echo(v):\n    return v\n")
    result = grade_hostile(sub, probe_assignment, deadline_s=4 + 5)
    assert result.score == 2
    message = _test(result, "run").message
    assert re.search(r"ran or slept for more than [\d.]+ s, past its time limit while calling run",
                     message), message


def test_an_endless_loop_times_out_on_its_own_time(grade_hostile, probe_assignment, write_submission):
    sub = write_submission("def answer(x):\n    return 2 * x\n"
                           "def run():\n    while True:\n        pass\ndef echo(v):\n    return v\n")
    result = grade_hostile(sub, probe_assignment, deadline_s=BUSY_DEADLINE_S)
    assert result.score == 2
    assert re.search(BUSY_TIMEOUT, _test(result, "run").message), _test(result, "run").message


FORK_SPIN = """
import os
def run():
    for _ in range(3):
        if os.fork() == 0:
            while True:
                pass
    while True:
        pass
"""


def test_processes_queueing_behind_each_other_earn_no_time(probe_assignment, write_submission):
    """Four spinning processes in one job wait for each other (and for its CPU share) all
    the time: the job is charged its CPU over its share, so it stops after 2 s of CPU."""
    limits = dataclasses.replace(probe_assignment.limits, call_timeout_s=2.0)
    conn = Connection(write_submission(FORK_SPIN), "module", limits, probe())
    try:
        with pytest.raises((GradingTimeout, InfrastructureFault)):
            StudentProxy(conn).run()
        used = conn.sandbox.cgroup.cpu_s()
        assert used < 2 + 1, f"the job used {used:.1f} s of CPU on a 2 s limit"
    finally:
        conn.close()
    _nothing_left()


def test_a_frozen_sandbox_is_the_infrastructures_fault(probe_assignment, write_submission):
    limits = dataclasses.replace(probe_assignment.limits, call_timeout_s=1.0)
    conn = Connection(write_submission("import time\ndef answer(x):\n    return 2 * x\n"
                                       "def run():\n    time.sleep(0.3)\n    return 'ok'\n"),
                      "module", limits, probe())
    student = StudentProxy(conn)
    try:
        assert student.answer(1) == 2
        pending = student.run.begin()
        (conn.sandbox.cgroup.dirs["unified"] / "cgroup.freeze").write_text("1")
        started = time.monotonic()
        with pytest.raises(InfrastructureFault, match="starved"):
            pending.result()
        assert 3 * 1 + 5 - 0.5 < time.monotonic() - started < 3 * 1 + 5 + 3
        assert student.answer(21) == 42  # a fresh sandbox
    finally:
        conn.close()
    _nothing_left()


def test_the_clock_without_a_cgroup_leaves_out_waiting_for_a_cpu(tmp_path: Path):
    """Where there is no job cgroup (a laptop), the run delay of the process tree is read."""
    with spinners(3, cpu=0):
        target = subprocess.Popen([sys.executable, "-c", SPIN, "3"], start_new_session=True,
                                  preexec_fn=lambda: os.sched_setaffinity(0, {0}))
        try:
            job = JobClock(target.pid, None, cpus=1.0)
            watch = Watch(job, budget_s=100.0)
            time.sleep(2.5)
            counted, wall, cpu = watch.counted_s(), watch.wall_s(), clock.proc_cpu_s(target.pid)
        finally:
            target.kill()
            target.wait()
    # four spinners on one CPU: the target ran about a quarter of the time
    assert cpu < 0.5 * wall, (cpu, wall)
    assert abs(counted - cpu) < 0.35, (counted, cpu, wall)


def test_a_calls_cpu_time_starts_at_its_own_send_not_at_an_older_sample():
    """A call's start may reuse a clock sample up to MARK_FRESH_S old; its CPU counter is
    read at the send all the same, so the CPU of what ran before (here: the whole load)
    is never charged to it. Timing compares calls of a few milliseconds, each on its own."""
    from grader.sandbox.limits import Limits
    from grader.sandbox.process import Sandbox

    box = Sandbox(b"def f():\n    return 1\n", "module", limits=Limits(), layers=probe())
    try:
        box.start()
        loaded_cpu = box.cpu_s()
        assert loaded_cpu > 0.005, f"the load used only {loaded_cpu} s of CPU"
        box.clock._cpu, box.clock._at = 0.0, time.monotonic()  # a fresh-looking, stale sample
        sent = box.send({"op": "call", "path": ["f"], "args": []}, "calling f")
        answer, timing = box.receive(sent, time.monotonic() + 10, "calling f")
        assert answer.get("ok"), answer
        assert timing.cpu_s < loaded_cpu / 2, (timing.cpu_s, loaded_cpu)
    finally:
        box.close()


WORK_THEN_REST = """
import os, sys, time
req, resp = int(sys.argv[1]), int(sys.argv[2])
def work(n):  # a fixed amount (reading a CPU clock would charge the CPU so far)
    for _ in range(n):
        pass
while os.read(req, 1) == b"c":
    work(100_000)          # the call (a few ms)
    os.write(resp, b"x")   # its answer ...
    work(10_000)           # ... and a moment's more work before it blocks again
"""


def test_a_short_calls_cpu_is_all_charged_before_it_is_read():
    """The kernel charges a running task's CPU to its cgroup only at a tick or when it
    leaves the CPU. A job that answers and works on for a moment had none of a short call
    charged when the answer was read (most tries read 0 ms); timing takes the least of a
    few such calls, so one such reading made an honest student's ratio 10x-300000x. The
    clock waits for the job's tasks to rest before the counter is read."""
    from grader.sandbox.cgroups import JobCgroup

    layers = probe()
    cgroup = JobCgroup.create(layers.cgroup_version, memory_bytes=512 << 20, pids=16, cpus=1.0)
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    procs = cgroup.procs_files()

    def join() -> None:
        for path in procs:
            Path(path).write_text(str(os.getpid()))

    child = subprocess.Popen([sys.executable, "-c", WORK_THEN_REST, str(req_r), str(resp_w)],
                             pass_fds=(req_r, resp_w), preexec_fn=join)
    job_clock = JobClock(child.pid, cgroup, 1.0)
    try:
        charged = []
        for _ in range(60):
            job_clock.sample()  # as a call's send does, now and then
            before = cgroup.cpu_s()
            os.write(req_w, b"c")
            assert os.read(resp_r, 1) == b"x"
            job_clock.settle()
            charged.append(cgroup.cpu_s() - before)
            time.sleep(0.002)
        charged.sort()
        assert charged[0] > 0.5 * charged[30] > 0.0005, [round(c * 1e3, 2) for c in charged]
    finally:
        os.write(req_w, b"q")
        child.wait(timeout=10)
        job_clock.close()
        cgroup.destroy()
        for fd in (req_r, req_w, resp_r, resp_w):
            os.close(fd)
