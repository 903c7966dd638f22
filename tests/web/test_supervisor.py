"""The embedded worker of `python -m web serve` is supervised: killed, it returns; stopped, it ends.

The end-to-end test runs the real `python -m web serve` (SQLite, the serverless broker, its own
embedded worker), kills the worker's whole process group with SIGKILL, and has a submission
graded by the worker that replaced it. The others drive web.supervisor (the class, and the
`python -m web.supervisor` process) with small real commands (python -c ...), to see its
back-off and its stopping without waiting minutes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web_helpers import ROOT, SLUG, Http, Service

from grader.submit import main as submit
from web.supervisor import Supervisor, describe_exit
from workers.db import make_engine
from workers.health import worker_health


def gone(pgid: int) -> bool:
    """Whether no live process of the group pgid is left (a zombie waiting for its reaper is dead)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


def dead(pid: int) -> bool:
    """Whether process pid has ended (gone, or a zombie its new parent has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(predicate, timeout: float, what: str):  # noqa: ANN001, ANN201 (a test helper)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what}")


@pytest.mark.slow
def test_serve_restarts_its_killed_worker_which_then_grades(tmp_path, capsys):
    svc = Service(tmp_path)
    log = tmp_path / "service.log"
    engine = make_engine(f"sqlite:///{tmp_path / 'instance' / 'torchgrade.sqlite'}")
    try:
        started = r"the embedded worker started as pid (\d+) \(supervised by pid \d+\)"
        first = int(wait_for(lambda: re.search(started, log.read_text()), 15, "the first worker").group(1))
        wait_for(lambda: any(w.pid == first and w.alive for w in worker_health(engine)), 60,
                 "the first worker's heartbeat")  # a worker that is up and taking work, then killed
        os.killpg(first, signal.SIGKILL)  # the worker, its pool processes and their sandboxes
        line = wait_for(lambda: re.search(rf"the embedded worker \(pid {first}\) was killed by SIGKILL after "
                                          r"\d+ s; restarting it in 1 s \(restart 1\)", log.read_text()),
                        15, "the supervisor's line about the kill")
        assert line
        second = int(wait_for(lambda: re.search(r"the embedded worker is running again as pid (\d+)",
                                                log.read_text()), 15, "a new worker").group(1))
        assert second != first and gone(first) and not gone(second)

        password = svc.create_user("after_kill")
        token = Http(svc.url).login("after_kill", password).new_token()
        code = submit(file=ROOT / "assignments" / SLUG / "solution.py", assignment=SLUG, url=svc.url,
                      token=token, wait_s=120, poll_s=0.3)
        assert code == 0 and "score: 10 / 10" in capsys.readouterr().out
    finally:
        svc.stop()
    engine.dispose()
    text = log.read_text()
    assert gone(second), "serve stopped but left its worker running"
    assert text.count("restarting it in") == 1  # stopping is not mistaken for a crash


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_worker_that_keeps_dying_is_restarted_with_doubling_back_off_up_to_the_cap():
    log: list[str] = []
    sup = Supervisor(py("import sys; sys.exit(3)"), min_backoff_s=0.1, max_backoff_s=0.4, healthy_after_s=30,
                     log=log.append)
    sup.start()
    try:
        wait_for(lambda: sup.restarts >= 5, 20, "five restarts")
    finally:
        sup.stop()
    exits = [m for m in (re.search(r"\(pid (\d+)\) exited with status 3 after \d+ s; restarting it in "
                                   r"([\d.]+) s \(restart (\d+)\)", x) for x in log) if m]
    assert [float(m.group(2)) for m in exits[:5]] == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert [int(m.group(3)) for m in exits[:5]] == [1, 2, 3, 4, 5]
    assert len({m.group(1) for m in exits}) == len(exits)  # a new process each time
    assert sum("is running again as pid" in x for x in log) >= 4


def test_the_back_off_starts_over_after_a_worker_ran_a_while():
    log: list[str] = []
    sup = Supervisor(py("import time; time.sleep(0.6); raise SystemExit(1)"), min_backoff_s=0.1,
                     max_backoff_s=5, healthy_after_s=0.5, log=log.append)
    sup.start()
    try:
        wait_for(lambda: sup.restarts >= 3, 20, "three restarts")
    finally:
        sup.stop()
    delays = re.findall(r"exited with status 1 after \d+ s; restarting it in ([\d.]+) s", "\n".join(log))
    assert delays[:3] == ["0.1", "0.1", "0.1"]


def test_stop_terminates_the_worker_and_does_not_restart_it():
    log: list[str] = []
    sup = Supervisor(py("import time; time.sleep(60)"), log=log.append)
    pid = sup.start()
    started = time.monotonic()
    sup.stop()
    assert time.monotonic() - started < 5 and gone(pid)
    assert sup._proc.returncode == -signal.SIGTERM and log == []  # no restart, no kill needed


def test_stop_kills_the_whole_group_of_a_worker_that_ignores_sigterm(tmp_path):
    log: list[str] = []
    child_pid = tmp_path / "child.pid"
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(child_pid)!r}, 'w').write(str(c.pid))\n"
            "time.sleep(60)\n")
    sup = Supervisor(py(code), stop_timeout_s=0.5, log=log.append)
    pid = sup.start()
    child = int(wait_for(lambda: child_pid.exists() and child_pid.read_text(), 10, "the worker's child"))
    sup.stop()
    assert gone(pid) and dead(child)
    assert log == [f"torchgrade: the embedded worker (pid {pid}) did not stop in 0.5 s; killing it"]


def test_what_a_dead_worker_leaves_in_its_group_is_killed_before_the_restart(tmp_path):
    """A Celery main process killed alone leaves pool processes; they must not grade on unsupervised."""
    log: list[str] = []
    child_pid = tmp_path / "child.pid"
    code = ("import subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(child_pid)!r}, 'w').write(str(c.pid))\n"
            "time.sleep(60)\n")
    sup = Supervisor(py(code), min_backoff_s=5, log=log.append)
    pid = sup.start()
    try:
        child = int(wait_for(lambda: child_pid.exists() and child_pid.read_text(), 10, "the worker's child"))
        os.kill(pid, signal.SIGKILL)  # the leader only
        wait_for(lambda: sup.restarts == 1, 10, "the exit noticed")
        wait_for(lambda: dead(child), 5, "the leftover killed")
        assert "was killed by SIGKILL" in log[0]
    finally:
        sup.stop()


def test_exit_statuses_read_as_words():
    assert describe_exit(0) == "exited with status 0" and describe_exit(2) == "exited with status 2"
    assert describe_exit(-9) == "was killed by SIGKILL" and describe_exit(-15) == "was killed by SIGTERM"
    assert describe_exit(None).startswith("exited (its exit status was collected")


def test_the_supervisor_process_stops_its_worker_when_serve_is_killed(tmp_path):
    """serve killed with SIGKILL runs no cleanup: the kernel's parent-death signal stops the worker."""
    pids = tmp_path / "pids"
    serve = ("import os, subprocess, sys, time\n"
             "sup = subprocess.Popen([sys.executable, '-m', 'web.supervisor', '--parent', str(os.getpid()), "
             "'--', sys.executable, '-c', 'import time; time.sleep(60)'], process_group=0)\n"
             f"open({str(pids)!r}, 'w').write(str(sup.pid))\n"
             "time.sleep(60)\n")
    stand_in = subprocess.Popen(py(serve), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    supervisor = int(wait_for(lambda: pids.exists() and pids.read_text(), 10, "the supervisor's pid"))
    first_line = stand_in.stderr.readline()
    worker = int(re.search(r"started as pid (\d+) \(supervised by pid (\d+)\)", first_line).group(1))
    stand_in.kill()
    stand_in.wait()
    try:
        wait_for(lambda: dead(supervisor) and gone(worker), 10, "the supervisor and its worker gone")
    finally:
        if not dead(supervisor):  # leave nothing behind when the test fails
            os.kill(supervisor, signal.SIGTERM)
