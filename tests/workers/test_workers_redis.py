"""Real `python -m workers worker` processes on a real Redis and PostgreSQL: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import time

from sqlalchemy import func, select

from tests.workers.conftest import (
    GOOD,
    HANGS,
    SLOW,
    all_final,
    assert_graded_once,
    queue_length,
    states,
    submit,
    wait_until,
)
from workers.health import worker_health
from workers.models import SubmissionEvent


def _db(pg_url):
    from workers.db import make_engine
    from workers.models import create_schema

    engine = make_engine(pg_url)
    create_schema(engine)
    return engine


def test_burst_of_200_is_graded_once_each(pg_url, broker, app_for, start_worker):
    """200 submissions, two worker nodes: every one graded, each exactly once; heartbeats visible."""
    db = _db(pg_url)
    workers = [start_worker(broker=broker, database=pg_url, concurrency=1) for _ in range(2)]
    ids = submit(db, app_for(broker), 200)
    wait_until(lambda: all_final(db, ids), 150, "200 submissions to be graded")
    assert_graded_once(db, ids)
    by = {r.result["seed"] for r in states(db, ids).values()}
    assert len(by) > 190  # each submission got its own secret seed
    health = {w.hostname: w for w in worker_health(db)}
    assert {w.hostname for w in workers} <= set(health) and all(health[w.hostname].alive for w in workers)


def _running_owner(db, sid):
    row = states(db, [sid])[sid]
    return row.lease_owner if row.state == "running" else None


def test_kill_pool_child_mid_grading(pg_url, broker, app_for, start_worker):
    """kill -9 of the pool child while it grades: redelivered at once, graded exactly once."""
    db = _db(pg_url)
    worker = start_worker(broker=broker, database=pg_url, concurrency=1)
    [sid] = submit(db, app_for(broker), content=SLOW)
    owner = wait_until(lambda: _running_owner(db, sid), 30, "grading to start")
    assert worker.hostname in {w.hostname for w in worker_health(db) if sid in w.grading}
    os.kill(int(owner.rsplit("/", 1)[1]), signal.SIGKILL)
    wait_until(lambda: all_final(db, [sid]), 40, "the killed submission to be graded")
    assert_graded_once(db, [sid])
    assert states(db, [sid])[sid].attempts == 2


def test_kill_whole_worker_mid_grading(pg_url, broker, app_for, start_worker):
    """kill -9 of the worker and its children: another node's sweeper requeues when the lease expires."""
    db = _db(pg_url)
    app = app_for(broker)
    doomed = start_worker(broker=broker, database=pg_url, concurrency=1)
    [sid] = submit(db, app, content=SLOW)
    wait_until(lambda: _running_owner(db, sid), 30, "grading to start")
    doomed.kill_all()  # its message stays unacked in Redis until the (long) visibility timeout
    start_worker(broker=broker, database=pg_url, concurrency=1)
    wait_until(lambda: all_final(db, [sid]), 60, "the orphaned submission to be graded")
    assert_graded_once(db, [sid])
    health = {w.hostname: w for w in worker_health(db, stale_after_s=3)}
    assert not health[doomed.hostname].alive


def test_redis_restart_during_burst_loses_nothing(pg_url, broker, redis_server, app_for, start_worker):
    """Redis (no persistence) killed and restarted mid-burst: the sweeper resends what it forgot."""
    db = _db(pg_url)
    start_worker(broker=broker, database=pg_url, concurrency=2)
    ids = submit(db, app_for(broker), 30)
    wait_until(lambda: sum(r.state == "graded" for r in states(db, ids).values()) >= 3, 60, "a few grades")
    redis_server.stop()
    time.sleep(2)
    redis_server.start()
    wait_until(lambda: all_final(db, ids), 90, "every submission after the Redis restart")
    assert_graded_once(db, ids)


def test_hanging_submission_is_cut_and_worker_goes_on(pg_url, broker, app_for, start_worker):
    """A hang in the student's code is cut at the assignment's limit and scored; a grader that
    stalls (issue 9 #2) is graded again, then fails with the reason: never a score."""
    db = _db(pg_url)
    app = app_for(broker)
    start_worker(broker=broker, database=pg_url, concurrency=1, env={"TORCHGRADE_MAX_ATTEMPTS": "2"})
    [hung] = submit(db, app, slug="hang", content=HANGS)  # the engine cuts the student's call
    [stuck] = submit(db, app, slug="stuck", content=GOOD)  # the worker's hard limit cuts the engine
    [after] = submit(db, app, content=GOOD)
    wait_until(lambda: all_final(db, [hung, stuck, after]), 75, "the hangs to be cut and the next graded")
    rows = states(db, [hung, stuck])
    assert (rows[hung].state, rows[hung].score, rows[hung].attempts) == ("graded", 0.0, 1)
    assert "whole time limit (3 s in all" in str(rows[hung].result["tests"])
    assert (rows[stuck].state, rows[stuck].score, rows[stuck].result, rows[stuck].attempts) == (
        "failed", None, None, 2)
    assert "the grader itself stalled" in rows[stuck].reason
    assert "hard time limit on each of 2 attempts" in rows[stuck].reason
    with db.connect() as conn:
        released = conn.execute(select(func.count()).where(
            SubmissionEvent.submission_id == stuck, SubmissionEvent.event == "released")).scalar()
    assert released == 1
    assert_graded_once(db, [after])


def test_gpu_assignment_never_runs_on_a_cpu_worker(pg_url, broker, redis_server, app_for, start_worker):
    """Routing: gpu work waits in the gpu queue; a misrouted copy on cpu is sent back."""
    db = _db(pg_url)
    app = app_for(broker)
    # The sweeper (grace 4 s in FAST_ENV) sees both copies waiting in the gpu queue and sends
    # no third (issue 11 #6: it used to, when the first grading here was slow).
    start_worker(broker=broker, database=pg_url, concurrency=1)
    [gpu_sid] = submit(db, app, slug="gpu_tiny")
    from grader.assignment import find
    from workers.config import Settings
    from workers.service import send

    misrouted = find("gpu_tiny").__class__(**{**find("gpu_tiny").__dict__, "device": "cpu"})
    send(app, gpu_sid, misrouted, Settings.from_env())  # a copy on the cpu queue, by mistake
    [cpu_sid] = submit(db, app)
    wait_until(lambda: all_final(db, [cpu_sid]), 30, "the cpu submission")
    time.sleep(6)  # past the queued grace: a sweep has looked at the waiting gpu submission
    row = states(db, [gpu_sid])[gpu_sid]
    assert (row.state, row.attempts) == ("queued", 0)
    assert queue_length(redis_server.client(), "gpu") == 2  # the original and the bounced copy
