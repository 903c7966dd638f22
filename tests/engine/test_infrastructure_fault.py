"""A grading the machine failed is no score: the fault reaches the caller, who retries it.

The sandbox is frozen from outside (the host alone can do that: cgroup.freeze), so the
job's clock does not advance while the wall clock does; past the wall backstop the call
raises InfrastructureFault. grade() must then record nothing (no result with a zero for
the test) and leave nothing behind.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from grader.engine import grade
from grader.errors import InfrastructureFault
from grader.sandbox import cgroups

pytestmark = pytest.mark.usefixtures("require_full_sandbox")


def _freeze_our_jobs(stop: threading.Event) -> None:
    """Freeze every job cgroup of this process that has a freezer, until stopped."""
    while not stop.wait(0.1):
        for parent in cgroups.ROOT.glob(f"unified/{cgroups.PARENT}"):
            for job in parent.glob(cgroups.job_prefix() + "*"):
                try:
                    (job / "cgroup.freeze").write_text("1")
                except OSError:
                    pass


def test_a_frozen_sandbox_raises_instead_of_scoring(probe_assignment, write_submission,
                                                   nothing_left):
    limits = dataclasses.replace(probe_assignment.limits, call_timeout_s=1.0, load_timeout_s=2.0)
    tight = dataclasses.replace(probe_assignment, limits=limits)
    sub = write_submission("""
import time
def answer(x):
    time.sleep(1.5)
    return x * 2
def run():
    return "ok"
def echo(value):
    return value
""")
    stop = threading.Event()
    freezer = threading.Thread(target=_freeze_our_jobs, args=(stop,), daemon=True)
    started = time.monotonic()
    freezer.start()
    try:
        with pytest.raises(InfrastructureFault):
            grade(sub, tight, mode="service", seed=1)
    finally:
        stop.set()
        freezer.join()
    assert time.monotonic() - started < 40  # the backstop: 3 x 2 s + 5 s, at the load
    nothing_left()


def test_a_sandbox_that_cannot_start_is_no_score(probe_assignment, monkeypatch, nothing_left):
    """Issue 9 #2: bubblewrap failing its own set-up (here a mount of a path that is not
    there, as a broken node would) ends before the guest starts: no student code ran."""
    from grader.sandbox import process

    monkeypatch.setenv("TORCHGRADE_WARM", "0")  # a cold job: bubblewrap per job
    real = process.bwrap_argv

    def broken(**kw):
        argv = real(**kw)
        return argv[:1] + ["--ro-bind", "/nonexistent-torchgrade-node", "/broken"] + argv[1:]

    monkeypatch.setattr(process, "bwrap_argv", broken)
    with pytest.raises(InfrastructureFault) as caught:
        grade(probe_assignment.solution, probe_assignment, mode="service", seed=1)
    assert "the sandbox could not start" in str(caught.value)
    assert "nonexistent-torchgrade-node" in str(caught.value)
    nothing_left()


def test_a_warm_job_that_cannot_be_set_up_is_no_score(probe_assignment, monkeypatch, nothing_left):
    """Issue 10: a job forked from the zygote that fails its own set-up (here its /job mount
    point is not there) ends before the guest starts: no score, and the zygote is dropped."""
    from grader.sandbox import process, zygote

    monkeypatch.setattr(zygote, "RETRY_AFTER_S", 0.0)
    monkeypatch.setattr(process, "JOB_DIR", "/nonexistent-torchgrade-node")
    retired, real_retire = [], zygote.retire
    monkeypatch.setattr(zygote, "retire", lambda z: (retired.append(z), real_retire(z)))
    with pytest.raises(InfrastructureFault) as caught:
        grade(probe_assignment.solution, probe_assignment, mode="service", seed=1)
    assert "the sandbox could not start" in str(caught.value)
    assert "could not be set up" in str(caught.value) and "nonexistent-torchgrade-node" in str(caught.value)
    assert len(retired) == 1 and retired[0] not in zygote.running()  # the next job starts another
    monkeypatch.undo()
    assert grade(probe_assignment.solution, probe_assignment, mode="service", seed=1).score > 0
    nothing_left()
