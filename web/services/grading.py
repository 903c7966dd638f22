"""Score history and regrades: each grading the service sees is kept, with its tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.errors import NotFound, ServiceError
from web.models import GradeRecord, TestOutcome
from workers.db import as_utc
from workers.models import FINAL_STATES, QUEUED, RUNNING, Submission

Requeue = Callable[[int], bool]


def record_grading(session: Session, sub: Submission) -> GradeRecord | None:
    """Keep the submission's current grading in the history, once; None if it is not graded."""
    if sub.state not in FINAL_STATES or sub.finished_at is None:
        return None
    finished = as_utc(sub.finished_at)
    for rec in session.scalars(select(GradeRecord).where(GradeRecord.submission_id == sub.id)):
        if as_utc(rec.graded_at) == finished:
            return rec
    rec = GradeRecord(submission_id=sub.id, score=sub.score, max_score=sub.max_score,
                      suite_version=sub.suite_version, seed=sub.seed, state=sub.state, graded_at=finished)
    for t in (sub.result or {}).get("tests", []):
        rec.tests.append(TestOutcome(name=str(t.get("name", ""))[:300], suite=t.get("suite", "public"),
                                     visibility=t.get("visibility", "visible"),
                                     points=float(t.get("points", 0)),
                                     max_points=float(t.get("max_points", 0)),
                                     passed=bool(t.get("passed"))))
    session.add(rec)
    try:
        session.commit()
    except IntegrityError:  # another request recorded the same grading first
        session.rollback()
        return None
    return rec


def history(session: Session, submission_id: int) -> list[GradeRecord]:
    """Every recorded grading of a submission, oldest first."""
    return list(session.scalars(select(GradeRecord).where(GradeRecord.submission_id == submission_id)
                                .order_by(GradeRecord.graded_at)))


def regrade(session: Session, submission_id: int, *, requeue: Requeue) -> bool:
    """Keep the current grading in the history and put the submission back in its queue (same seed)."""
    sub = session.get(Submission, submission_id)
    if sub is None:
        raise NotFound(f"No such submission: {submission_id}")
    if sub.state in (QUEUED, RUNNING):
        raise ServiceError(f"submission {submission_id} is {sub.state} already")
    record_grading(session, sub)
    session.commit()
    return requeue(submission_id)


def regrade_assignment(session: Session, slug: str, *, requeue: Requeue) -> int:
    """Regrade every finished submission of an assignment; how many were requeued."""
    ids = list(session.scalars(select(Submission.id).where(Submission.assignment == slug,
                                                           Submission.state.in_(FINAL_STATES))))
    done = 0
    for submission_id in ids:
        try:
            done += bool(regrade(session, submission_id, requeue=requeue)) or 0
        except ServiceError:
            continue
    return done


def assignment_status(session: Session, slug: str) -> dict[str, Any]:
    """What the assignment page's poll watches: its submissions' states and newest finish; done when
    none is queued or running (so the page stops asking)."""
    states = Counter(session.scalars(select(Submission.state).where(Submission.assignment == slug)))
    last = session.scalar(select(func.max(Submission.finished_at)).where(Submission.assignment == slug))
    pending = states[QUEUED] + states[RUNNING]
    return {"slug": slug, "pending": pending, "done": pending == 0, "states": dict(sorted(states.items())),
            "last_finished": as_utc(last).isoformat() if last else None}
