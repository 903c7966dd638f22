"""The Celery task: thin, it hands the submission id to `workers.grading.grade_one`."""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from billiard.exceptions import TimeLimitExceeded
from celery import Task

from workers.celery_app import app, settings_of
from workers.db import get_engine
from workers.grading import InfrastructureError, Job, grade_one
from workers.leases import owner_name
from workers.service import AGAIN, mark_sent

log = logging.getLogger(__name__)


OUTAGE_WAIT_S = float(os.environ.get("TORCHGRADE_OUTAGE_WAIT_S", 60.0))
DATABASE_AWAY = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                 sqlalchemy.exc.DisconnectionError)


def wait_for_database(engine: Any, max_s: float) -> bool:
    """Poll the database (SELECT 1, at 0.5 s doubling to 5 s) until it answers; False
    when it did not within max_s."""
    end, pause = time.monotonic() + max(max_s, 0.0), 0.5
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
            return True
        except DATABASE_AWAY:
            if time.monotonic() + pause > end:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def backoff_s(retries: int, base: float | None = None) -> float:
    """Exponential backoff with jitter: base, 2 base, 4 base ... capped at 5 minutes."""
    base = float(os.environ.get("TORCHGRADE_RETRY_BASE_S", 2.0)) if base is None else base
    return min(300.0, base * 2 ** retries) * random.uniform(0.8, 1.2)


class GradeTask(Task):
    """On a hard time limit (the pool child is gone by then), requeue the grading or fail it."""

    max_retries = 8

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """A hard time limit is the grader's stall, never a score: grade it again (bounded by
        max_attempts); every other failure is already in the database."""
        if not isinstance(exc, TimeLimitExceeded) or not args:
            return
        from grader.assignment import find
        from workers.leases import QUEUED, release_after_hard_limit
        from workers.service import _slug_of, hard_limit_s, send

        settings = settings_of(self.app)
        engine = get_engine(settings.database_url)
        try:
            assignment = find(_slug_of(engine, args[0]))
            state = release_after_hard_limit(engine, args[0], task_id=task_id,
                                             limit_s=hard_limit_s(assignment, settings),
                                             max_attempts=settings.max_attempts)
            if state == QUEUED:
                log.warning("submission %s stalled the grader past its hard time limit; graded "
                            "again", args[0])
                send(self.app, args[0], assignment, settings, priority=AGAIN)
        except Exception as err:  # the lease expires and the sweeper takes over
            log.warning("could not requeue submission %s after its hard time limit: %s", args[0], err)


@app.task(bind=True, base=GradeTask, name="workers.grade")
def grade(self: GradeTask, submission_id: int, resume: list[Any] | None = None) -> str:
    """Grade one submission by id; infrastructure errors retry with backoff."""
    settings = settings_of(self.app)
    hostname = self.request.hostname or "local"
    queues = tuple(os.environ.get("TORCHGRADE_WORKER_QUEUE", "cpu,gpu").split(","))
    job = Job(hostname=hostname, owner=owner_name(hostname), queues=queues, task_id=self.request.id)
    started = time.monotonic()
    engine = get_engine(settings.database_url)
    try:
        return grade_one(engine, submission_id, job=job, settings=settings,
                         app=self.app, resume=tuple(resume) if resume else None)
    except InfrastructureError as exc:
        countdown = backoff_s(self.request.retries)
        if isinstance(exc.cause, DATABASE_AWAY):
            # Waiting here, not in a retry message: this pool process takes no more work
            # while the database is away (each message it took became a retry: 461 in an
            # 8 s outage), and goes on as soon as it answers.
            hard = (self.request.timelimit or (None, None))[0] or 0
            budget = min(OUTAGE_WAIT_S, hard - (time.monotonic() - started) - 5) if hard else OUTAGE_WAIT_S
            if wait_for_database(engine, budget):
                countdown = random.uniform(0, 1)
        log.warning("submission %s: %s; retry %s in %.0f s", submission_id, exc,
                    self.request.retries + 1, countdown)
        mark_sent(engine, submission_id, delay_s=countdown)
        raise self.retry(exc=exc, kwargs={"resume": list(exc.resume) if exc.resume else None},
                         countdown=countdown, priority=AGAIN) from exc
