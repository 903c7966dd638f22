"""Long work of the web process run in a thread, its progress (done of total) recorded in its row.

A job is a BackgroundJob row and a thread of the process that started it. The work gets its own
database session (in an app context of its own) and a `Progress` whose updates commit on a
separate connection, so the work's own pending rows are committed only with its result, in one
transaction. An exception marks the job failed with a message; a job whose process died stays
"running" in its row and reads as interrupted once its row has not moved for STALE_AFTER.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from web import db
from web.errors import NotFound, ServiceError
from web.models import BackgroundJob, User
from workers.db import as_utc
from workers.models import utcnow

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"
# Progress is written at least this often while work goes on, so a silent row means a dead process.
HEARTBEAT_S = 2.0
STALE_AFTER = timedelta(minutes=2)

Work = Callable[[Session, "Progress"], dict[str, Any]]


@dataclass
class Progress:
    """Records how many of the job's items are done, committing every few items or seconds."""

    job_id: int
    every: int = 5
    _last_n: int = 0
    _last_t: float = 0.0

    def step(self, done: int) -> None:
        """Note that `done` items are finished; written when enough items or time have passed."""
        if done - self._last_n < self.every and time.monotonic() - self._last_t < HEARTBEAT_S:
            return
        self._last_n, self._last_t = done, time.monotonic()
        # Its own short transaction: the work's session holds rows that must commit only at the end.
        with db.engine().begin() as conn:
            conn.execute(update(BackgroundJob).where(BackgroundJob.id == self.job_id)
                         .values(done=done, updated_at=utcnow()))


def start(app: Flask, session: Session, *, kind: str, total: int, user: User, work: Work) -> BackgroundJob:
    """Record a running job and start its work in a thread of this process; the job's row."""
    now = utcnow()
    job = BackgroundJob(kind=kind, state=RUNNING, total=total, done=0, message="", created_by=user.id,
                        created_at=now, updated_at=now)
    session.add(job)
    session.commit()
    thread = threading.Thread(target=_run, args=(app, job.id, work), name=f"job-{job.id}", daemon=True)
    thread.start()
    return job


def _run(app: Flask, job_id: int, work: Work) -> None:
    """The thread's body: the work in its own app context and session, then its result or its failure."""
    with app.app_context():
        session = db.session()
        try:
            result = work(session, Progress(job_id))
            job = session.get(BackgroundJob, job_id)
            job.state, job.done, job.result = DONE, job.total, result
            job.finished_at = job.updated_at = utcnow()
            session.commit()  # the work's rows and the job's "done" together, or neither
        except Exception as exc:  # any failure must reach the page, not die with the thread
            session.rollback()
            app.logger.exception("background job %s failed", job_id)
            _fail(session, job_id, exc)


def _fail(session: Session, job_id: int, exc: Exception) -> None:
    """Mark the job failed with a message the instructor can act on (internals stay in the log)."""
    reason = str(exc) if isinstance(exc, ServiceError) else f"an internal error ({type(exc).__name__})"
    job = session.get(BackgroundJob, job_id)
    job.state, job.finished_at, job.updated_at = FAILED, utcnow(), utcnow()
    job.message = f"{reason}; nothing was stored. Try again, and tell the site's administrator if it recurs."
    session.commit()


def get(session: Session, job_id: int, user: User) -> BackgroundJob:
    """The job, if this user started it; NotFound otherwise (another's job reads as no job at all)."""
    job = session.get(BackgroundJob, job_id)
    if job is None or job.created_by != user.id:
        raise NotFound(f"No such job: {job_id}")
    return job


def state_of(job: BackgroundJob) -> str:
    """The job's state as users see it: a "running" row that stopped moving was interrupted."""
    if job.state == RUNNING and utcnow() - as_utc(job.updated_at) > STALE_AFTER:
        return INTERRUPTED
    return job.state


def progress(job: BackgroundJob) -> dict[str, Any]:
    """What a progress poll shows: state, done of total, and a message when it failed."""
    state = state_of(job)
    message = job.message
    if state == INTERRUPTED:
        message = ("the work stopped before it finished (the web service restarted); nothing was "
                   "stored. Start it again.")
    return dict(id=job.id, kind=job.kind, state=state, done=job.done, total=job.total, message=message,
                finished=state != RUNNING)
