"""The workers' service API: create and enqueue submissions, sweep, and report worker health.

What web/ calls, in order, inside its own request:

    sub = create_submission(session, assignment="03_numpy_backprop", filename="hw.ipynb",
                            content=data, owner=str(user.id))
    session.commit()                       # the database first: it is the source of truth
    enqueue_submission(session, sub.id)    # then the broker; False means the sweeper will send it

and to show state: `Submission` rows (workers.models) and `worker_health(session)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from grader.assignment import Assignment, find
from grader.sandbox.clock import backstop_s
from workers import leases
from workers.config import Settings
from workers.db import as_utc
from workers.models import FAILED, QUEUED, RUNNING, Submission, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)
TASK_NAME = "workers.grade"
S = Submission.__table__


class SubmissionNotFound(LookupError):
    """No committed submission has this id (enqueue only after the commit)."""


def _engine(bind: Session | Engine) -> Engine:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.engine if hasattr(engine, "engine") else engine  # a Connection gives its Engine


def queue_for(assignment: Assignment) -> str:
    """The Celery queue of an assignment: its device, cpu or gpu."""
    return assignment.device


def hard_limit_s(assignment: Assignment, settings: Settings) -> float:
    """The Celery hard time limit of one grading: past the engine's own wall-clock backstop.

    The student's limits count the job's own time (not time waiting for a CPU); the
    engine gives up on a starved sandbox at the backstop (an InfrastructureFault, retried),
    so this limit only fires when the engine itself is stuck.
    """
    return backstop_s(assignment.limits.total_timeout_s) + settings.engine_overhead_s


def lease_s(assignment: Assignment, settings: Settings) -> float:
    """How long a claim lasts: past the hard time limit, so only a dead worker loses it."""
    return hard_limit_s(assignment, settings) + settings.lease_grace_s


def visibility_timeout_s(assignments: list[Assignment], settings: Settings) -> float:
    """Redis visibility timeout: at least twice the longest job, never below the floor."""
    longest = max((hard_limit_s(a, settings) for a in assignments), default=0.0)
    return max(settings.visibility_floor_s, 2 * longest)


def create_submission(session: Session, *, assignment: str, filename: str, content: bytes,
                      owner: str | None = None) -> Submission:
    """Add a queued submission to the session (the caller commits, then enqueues)."""
    found = find(assignment)  # InvalidAssignment names the known slugs
    sub = Submission(assignment=found.slug, filename=filename, content=content, owner=owner,
                     state=QUEUED, queue=queue_for(found), created_at=utcnow())
    session.add(sub)
    session.flush()
    return sub


def send(app: Any, submission_id: int, assignment: Assignment, settings: Settings) -> None:
    """Publish the grading task for a submission to its assignment's queue."""
    app.send_task(TASK_NAME, args=[submission_id], queue=queue_for(assignment),
                  routing_key=queue_for(assignment), time_limit=hard_limit_s(assignment, settings))


def enqueue_submission(bind: Session | Engine, submission_id: int, *, app: Any = None,
                       settings: Settings | None = None) -> bool:
    """Send a committed, queued submission to its queue; False when the broker is away.

    Raises SubmissionNotFound when the submission is not committed yet. A False return
    needs no action: the database says queued, and a worker's sweeper sends it later.
    """
    from workers.celery_app import get_app

    engine = _engine(bind)
    settings = settings or Settings.from_env()
    with engine.connect() as conn:  # a fresh connection sees only committed rows
        row = conn.execute(select(S.c.assignment, S.c.state).where(S.c.id == submission_id)).first()
    if row is None:
        raise SubmissionNotFound(f"no committed submission {submission_id}: commit before enqueueing")
    if row.state != QUEUED:
        return False
    try:
        send(app or get_app(), submission_id, find(row.assignment), settings)
    except Exception as exc:  # broker away: the sweeper resends from the database
        log.warning("could not send submission %s to the broker (%s); the sweeper will", submission_id, exc)
        return False
    with engine.begin() as conn:
        conn.execute(update(S).where(S.c.id == submission_id, S.c.state == QUEUED)
                     .values(enqueued_at=utcnow()))
    return True


def requeue(bind: Session | Engine, submission_id: int, *, app: Any = None) -> bool:
    """Put a failed or graded submission back in the queue (a regrade keeps its seed)."""
    engine = _engine(bind)
    with engine.begin() as conn:
        done = conn.execute(update(S).where(S.c.id == submission_id, S.c.state.not_in((QUEUED, RUNNING)))
                            .values(state=QUEUED, attempts=0, reason=None, enqueued_at=None,
                                    lease_owner=None, lease_expires_at=None)).rowcount == 1
        if done:
            leases.record(conn, submission_id, "requeued", detail="requeued by an instructor")
    return done and enqueue_submission(engine, submission_id, app=app)


@dataclass
class SweepReport:
    """What one sweep did."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def _orphans(engine: Engine, hostname: str) -> list[dict[str, Any]]:
    """Running submissions leased by dead processes of this same worker node."""
    with engine.connect() as conn:
        rows = conn.execute(select(S.c.id, S.c.lease_owner, S.c.attempts).where(
            S.c.state == RUNNING, S.c.lease_owner.like(f"{hostname}/%")))
        return [dict(r._mapping) for r in rows
                if leases._owner_is_dead_here(r.lease_owner, hostname)]


def sweep(engine: Engine, *, app: Any, settings: Settings, hostname: str = "",
          now: datetime | None = None) -> SweepReport:
    """Requeue expired or orphaned leases and resend queued work whose message may be lost."""
    now = now or utcnow()
    report = SweepReport()
    stale = leases.expired(engine, now)
    if hostname:
        seen = {r["id"] for r in stale}
        stale += [r for r in _orphans(engine, hostname) if r["id"] not in seen]
    for row in stale:
        # An orphan's lease has not expired yet; make it so (conditionally) before requeueing.
        with engine.begin() as conn:
            conn.execute(update(S).where(S.c.id == row["id"], S.c.state == RUNNING,
                                         S.c.lease_owner == row["lease_owner"],
                                         S.c.attempts == row["attempts"])
                         .values(lease_expires_at=now - timedelta(seconds=1)))
        state = leases.requeue_expired(engine, row["id"], lease_owner=row["lease_owner"],
                                       attempts=row["attempts"], max_attempts=settings.max_attempts,
                                       by=hostname or "sweeper")
        (report.requeued if state == QUEUED else report.failed if state == FAILED else []).append(row["id"])
    for submission_id in leases.waiting_too_long(engine, now - timedelta(seconds=settings.queued_grace_s)):
        if enqueue_submission(engine, submission_id, app=app, settings=settings):
            report.resent.append(submission_id)
    for submission_id in report.requeued:
        if submission_id not in report.resent and enqueue_submission(engine, submission_id, app=app,
                                                                     settings=settings):
            report.resent.append(submission_id)
    return report


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the dashboard shows it."""

    hostname: str
    queues: str
    pid: int
    concurrency: int
    gpus: int
    started_at: datetime
    last_seen_at: datetime
    alive: bool
    grading: list[int]


def worker_health(bind: Session | Engine, *, stale_after_s: float = 30.0) -> list[WorkerInfo]:
    """Every worker that has beaten its heart, whether it is alive, and what it is grading."""
    engine = _engine(bind)
    now = utcnow()
    with engine.connect() as conn:
        beats = conn.execute(select(WorkerHeartbeat.__table__).order_by("hostname")).mappings().all()
        running = conn.execute(select(S.c.id, S.c.lease_owner).where(S.c.state == RUNNING)).all()
    out = []
    for b in beats:
        last = as_utc(b["last_seen_at"])
        alive = b["stopped_at"] is None and (now - last).total_seconds() <= stale_after_s
        grading = sorted(r.id for r in running if (r.lease_owner or "").startswith(b["hostname"] + "/"))
        out.append(WorkerInfo(hostname=b["hostname"], queues=b["queues"], pid=b["pid"],
                              concurrency=b["concurrency"], gpus=b["gpus"],
                              started_at=as_utc(b["started_at"]),
                              last_seen_at=last, alive=alive, grading=grading))
    return out


def beat(engine: Engine, *, hostname: str, queues: str, pid: int, concurrency: int, gpus: int,
         stopped: bool = False) -> None:
    """Write this worker's heartbeat row (insert the first time, update after)."""
    H = WorkerHeartbeat.__table__
    now = utcnow()
    with engine.begin() as conn:
        values = dict(queues=queues, pid=pid, concurrency=concurrency, gpus=gpus, last_seen_at=now,
                      stopped_at=now if stopped else None)
        if conn.execute(update(H).where(H.c.hostname == hostname).values(**values)).rowcount == 0:
            conn.execute(H.insert().values(hostname=hostname, started_at=now, **values))


def _slug_of(engine: Engine, submission_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(S.c.assignment).where(S.c.id == submission_id)).scalar_one()
