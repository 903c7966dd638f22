"""The submission state machine: claims with leases, fenced finishes, and requeues.

Every transition is one conditional UPDATE, so two workers (or a worker and the sweeper)
racing on the same submission cannot both win, on PostgreSQL or SQLite. The attempt
number written by a claim is the fencing token: a worker whose lease was taken over
can no longer record anything, so a submission is scored at most once.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from workers.models import (
    FAILED,
    FINAL_STATES,
    GRADED,
    QUEUED,
    RUNNING,
    Submission,
    SubmissionEvent,
    utcnow,
)

CLAIMED, DONE, BUSY, GAVE_UP = "claimed", "done", "busy", "gave_up"
S = Submission.__table__


@dataclass(frozen=True)
class Claim:
    """What a claim attempt found: CLAIMED (with the attempt and seed), DONE, BUSY or GAVE_UP."""

    outcome: str
    attempt: int = 0
    seed: int = 0
    assignment: str = ""
    filename: str = ""
    content: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether this worker now holds the lease."""
        return self.outcome == CLAIMED


def owner_name(hostname: str, pid: int | None = None) -> str:
    """The lease owner for a worker process: its Celery hostname and pid."""
    return f"{hostname}/{pid or os.getpid()}"


def _owner_is_dead_here(owner: str | None, hostname: str) -> bool:
    """Whether owner is a process of this worker node (same hostname) that no longer exists."""
    if not owner or "/" not in owner:
        return False
    host, _, pid = owner.rpartition("/")
    if host != hostname or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def record(conn: Connection, submission_id: int, event: str, *, worker: str | None = None,
           attempt: int | None = None, detail: str | None = None) -> None:
    """Append one event to a submission's history."""
    conn.execute(insert(SubmissionEvent.__table__).values(
        submission_id=submission_id, event=event, worker=worker, attempt=attempt, detail=detail,
        at=utcnow()))


def _take(conn: Connection, submission_id: int, condition: Any, owner: str, lease_s: float,
          task_id: str | None, now: datetime) -> bool:
    values = dict(state=RUNNING, lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_s),
                  attempts=S.c.attempts + 1, task_id=task_id, started_at=now, reason=None)
    return conn.execute(update(S).where(S.c.id == submission_id, condition).values(**values)).rowcount == 1


def claim(engine: Engine, submission_id: int, *, owner: str, hostname: str, lease_s: float,
          task_id: str | None = None, max_attempts: int = 3, max_deliveries: int = 0,
          resume: tuple[str, int] | None = None) -> Claim:
    """Take the lease on a submission if nobody live holds it and it is not finished.

    resume=(owner, attempt) lets a retried task take back the lease its earlier try held
    when an infrastructure error kept it from releasing it. Past max_deliveries (0: no
    bound) a submission nobody holds is failed with the last problem its history records:
    infrastructure errors hand their attempt back, so attempts alone never end a loop.
    """
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(S).where(S.c.id == submission_id).values(deliveries=S.c.deliveries + 1))
        free = or_(S.c.state == QUEUED, and_(S.c.state == RUNNING, S.c.lease_expires_at < now))
        if max_deliveries:
            looped = conn.execute(select(S.c.deliveries, S.c.attempts).where(
                S.c.id == submission_id, S.c.deliveries > max_deliveries, free)).first()
            if looped is not None:
                _give_up(conn, submission_id, looped.attempts, owner,
                         reason=_loop_reason(conn, submission_id, looped.deliveries - 1))
                return Claim(GAVE_UP)
        free = and_(S.c.attempts < max_attempts, free)
        taken = _take(conn, submission_id, free, owner, lease_s, task_id, now)
        row = conn.execute(select(S).where(S.c.id == submission_id)).mappings().first()
        if row is None:
            return Claim(DONE)
        resumed = resume is not None and tuple(resume) == (row["lease_owner"], row["attempts"])
        if not taken and row["state"] == RUNNING and (
                resumed or _owner_is_dead_here(row["lease_owner"], hostname)):
            # A pool child of this very worker was killed mid-grading and Celery redelivered
            # its message at once: no need to wait for the lease to expire.
            stolen = and_(S.c.state == RUNNING, S.c.lease_owner == row["lease_owner"],
                          S.c.attempts == row["attempts"], S.c.attempts < max_attempts)
            taken = _take(conn, submission_id, stolen, owner, lease_s, task_id, now)
            if taken:
                record(conn, submission_id, "lease_recovered", worker=owner, attempt=row["attempts"],
                       detail=f"previous owner {row['lease_owner']} died")
                row = conn.execute(select(S).where(S.c.id == submission_id)).mappings().first()
        if taken:
            seed = row["seed"]
            if seed is None:
                seed = secrets.randbits(62)
                conn.execute(update(S).where(S.c.id == submission_id).values(seed=seed))
            record(conn, submission_id, "claimed", worker=owner, attempt=row["attempts"])
            return Claim(CLAIMED, attempt=row["attempts"], seed=seed, assignment=row["assignment"],
                         filename=row["filename"], content=row["content"])
        if row["state"] in FINAL_STATES:
            record(conn, submission_id, "duplicate", worker=owner, detail=f"already {row['state']}")
            return Claim(DONE)
        if row["attempts"] >= max_attempts and (row["state"] == QUEUED or (
                row["lease_expires_at"] is not None and _aware(row["lease_expires_at"]) < now)):
            _give_up(conn, submission_id, row["attempts"], owner)
            return Claim(GAVE_UP)
        record(conn, submission_id, "busy", worker=owner, detail=f"leased by {row['lease_owner']}")
        return Claim(BUSY)


def last_problem(conn: Connection, submission_id: int) -> str | None:
    """The detail of the submission's latest release or stall: why its last try did not finish."""
    E = SubmissionEvent.__table__
    return conn.execute(select(E.c.detail).where(
        E.c.submission_id == submission_id, E.c.event.in_(("released", "requeued")),
        E.c.detail.is_not(None)).order_by(E.c.id.desc()).limit(1)).scalar()


def _loop_reason(conn: Connection, submission_id: int, deliveries: int) -> str:
    problem = last_problem(conn, submission_id) or "none was recorded"
    return (f"grading never finished: the submission reached a worker {deliveries} times without "
            f"a result. The last problem: {problem}. Fix that, then requeue it (the student's "
            "code was not at fault).")


def _aware(value: datetime) -> datetime:
    from workers.db import as_utc

    return as_utc(value)  # type: ignore[return-value]


def _give_up(conn: Connection, submission_id: int, attempts: int, worker: str | None,
             reason: str | None = None) -> None:
    reason = reason or (f"grading did not finish after {attempts} attempts (workers died or "
                        "lost their lease); an instructor can requeue it")
    done = conn.execute(update(S).where(S.c.id == submission_id, S.c.state.in_((QUEUED, RUNNING)))
                        .values(state=FAILED, reason=reason, lease_owner=None, lease_expires_at=None,
                                finished_at=utcnow())).rowcount
    if done:
        record(conn, submission_id, "failed", worker=worker, attempt=attempts, detail=reason)


def _fenced(submission_id: int, owner: str, attempt: int) -> Any:
    return and_(S.c.id == submission_id, S.c.state == RUNNING, S.c.lease_owner == owner,
                S.c.attempts == attempt)


def finish(engine: Engine, submission_id: int, *, owner: str, attempt: int, result: dict[str, Any],
           reason: str | None = None) -> bool:
    """Record a grade result if this worker still holds the lease; False if it lost it."""
    with engine.begin() as conn:
        done = conn.execute(update(S).where(_fenced(submission_id, owner, attempt)).values(
            state=GRADED, result=result, score=result.get("score"), max_score=result.get("max_score"),
            suite_version=result.get("suite_version"), seed=result.get("seed"), reason=reason,
            lease_owner=None, lease_expires_at=None, finished_at=utcnow())).rowcount == 1
        record(conn, submission_id, "graded" if done else "stale_result", worker=owner, attempt=attempt,
               detail=reason if done else "lease lost before the result came; result discarded")
        return done


def fail(engine: Engine, submission_id: int, *, owner: str, attempt: int, reason: str) -> bool:
    """Mark a submission failed (instructor or infrastructure to fix) if the lease is still ours."""
    with engine.begin() as conn:
        done = conn.execute(update(S).where(_fenced(submission_id, owner, attempt)).values(
            state=FAILED, reason=reason, lease_owner=None, lease_expires_at=None,
            finished_at=utcnow())).rowcount == 1
        if done:
            record(conn, submission_id, "failed", worker=owner, attempt=attempt, detail=reason)
        return done


def release(engine: Engine, submission_id: int, *, owner: str, attempt: int, note: str,
            refund: bool = False) -> bool:
    """Hand a claimed submission back to the queue (an infrastructure error, a wrong queue)."""
    values: dict[str, Any] = dict(state=QUEUED, lease_owner=None, lease_expires_at=None, task_id=None)
    if refund:  # not this submission's fault: the claim does not count against it
        values["attempts"] = S.c.attempts - 1
    with engine.begin() as conn:
        done = conn.execute(update(S).where(_fenced(submission_id, owner, attempt))
                            .values(**values)).rowcount == 1
        if done:
            record(conn, submission_id, "released", worker=owner, attempt=attempt, detail=note)
        return done


def release_after_hard_limit(engine: Engine, submission_id: int, *, task_id: str, limit_s: float,
                             max_attempts: int) -> str:
    """The worker's hard time limit cut a grading: requeue it, or fail it after max_attempts.

    The student's own limits are the engine's to enforce (on the job's clock, with a wall
    backstop before this), so reaching this limit means the grader itself stalled: never a
    score. The attempt counts, so a grading that stalls every time ends as an error an
    instructor sees. Returns the new state, or '' when this task no longer held it.
    """
    with engine.connect() as conn:
        row = conn.execute(select(S.c.lease_owner, S.c.attempts).where(
            S.c.id == submission_id, S.c.state == RUNNING, S.c.task_id == task_id)).first()
    if row is None:
        return ""
    note = (f"the grader itself stalled: grading passed the worker's hard time limit of "
            f"{limit_s:g} s (the submission's own limits are counted apart from this)")
    if row.attempts < max_attempts:
        released = release(engine, submission_id, owner=row.lease_owner, attempt=row.attempts,
                           note=note)
        return QUEUED if released else ""
    with engine.begin() as conn:
        _give_up(conn, submission_id, row.attempts, row.lease_owner, reason=(
            f"grading stopped at the worker's hard time limit on each of {row.attempts} "
            f"attempts: {note}; an instructor can requeue it"))
    return FAILED


def expired(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Running submissions whose lease has expired (their worker died or hung)."""
    now = now or utcnow()
    with engine.connect() as conn:
        rows = conn.execute(select(S.c.id, S.c.lease_owner, S.c.attempts)
                            .where(S.c.state == RUNNING, S.c.lease_expires_at < now))
        return [dict(r._mapping) for r in rows]


def requeue_expired(engine: Engine, submission_id: int, *, lease_owner: str | None, attempts: int,
                    max_attempts: int, by: str) -> str:
    """Requeue one expired lease, or fail it after max_attempts; returns the new state or ''."""
    with engine.begin() as conn:
        cond = and_(S.c.id == submission_id, S.c.state == RUNNING, S.c.attempts == attempts,
                    S.c.lease_expires_at < utcnow(),
                    S.c.lease_owner == lease_owner if lease_owner else S.c.lease_owner.is_(None))
        if attempts >= max_attempts:
            still = conn.execute(select(S.c.id).where(cond)).first()
            if still:
                _give_up(conn, submission_id, attempts, by)
                return FAILED
            return ""
        done = conn.execute(update(S).where(cond).values(
            state=QUEUED, lease_owner=None, lease_expires_at=None, task_id=None,
            enqueued_at=None)).rowcount == 1
        if done:
            record(conn, submission_id, "requeued", worker=by, attempt=attempts,
                   detail=f"lease of {lease_owner} expired")
            return QUEUED
        return ""


def state_of(engine: Engine, submission_id: int) -> str | None:
    """A submission's state now, or None where there is no such submission."""
    with engine.connect() as conn:
        return conn.execute(select(S.c.state).where(S.c.id == submission_id)).scalar()


def waiting_too_long(engine: Engine, older_than: datetime) -> list[int]:
    """Queued submissions last sent (or created, if never sent) before older_than: maybe lost."""
    with engine.connect() as conn:
        rows = conn.execute(select(S.c.id).where(
            S.c.state == QUEUED, func.coalesce(S.c.enqueued_at, S.c.created_at) < older_than)
            .order_by(S.c.id))
        return [r.id for r in rows]
