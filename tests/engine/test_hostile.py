"""Hostile submissions: each is contained, the grader is unharmed and the score is honest.

Each test grades a real submission in the real sandbox (bubblewrap, cgroups, seccomp)
and checks from the outside what the attack achieved.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from grader.engine import grade
from grader.proxy import Connection, StudentProxy
from grader.sandbox.layers import probe

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

HONEST = """
def answer(x):
    return x * 2
def echo(value):
    return value
"""


def _grade(path: Path, assignment, **kw):
    return grade(path, assignment, mode="service", seed=7, **kw)


def _call(path: Path, assignment, function: str):
    """Call one function of the submission in the real sandbox and return what came back."""
    conn = Connection(path, "module", assignment.limits, probe())
    try:
        return StudentProxy(conn).__getattr__(function)()
    finally:
        conn.close()


def _score(result, name: str) -> float:
    return next(t.points for t in result.tests if t.name.startswith(name))


def test_socket_to_loopback_reaches_nothing(probe_assignment, write_submission):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        end = time.time() + 8
        while time.time() < end:
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    sub = write_submission(HONEST + f"""
import socket
def run():
    errors = []
    for family, addr in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_INET, ("127.0.0.1", 6379)),
                         (socket.AF_INET, ("127.0.0.1", 5432)), (socket.AF_INET6, ("::1", {port}))):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(addr)
            errors.append("connected")
        except OSError as exc:
            errors.append(type(exc).__name__)
    return "ok" if "connected" in errors else "refused: " + ",".join(errors)
""")
    result = _grade(sub, probe_assignment)
    seen = _call(sub, probe_assignment, "run")
    thread.join()
    server.close()
    assert accepted == [], "a sandboxed job reached a server on the host's loopback"
    assert _score(result, "run") == 0
    assert seen == "refused: " + ",".join(["PermissionError"] * 4)


def test_hidden_tests_and_solution_are_not_there(probe_assignment, write_submission):
    hidden = probe_assignment.test_dir("hidden") / "test_hidden.py"
    sub = write_submission(HONEST + f"""
import os
def run():
    found = []
    for path in ({str(hidden)!r}, {str(probe_assignment.solution)!r}, "/etc/shadow", "/work", "/home"):
        if os.path.exists(path):
            found.append(path)
    listing = sorted(os.listdir("/job"))
    return "ok" if found or listing != ["submission.py"] else "nothing: " + repr(listing)
""")
    assert _score(_grade(sub, probe_assignment), "run") == 0
    assert _call(sub, probe_assignment, "run") == "nothing: ['submission.py']"


def test_grader_environment_is_not_visible(probe_assignment, write_submission, monkeypatch):
    monkeypatch.setenv("TORCHGRADE_TEST_SECRET", "hunter2")
    sub = write_submission(HONEST + """
import os
def run():
    return "ok" if any("hunter2" in v for v in os.environ.values()) else sorted(os.environ)
""")
    result = _grade(sub, probe_assignment)
    assert _score(result, "run") == 0
    assert "hunter2" not in result.to_json()
    assert _call(sub, probe_assignment, "run") == sorted(
        ["HOME", "PATH", "PWD", "LANG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONDONTWRITEBYTECODE",
         "PYTHONNOUSERSITE", "MPLBACKEND", "PYTHONPATH"])


def test_monkeypatching_comparisons_changes_nothing(probe_assignment, write_submission):
    sub = write_submission("""
import numpy, numpy.testing, sys, types
numpy.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
fake = types.ModuleType("grader.checks")
fake.expect_array = lambda *a, **k: None
sys.modules["grader.checks"] = fake
try:
    import torch
    torch.allclose = lambda *a, **k: True
except ImportError:
    pass
def answer(x):
    return x * 3
def run():
    return "not ok"
def echo(value):
    return None
""")
    result = _grade(sub, probe_assignment)
    assert result.score == 0


def test_printing_a_fake_result_is_only_logged(probe_assignment, write_submission):
    sub = write_submission("""
print('{"score": 3, "max_score": 3}')
print("3 passed, 0 failed")
def answer(x):
    print("PASSED 42")
    return 0
def run():
    return "nope"
def echo(value):
    return None
""")
    result = _grade(sub, probe_assignment)
    assert result.score == 0
    assert '"score": 3' in result.log


@pytest.mark.parametrize("call", ["os._exit(0)", "sys.exit(0)"])
def test_exit_at_import_scores_zero_with_a_reason(probe_assignment, write_submission, call):
    sub = write_submission(HONEST + f"import os, sys\n{call}\n")
    result = _grade(sub, probe_assignment)
    assert result.score == 0
    assert any("exit" in m for m in result.messages), result.messages


def test_fork_bomb_hits_the_process_limit(probe_assignment, write_submission):
    sub = write_submission(HONEST + """
import os
def run():
    while True:
        try:
            os.fork()
        except OSError:
            pass
""")
    before = len(os.listdir("/proc"))
    started = time.monotonic()
    result = _grade(sub, probe_assignment)
    assert time.monotonic() - started < 30
    assert _score(result, "answer") == 1 and _score(result, "echo") == 1
    run = next(t for t in result.tests if t.name.startswith("run"))
    assert not run.passed
    assert any(word in run.message for word in ("too many processes", "time limit", "too long"))
    assert len(os.listdir("/proc")) < before + 20, "forked processes outlived the job"


def test_memory_bomb_is_reported_as_out_of_memory(probe_assignment, write_submission):
    sub = write_submission(HONEST + """
def run():
    blocks = []
    while True:
        blocks.append(bytearray(32 << 20))
""")
    result = _grade(sub, probe_assignment)
    run = next(t for t in result.tests if t.name.startswith("run"))
    assert "ran out of memory" in run.message and "384 MB" in run.message
    assert _score(result, "answer") == 1 and _score(result, "echo") == 1


def test_infinite_loop_times_out_and_keeps_partial_credit(probe_assignment, write_submission):
    sub = write_submission(HONEST + """
def run():
    while True:
        pass
""")
    started = time.monotonic()
    result = _grade(sub, probe_assignment)
    assert time.monotonic() - started < 20
    run = next(t for t in result.tests if t.name.startswith("run"))
    assert not run.passed and "time limit" in run.message
    assert result.score == 2, "the other tests must still earn their points"


def test_huge_file_write_is_stopped(probe_assignment, write_submission):
    sub = write_submission(HONEST + """
def run():
    errors = []
    for path in ("/tmp/big", "/job/big", "/big"):
        try:
            with open(path, "wb") as f:
                for _ in range(10 * 1024):
                    f.write(b"x" * (1 << 20))
            errors.append("wrote")
        except OSError as exc:
            errors.append(type(exc).__name__ + str(exc.errno))
    return "ok" if "wrote" in errors else ",".join(errors)
""")
    before = os.statvfs("/tmp").f_bavail
    result = _grade(sub, probe_assignment)
    assert _score(result, "run") == 0 and result.score == 2
    # each attempt stopped: the size limit (EFBIG) or no space on the sized tmpfs, then
    # the read-only bind of /job (EROFS) and a root directory that nobody may write (EACCES)
    assert _call(sub, probe_assignment, "run") in ("OSError27,OSError30,PermissionError13",
                                                   "OSError28,OSError30,PermissionError13")
    assert abs(os.statvfs("/tmp").f_bavail - before) * os.statvfs("/tmp").f_frsize < 200 << 20


def test_output_flood_is_capped(probe_assignment, write_submission):
    sub = write_submission(HONEST + """
import sys
def run():
    for _ in range(200000):
        sys.stdout.write("spam " * 20 + "\\n")
    return "ok"
""")
    result = _grade(sub, probe_assignment)
    assert result.score == 3
    assert len(result.log) < 9000 + 200
    assert "output truncated" in result.log


def test_background_process_dies_with_the_job(probe_assignment, write_submission):
    marker = f"torchgrade-bg-{os.getpid()}-{time.time_ns()}"
    sub = write_submission(HONEST + f"""
import subprocess
def run():
    subprocess.Popen(["/bin/sh", "-c", "exec -a {marker} sleep 300"], start_new_session=True)
    return "ok"
""")
    result = _grade(sub, probe_assignment)
    assert result.score == 3
    time.sleep(0.2)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                survivors.append(pid)
        except OSError:
            pass
    assert survivors == []


def test_object_whose_eq_is_always_true_does_not_pass(probe_assignment, write_submission):
    sub = write_submission("""
class Liar:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
def answer(x):
    return Liar()
def run():
    return Liar()
def echo(value):
    return Liar()
""")
    result = _grade(sub, probe_assignment)
    assert result.score == 0


def test_billion_element_tensor_is_refused(probe_assignment, write_submission):
    sub = write_submission(HONEST + """
import torch
def run():
    return torch.zeros(1).expand(10**9)
""")
    result = _grade(sub, probe_assignment)
    run = next(t for t in result.tests if t.name.startswith("run"))
    assert not run.passed and "too large" in run.message
    assert _score(result, "answer") == 1


def test_total_time_limit_bounds_the_whole_grading(probe_assignment, write_submission):
    import dataclasses

    limits = dataclasses.replace(probe_assignment.limits, total_timeout_s=4.0, call_timeout_s=2.0)
    tight = dataclasses.replace(probe_assignment, limits=limits)
    sub = write_submission("""
import time
def answer(x):
    time.sleep(1.5)
    return x * 2
def run():
    time.sleep(1.5)
    return "ok"
def echo(value):
    time.sleep(1.5)
    return value
""")
    started = time.monotonic()
    result = _grade(sub, tight)
    assert time.monotonic() - started < 8
    assert result.score == 2
    assert any("whole time limit (4 s in all" in t.message for t in result.tests)
