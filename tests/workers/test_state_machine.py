"""The submission state machine on real PostgreSQL and SQLite: claims, fencing, sweeps."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.workers.conftest import queue_length, states, submit
from workers import leases
from workers.config import Settings
from workers.db import session_for
from workers.models import Submission, utcnow
from workers.service import SubmissionNotFound, create_submission, enqueue_submission, sweep


def _claim(db, sid, owner="cpu@a/1", lease=30.0, **kw):
    return leases.claim(db, sid, owner=owner, hostname=owner.split("/")[0], lease_s=lease, **kw)


def test_racing_claims_only_one_wins(db, broker, app_for):
    """Eight threads claim one submission at once: exactly one holds the lease."""
    [sid] = submit(db, app_for(broker), enqueue=False)
    barrier = threading.Barrier(8)
    outcomes = []

    def race(i: int) -> None:
        barrier.wait()
        outcomes.append(_claim(db, sid, owner=f"cpu@host{i}/{1000 + i}").outcome)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["busy"] * 7 + ["claimed"]
    row = states(db)[sid]
    assert row.state == "running" and row.attempts == 1 and row.deliveries == 8
    assert row.seed is not None  # the hidden tests' seed is fixed at the first claim


def test_second_delivery_after_grading_changes_nothing(db, broker, app_for):
    """Idempotence: a duplicate message after the result finds it done and records no second score."""
    [sid] = submit(db, app_for(broker), enqueue=False)
    claim = _claim(db, sid)
    assert leases.finish(db, sid, owner="cpu@a/1", attempt=claim.attempt,
                         result={"score": 2.0, "max_score": 2.0, "seed": claim.seed})
    again = _claim(db, sid, owner="cpu@b/2")
    assert again.outcome == leases.DONE
    row = states(db)[sid]
    assert (row.state, row.score, row.attempts) == ("graded", 2.0, 1)


def test_stale_worker_cannot_record_after_takeover(db, broker, app_for):
    """Fencing: once a lease expired and another worker took it, the first one's result is discarded."""
    [sid] = submit(db, app_for(broker), enqueue=False)
    first = _claim(db, sid, owner="cpu@slow/1", lease=0.01)
    import time

    time.sleep(0.05)
    second = _claim(db, sid, owner="cpu@fast/2")
    assert second.ok and second.attempt == 2 and second.seed == first.seed
    assert not leases.finish(db, sid, owner="cpu@slow/1", attempt=first.attempt, result={"score": 0.0})
    assert leases.finish(db, sid, owner="cpu@fast/2", attempt=second.attempt, result={"score": 2.0})
    row = states(db)[sid]
    assert (row.state, row.score) == ("graded", 2.0)


def test_dead_pool_child_of_this_node_is_recovered_at_once(db, broker, app_for):
    """A redelivery on the same node takes over a lease whose process no longer exists."""
    [sid] = submit(db, app_for(broker), enqueue=False)
    assert _claim(db, sid, owner="cpu@node/999999999").ok  # no such pid
    assert _claim(db, sid, owner="cpu@other/5").outcome == leases.BUSY  # another node must wait
    taken = _claim(db, sid, owner="cpu@node/7")
    assert taken.ok and taken.attempt == 2


def test_enqueue_refuses_an_uncommitted_submission(db, broker, app_for):
    """Tasks are enqueued only after the commit: before it, enqueue raises and sends nothing."""
    app = app_for(broker)
    with session_for(db) as session:
        sub = create_submission(session, assignment="tiny", filename="a.py", content=b"x = 1\n")
        with pytest.raises(SubmissionNotFound):
            enqueue_submission(db, sub.id, app=app)
        session.rollback()
    assert app_for(broker) and _queue_length(broker, "cpu") == 0


def _queue_length(broker: str, queue: str) -> int:
    import redis

    return queue_length(redis.Redis.from_url(broker), queue)


def test_routing_by_device(db, broker, app_for):
    """A gpu assignment's task goes to the gpu queue, a cpu one's to the cpu queue."""
    app = app_for(broker)
    submit(db, app, 2, slug="tiny")
    submit(db, app, 1, slug="gpu_tiny")
    assert (_queue_length(broker, "cpu"), _queue_length(broker, "gpu")) == (2, 1)


def test_sweeper_requeues_expired_and_resends_lost_then_gives_up(db, broker, app_for):
    """Expired leases go back to the queue and are resent; after max attempts they fail with a reason."""
    app = app_for(broker)
    settings = Settings.from_env()
    lost, dead = submit(db, app, 2, enqueue=False)  # never sent: a lost message
    _claim(db, dead, owner="cpu@gone/1", lease=0.01)
    past = utcnow() - timedelta(seconds=60)
    with db.begin() as conn:
        conn.execute(update(Submission).where(Submission.id == lost).values(created_at=past))
    import time

    time.sleep(0.05)
    report = sweep(db, app=app, settings=settings)
    assert report.requeued == [dead] and sorted(report.resent) == sorted([lost, dead])
    assert states(db)[dead].state == "queued" and _queue_length(broker, "cpu") == 2
    for attempt in range(2, settings.max_attempts + 1):  # it keeps dying
        assert _claim(db, dead, owner=f"cpu@gone/{attempt}", lease=0.01).ok
        time.sleep(0.05)
        report = sweep(db, app=app, settings=settings)
    assert report.failed == [dead]
    row = states(db)[dead]
    assert row.state == "failed" and "attempts" in row.reason
