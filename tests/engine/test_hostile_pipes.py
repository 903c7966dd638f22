"""Hostile use of the grader's own pipes: the trusted side is never blocked, fooled or flooded.

The student's code runs in the guest process, so it can read the guest's config (its
command line names the pipe fds), stop reading requests, hog the interpreter, write
frames of its own on the answer pipe, close or replace the fds, or flood its output.
Each case is graded end to end in the real sandbox and must end with its exact score,
within a deadline close to what the limits allow (the probe's calls have 4 s each), with
nothing left behind. A timer raises into the test should the grader block, so that on
code that hangs these tests fail instead of hanging the suite.
"""

from __future__ import annotations

import re
import resource
import signal
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from grader.errors import GradingTimeout, StudentCodeError
from grader.proxy import Connection, StudentProxy
from grader.sandbox.layers import probe
from grader.sandbox.leftovers import leftovers_after

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

# A call that keeps its CPU busy may take up to the wall-clock backstop (3 x 4 s + 5 s)
# on a loaded machine: time it waits for a CPU is not counted against it.
BUSY_DEADLINE_S = 3 * 4 + 5 + 6
# Its failure: the student's time limit, or (when the machine gave the job under a
# quarter of a CPU) the infrastructure's, which a service retries.
BUSY_TIMEOUT = r"ran or slept for more than 4 s|InfrastructureFault: the sandbox was starved"

# Every submission starts with this: the grader's fds, as the guest's config names them
# (or, should the config leave the command line, found among the process's pipes).
PRELUDE = '''
import fcntl, json, os, stat, sys, threading, time

def _grader_fds():
    try:
        config = json.loads(open("/proc/self/cmdline", "rb").read().split(b"\\0")[-2])
        return config["fd_in"], config["fd_out"]
    except (ValueError, KeyError, IndexError):
        pipes = {}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                    pipes[fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE] = fd
            except OSError:
                pass
        return pipes[os.O_RDONLY], pipes[os.O_WRONLY]

FD_IN, FD_OUT = _grader_fds()

def forged(value, seq=None):
    import struct
    from grader.guest.wire import Encoder
    meta = {} if seq is None else {"seq": seq}
    meta.update(v=Encoder().encode(value), blobs=[])
    header = json.dumps(meta, separators=(",", ":")).encode()
    return struct.pack("!IQ", len(header), 0) + header

def answer(x):
    return x * 2

def run():
    return "ok"

def echo(value):
    return value
'''


def assert_nothing_left() -> None:
    """No job cgroup, job folder or child process of this process is left (after a grace)."""
    found = leftovers_after()
    assert not found, f"left behind: {found}"


class Hung(BaseException):
    """The grader was still blocked past the test's hard deadline."""


@pytest.fixture
def hard_deadline() -> Iterator[Callable[[float], None]]:
    """`hard_deadline(s)`: from s seconds on, raise Hung into the test every second."""

    def fire(signum, frame):
        raise Hung("the grader was still blocked on the sandbox's pipes")

    def arm(seconds: float) -> None:
        signal.signal(signal.SIGALRM, fire)
        signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


@pytest.fixture
def graded(grade_hostile, hard_deadline, probe_assignment, write_submission):
    """Grade PRELUDE + source within deadline_s; return the result and the trusted CPU it cost."""

    def run(source: str, deadline_s: float):
        hard_deadline(deadline_s + 10)
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = grade_hostile(write_submission(PRELUDE + source), probe_assignment,
                               deadline_s=deadline_s)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return result, cpu

    return run


def _test(result, name: str):
    return next(t for t in result.tests if t.name.startswith(name))


# -- a guest that stops reading, or hogs its process ------------------------------------

# The guest's serve loop: its own module in a job forked warm, __main__ in a cold one.
GUEST = """
import sys as _sys
_guest = _sys.modules.get("grader.guest.serve") or _sys.modules["__main__"]
"""
STOP_READING = GUEST + """
_guest.read_frame = lambda fd: time.sleep(1000)  # the guest's loop never reads again
"""


def test_a_guest_that_stops_reading_requests_times_out_every_call(graded):
    result, _ = graded(STOP_READING, deadline_s=3 * 4 + 8)
    assert result.score == 0
    assert all(re.search(r"ran or slept for more than [\d.]+ s", t.message) for t in result.tests), \
        [t.message for t in result.tests]


def test_a_large_argument_to_a_guest_that_stopped_reading_is_not_waited_on(
        probe_assignment, write_submission, hard_deadline):
    """32 MB of argument do not fit in the pipe: the write itself is bounded by the call's time."""
    conn = Connection(write_submission(PRELUDE + STOP_READING), "module",
                      probe_assignment.limits, probe())
    hard_deadline(20)
    started = time.monotonic()
    try:
        with pytest.raises(GradingTimeout, match="stopped reading its input.*calling echo"):
            StudentProxy(conn).echo(np.zeros(4 << 20))
        assert time.monotonic() - started < 4 + 3
    finally:
        conn.close()
    assert_nothing_left()


def test_a_thread_holding_the_interpreter_lock_costs_only_its_call(graded):
    # sum() over a range runs in C without ever letting the lock go: the guest's own
    # loop cannot answer, read or write again.
    result, _ = graded("""
def run():
    threading.Thread(target=lambda: sum(range(10**15)), daemon=True).start()
    time.sleep(0.2)
    return "ok"
""", deadline_s=BUSY_DEADLINE_S)
    assert result.score == 2
    assert re.search(BUSY_TIMEOUT, _test(result, "run").message), _test(result, "run").message


# -- the guest's fds closed or replaced ---------------------------------------------------

def test_closing_the_grader_fds_ends_the_call_with_a_reason(graded):
    result, _ = graded("""
def run():
    os.close(FD_IN)
    os.close(FD_OUT)
    time.sleep(1000)
""", deadline_s=2 + 8)
    assert result.score == 2
    assert "closed or replaced the grader's channel" in _test(result, "run").message


def test_replacing_the_answer_fd_with_dev_null_ends_the_call(graded):
    result, _ = graded("""
def run():
    os.dup2(os.open(os.devnull, os.O_WRONLY), FD_OUT)
    return "ok"
""", deadline_s=4 + 8)
    assert result.score == 2
    message = _test(result, "run").message
    assert "closed or replaced the grader's channel" in message or "more than 4 s" in message


# -- frames the student's code wrote ------------------------------------------------------

def test_a_forged_answer_before_the_real_one_is_caught(graded):
    # written by a thread, finished before the function returns its own answer
    result, _ = graded("""
def run():
    t = threading.Thread(target=os.write, args=(FD_OUT, forged({"ok": True, "value": "ok"}, seq=0)))
    t.start()
    t.join()
    return "ok"
""", deadline_s=8)
    assert result.score == 2
    assert "wrote on the grader's channel while calling run" in _test(result, "run").message


def test_a_forged_frame_after_an_answer_fails_the_next_call_only(graded):
    # The guest's own writer is replaced: every answer after the load report is followed
    # by a copy of itself, once. The next call must not take the copy for its answer.
    result, _ = graded(GUEST + """
_real, _writes = _guest.write_all, []
def write_all(fd, data):
    _real(fd, data)
    _writes.append(len(data))
    if len(_writes) == 2:
        _real(fd, data)
_guest.write_all = write_all
""", deadline_s=8)
    assert result.score == 2
    failed = [t for t in result.tests if not t.passed]
    assert len(failed) == 1 and result.tests[0].passed
    assert "wrote on the grader's channel" in failed[0].message


def test_a_forged_frame_from_a_thread_during_another_call_is_caught(graded):
    result, _ = graded("""
def _forge():
    time.sleep(0.3)
    os.write(FD_OUT, forged({"ok": True, "value": [0, "x"]}))
def run():
    threading.Thread(target=_forge).start()
    return "ok"
def echo(value):
    time.sleep(2)
    return value
""", deadline_s=8)
    assert _test(result, "run").passed and not _test(result, "echo").passed
    assert "wrote on the grader's channel while calling echo" in _test(result, "echo").message
    assert result.score == 2


def test_a_frame_claiming_a_huge_length_then_stalling_times_out(graded):
    result, _ = graded("""
import struct
def run():
    os.write(FD_OUT, struct.pack("!IQ", (8 << 20) - 1, 16 << 20) + b'{"seq":')
    time.sleep(1000)
""", deadline_s=4 + 8)
    assert result.score == 2
    assert "began its answer" in _test(result, "run").message


def test_a_frame_claiming_more_than_the_limits_is_refused_at_once(graded):
    result, _ = graded("""
import struct
def run():
    os.write(FD_OUT, struct.pack("!IQ", 1 << 31, 1 << 40))
    time.sleep(1000)
""", deadline_s=6)
    assert result.score == 2
    assert "too large" in _test(result, "run").message


def test_an_unsolicited_frame_between_calls_never_shifts_later_answers(
        probe_assignment, write_submission, hard_deadline):
    conn = Connection(write_submission(PRELUDE + """
def _forge():
    time.sleep(0.2)
    os.write(FD_OUT, forged({"ok": True, "value": 0}, seq=3))
def run():
    threading.Thread(target=_forge).start()
    return "ok"
"""), "module", probe_assignment.limits, probe())
    student = StudentProxy(conn)
    hard_deadline(20)
    try:
        assert student.run() == "ok"
        time.sleep(1)  # the forged frame arrives while nothing is asked
        with pytest.raises(StudentCodeError, match="when nothing was asked") as caught:
            student.answer(1)
        assert caught.value.kind == "protocol"
        # a fresh sandbox, in step: each answer is its own call's
        assert [student.answer(n) for n in (21, 5)] == [42, 10]
        assert student.echo("x") == "x"
    finally:
        conn.close()
    assert_nothing_left()


# -- output floods --------------------------------------------------------------------------
#
# Before: the trusted side woke for nearly every write and copied every byte (1.1 s of
# its CPU for 3 s of one-byte writes, 2.2 s for 3 s of 1 MiB writes). The grading alone
# costs about 0.2 s here; the bound leaves room for a loaded machine.
TRUSTED_CPU_S = 0.7


def test_a_flood_of_one_byte_writes_costs_the_trusted_side_little(graded):
    result, cpu = graded("""
def run():
    end = time.monotonic() + 3
    while time.monotonic() < end:
        for _ in range(1000):
            os.write(1, b"x")
    return "ok"
""", deadline_s=3 + 6)
    assert result.score == 3
    assert "output truncated" in result.log and len(result.log) < 8 * 1024 + 200
    assert cpu < TRUSTED_CPU_S, f"the flood cost the trusted process {cpu:.2f} s of CPU"


def test_a_flood_of_huge_writes_costs_the_trusted_side_little(graded):
    result, cpu = graded("""
def run():
    block = b"y" * (1 << 20)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        os.write(1, block)
    return "ok"
""", deadline_s=3 + 6)
    assert result.score == 3
    assert "output truncated" in result.log and len(result.log) < 8 * 1024 + 200
    assert cpu < TRUSTED_CPU_S, f"the flood cost the trusted process {cpu:.2f} s of CPU"


def test_a_flood_from_children_that_outlive_the_call_is_cheap_and_killed(graded):
    result, cpu = graded("""
import subprocess
FLOOD = "import os\\nwhile True:\\n    os.write(1, b'z')"
def run():
    for _ in range(4):
        subprocess.Popen([sys.executable, "-c", FLOOD], start_new_session=True)
    return "ok"
def echo(value):
    time.sleep(2.5)
    return value
""", deadline_s=2.5 + 6)
    assert result.score == 3
    assert "output truncated" in result.log
    assert cpu < TRUSTED_CPU_S, f"the flood cost the trusted process {cpu:.2f} s of CPU"
