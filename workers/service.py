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
from grader.errors import InvalidAssignment
from grader.sandbox.clock import backstop_s
from workers import leases
from workers.config import QUEUES, TASK_NAME, Settings
from workers.db import engine_of
from workers.models import FAILED, QUEUED, RUNNING, Submission, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)
S = Submission.__table__


class SubmissionNotFound(LookupError):
    """No committed submission has this id (enqueue only after the commit)."""


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


# Message priorities (Redis: a lower number is taken first, one list per step; the
# SQLAlchemy transport has none). Work a crash or an outage interrupted goes first; then
# work whose message the broker lost (it waited longest); then new work; an instructor's
# regrade last. So a requeued grading is not left behind a deadline burst.
AGAIN, RESENT, NEW, REGRADE = 0, 3, 6, 9


def send(app: Any, submission_id: int, assignment: Assignment, settings: Settings, *,
         priority: int = NEW) -> None:
    """Publish the grading task for a submission to its assignment's queue."""
    app.send_task(TASK_NAME, args=[submission_id], queue=queue_for(assignment),
                  routing_key=queue_for(assignment), time_limit=hard_limit_s(assignment, settings),
                  priority=priority)


def mark_sent(engine: Engine, submission_id: int, *, delay_s: float = 0.0) -> None:
    """Note that a message for a queued submission is out (due in delay_s): the sweeper's
    grace runs from then. Best effort: in an outage the sweeper may resend a copy, which
    the state machine makes harmless."""
    try:
        with engine.begin() as conn:
            conn.execute(update(S).where(S.c.id == submission_id, S.c.state == QUEUED)
                         .values(enqueued_at=utcnow() + timedelta(seconds=delay_s)))
    except Exception:  # the database is what is away: nothing to note it in
        pass


def fail_queued(engine: Engine, submission_id: int, reason: str) -> bool:
    """Fail a queued submission nobody holds (it cannot be sent), with the reason shown to staff."""
    with engine.begin() as conn:
        done = conn.execute(update(S).where(S.c.id == submission_id, S.c.state == QUEUED).values(
            state=FAILED, reason=reason, finished_at=utcnow())).rowcount == 1
        if done:
            leases.record(conn, submission_id, "failed", detail=reason)
    return done


def enqueue_submission(bind: Session | Engine, submission_id: int, *, app: Any = None,
                       settings: Settings | None = None, priority: int = NEW) -> bool:
    """Send a committed, queued submission to its queue; False when it was not sent.

    Raises SubmissionNotFound when the submission is not committed yet. A False return
    needs no action: the database says queued, and a worker's sweeper sends it later;
    or, where the assignment cannot be loaded, the submission failed with the reason.
    """
    from workers.celery_app import get_app

    engine = engine_of(bind)
    settings = settings or Settings.from_env()
    with engine.connect() as conn:  # a fresh connection sees only committed rows
        row = conn.execute(select(S.c.assignment, S.c.state).where(S.c.id == submission_id)).first()
    if row is None:
        raise SubmissionNotFound(f"no committed submission {submission_id}: commit before enqueueing")
    if row.state != QUEUED:
        return False
    try:
        assignment = find(row.assignment)
    except InvalidAssignment as exc:  # the manifest broke after the submission was stored
        reason = (f"the assignment {row.assignment!r} cannot be loaded, so this submission was "
                  f"not graded: {exc}. An instructor must fix the assignment, then requeue it.")
        if fail_queued(engine, submission_id, reason):
            log.error("submission %s failed: assignment %r cannot be loaded: %s", submission_id,
                      row.assignment, exc)
        return False
    try:
        send(app or get_app(), submission_id, assignment, settings, priority=priority)
    except Exception as exc:  # broker away: the sweeper resends from the database
        log.warning("could not send submission %s to the broker (%s); the sweeper will", submission_id, exc)
        return False
    with engine.begin() as conn:
        conn.execute(update(S).where(S.c.id == submission_id, S.c.state == QUEUED)
                     .values(enqueued_at=utcnow()))
    return True


def requeue(bind: Session | Engine, submission_id: int, *, app: Any = None) -> bool:
    """Put a failed or graded submission back in the queue (a regrade keeps its seed)."""
    engine = engine_of(bind)
    with engine.begin() as conn:
        done = conn.execute(update(S).where(S.c.id == submission_id, S.c.state.not_in((QUEUED, RUNNING)))
                            .values(state=QUEUED, attempts=0, reason=None, enqueued_at=None,
                                    lease_owner=None, lease_expires_at=None)).rowcount == 1
        if done:
            leases.record(conn, submission_id, "requeued", detail="requeued by an instructor")
    return done and enqueue_submission(engine, submission_id, app=app, priority=REGRADE)


@dataclass
class SweepReport:
    """What one sweep did; `swept` is False where another process held the sweep."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    still_waiting: int = 0  # queued past the grace, their message still in the broker
    swept: bool = True
    holder: str | None = None

    @property
    def did_something(self) -> bool:
        """Whether the sweep changed anything (worth one log line)."""
        return bool(self.requeued or self.failed or self.resent)


SWEEP_LOCK = "sweep"


def sweep_lock_s(settings: Settings) -> float:
    """How long the sweep's lock lasts without renewal (a node that died lets go after this)."""
    return max(3 * settings.sweep_every_s, 10.0)


def _orphans(engine: Engine, hostname: str) -> list[dict[str, Any]]:
    """Running submissions leased by dead processes of this same worker node."""
    with engine.connect() as conn:
        rows = conn.execute(select(S.c.id, S.c.lease_owner, S.c.attempts).where(
            S.c.state == RUNNING, S.c.lease_owner.like(f"{hostname}/%")))
        return [dict(r._mapping) for r in rows
                if leases._owner_is_dead_here(r.lease_owner, hostname)]


def _requeue(engine: Engine, rows: list[dict[str, Any]], settings: Settings, by: str,
             now: datetime, report: SweepReport) -> None:
    for row in rows:
        # An orphan's lease has not expired yet; make it so (conditionally) before requeueing.
        with engine.begin() as conn:
            conn.execute(update(S).where(S.c.id == row["id"], S.c.state == RUNNING,
                                         S.c.lease_owner == row["lease_owner"],
                                         S.c.attempts == row["attempts"])
                         .values(lease_expires_at=now - timedelta(seconds=1)))
        state = leases.requeue_expired(engine, row["id"], lease_owner=row["lease_owner"],
                                       attempts=row["attempts"], max_attempts=settings.max_attempts,
                                       by=by)
        (report.requeued if state == QUEUED else report.failed if state == FAILED else []).append(row["id"])


def _resend_lost(engine: Engine, app: Any, settings: Settings, now: datetime,
                 report: SweepReport) -> None:
    """Resend queued work past the grace whose message is not in the broker (lost)."""
    from workers.broker_view import waiting_submissions

    candidates = leases.waiting_too_long(engine, now - timedelta(seconds=settings.queued_grace_s))
    candidates = [i for i in candidates if i not in report.requeued]
    if not candidates:
        return
    broker_url = (app.conf.broker_url if app is not None else None) or settings.broker_url
    waiting = waiting_submissions(broker_url, QUEUES, held_within_s=settings.queued_grace_s)
    if waiting is not None:
        report.still_waiting = sum(1 for i in candidates if i in waiting)
        candidates = [i for i in candidates if i not in waiting]
        if report.still_waiting:  # a backlog, not a loss: wait on, and look again later
            with engine.begin() as conn:
                conn.execute(update(S).where(S.c.id.in_(sorted(waiting)), S.c.state == QUEUED)
                             .values(enqueued_at=now))
    for submission_id in candidates:
        if not enqueue_submission(engine, submission_id, app=app, settings=settings, priority=RESENT):
            if leases.state_of(engine, submission_id) == QUEUED:
                return  # the broker is away: the next sweep tries again (one warning logged)
            continue
        report.resent.append(submission_id)


def sweep(engine: Engine, *, app: Any, settings: Settings, hostname: str = "",
          now: datetime | None = None) -> SweepReport:
    """Requeue expired or orphaned leases and resend queued work whose message was lost.

    A node's own dead pool processes are its own to requeue (only it can tell they are
    dead). The rest is the cluster's: one process at a time does it, under the sweep lock.
    Requeued work goes first (AGAIN), resent lost messages next (RESENT), then new work.
    """
    from workers import cluster_lock
    from workers.health import prune_gone_workers

    now = now or utcnow()
    report = SweepReport()
    me = leases.owner_name(hostname or "sweep")
    if hostname:
        _requeue(engine, _orphans(engine, hostname), settings, hostname, now, report)
    if cluster_lock.hold(engine, SWEEP_LOCK, me, sweep_lock_s(settings)):
        _requeue(engine, leases.expired(engine, now), settings, hostname or "sweeper", now, report)
        _resend_lost(engine, app, settings, now, report)
        prune_gone_workers(engine)
    else:
        report.swept, report.holder = False, cluster_lock.holder(engine, SWEEP_LOCK)
    for submission_id in report.requeued:
        if submission_id not in report.resent and enqueue_submission(
                engine, submission_id, app=app, settings=settings, priority=AGAIN):
            report.resent.append(submission_id)
    return report


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
