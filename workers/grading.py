"""Grade one submission by id: route, claim, run the engine, record. The task calls this.

Errors sort into three kinds:
- the student's (their code raised, hung, broke a limit): the engine returns them as a
  result, and they are recorded like any score, never retried;
- the instructor's (InvalidAssignment) or a bug: the submission is failed with the reason;
- infrastructure (database or broker away, a sandbox layer missing on this node, a sandbox
  the machine starved or froze: grader.errors.InfrastructureFault): the lease
  is handed back and the caller retries with backoff (`INFRA_ERRORS`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from sqlalchemy import select

from grader.assignment import Assignment, find
from grader.errors import InfrastructureFault, InvalidAssignment, SandboxUnavailable
from workers import leases
from workers.config import Settings
from workers.models import Submission
from workers.service import lease_s, send

log = logging.getLogger(__name__)

INFRA_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    SandboxUnavailable,
    InfrastructureFault,  # the sandbox got no CPU for several times its limit, or was frozen
)

# What grade_one reports back (also the task's return value, for logs).
GRADED, DUPLICATE, BUSY, REROUTED, FAILED, GAVE_UP, LOST = (
    "graded", "duplicate", "busy", "rerouted", "failed", "gave_up", "lease_lost")


class InfrastructureError(Exception):
    """An infrastructure error during grading, with the lease to resume on retry."""

    def __init__(self, cause: BaseException, resume: tuple[str, int] | None) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.resume = resume


@dataclass(frozen=True)
class Job:
    """Who is grading: the worker's identity and the queue it consumes."""

    hostname: str
    owner: str
    queues: tuple[str, ...]
    task_id: str | None = None


def _slug(engine: Any, submission_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(Submission.assignment).where(Submission.id == submission_id)).scalar()


def disk_name(filename: str) -> str:
    """The name a submission is written under for grading: `submission` and its suffix.

    The student's name stays in the database and on every page; on disk it would have to
    fit the file system (150 x "e-acute" is 300 bytes: "File name too long") and hold no
    NUL or slash. The engine reads the kind from the suffix, so that is kept (ASCII).
    """
    suffix = Path(filename.replace("\x00", "")).suffix
    suffix = "".join(c for c in suffix[1:] if c.isascii() and c.isalnum())[:16]
    return f"submission.{suffix}" if suffix else "submission"


def _run_engine(claim: leases.Claim, assignment: Assignment) -> dict[str, Any]:
    from grader.engine import SERVICE, grade

    with tempfile.TemporaryDirectory(prefix="torchgrade-") as tmp:
        path = Path(tmp) / disk_name(claim.filename)
        path.write_bytes(claim.content)
        return grade(path, assignment, mode=SERVICE, seed=claim.seed).to_dict()


def grade_one(engine: Any, submission_id: int, *, job: Job, settings: Settings, app: Any,
              resume: tuple[str, int] | None = None) -> str:
    """Grade a submission exactly once; raises InfrastructureError for the caller to retry."""
    try:
        slug = _slug(engine, submission_id)
    except INFRA_ERRORS as exc:
        raise InfrastructureError(exc, resume) from exc
    if slug is None:
        return DUPLICATE  # deleted meanwhile: nothing to do
    try:
        assignment = find(slug)
    except InvalidAssignment as exc:
        return _fail_unclaimed(engine, submission_id, job, settings, f"assignment problem: {exc}")
    if assignment.device not in job.queues:
        # Defence in depth: a GPU exercise that reached a CPU worker is sent on, never graded here.
        send(app, submission_id, assignment, settings)
        log.warning("submission %s needs a %s worker; resent to that queue", submission_id,
                    assignment.device)
        return REROUTED
    try:
        claim = leases.claim(engine, submission_id, owner=job.owner, hostname=job.hostname,
                             lease_s=lease_s(assignment, settings), task_id=job.task_id,
                             max_attempts=settings.max_attempts,
                             max_deliveries=settings.max_deliveries, resume=resume)
    except INFRA_ERRORS as exc:
        raise InfrastructureError(exc, resume) from exc
    if not claim.ok:
        return {leases.DONE: DUPLICATE, leases.BUSY: BUSY, leases.GAVE_UP: GAVE_UP}[claim.outcome]
    held = (job.owner, claim.attempt)
    try:
        result = _run_engine(claim, assignment)
        done = leases.finish(engine, submission_id, owner=job.owner, attempt=claim.attempt, result=result)
    except INFRA_ERRORS as exc:
        _release_quietly(engine, submission_id, job, claim.attempt, exc)
        raise InfrastructureError(exc, held) from exc
    except InvalidAssignment as exc:
        leases.fail(engine, submission_id, owner=job.owner, attempt=claim.attempt,
                    reason=f"assignment problem (an instructor must fix it): {exc}")
        return FAILED
    except Exception as exc:  # a bug of ours: fail it visibly rather than loop on it
        log.exception("grading submission %s crashed", submission_id)
        leases.fail(engine, submission_id, owner=job.owner, attempt=claim.attempt,
                    reason=f"internal error while grading: {type(exc).__name__}: {exc}")
        return FAILED
    return GRADED if done else LOST


def _release_quietly(engine: Any, submission_id: int, job: Job, attempt: int, exc: BaseException) -> None:
    try:
        leases.release(engine, submission_id, owner=job.owner, attempt=attempt, refund=True,
                       note=f"infrastructure error, will retry: {type(exc).__name__}: {exc}")
    except INFRA_ERRORS:
        pass  # the retry resumes the lease, or the sweeper requeues it when it expires


def _fail_unclaimed(engine: Any, submission_id: int, job: Job, settings: Settings, reason: str) -> str:
    claim = leases.claim(engine, submission_id, owner=job.owner, hostname=job.hostname,
                         lease_s=settings.lease_grace_s, task_id=job.task_id,
                         max_attempts=settings.max_attempts)
    if claim.ok:
        leases.fail(engine, submission_id, owner=job.owner, attempt=claim.attempt, reason=reason)
        return FAILED
    return DUPLICATE
