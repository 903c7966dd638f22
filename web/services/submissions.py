"""Submissions: validate an upload, apply the late policy and the hourly limit, store, enqueue."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

import nbformat
from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from grader.errors import InvalidSubmission
from grader.results import GradeResult
from grader.submission import NOTEBOOK, read_submission
from web.errors import NotFound, RateLimited, ServiceError, UploadRejected
from web.models import User
from web.services.course import CourseAssignment, check_accepts, due_for
from workers.db import as_utc
from workers.models import FINAL_STATES, Submission, utcnow
from workers.service import create_submission

Enqueue = Callable[[int], object]


def clean_filename(name: str) -> str:
    """The last path component only, at most 200 characters (shown escaped, never trusted)."""
    base = PurePath(name.replace("\\", "/")).name.strip()
    return (base or "submission")[-200:]


def validate_upload(filename: str, data: bytes, max_bytes: int) -> None:
    """Check the file by content with the engine, and a notebook with nbformat; UploadRejected if bad."""
    try:
        sub = read_submission(filename, data, max_bytes)
    except InvalidSubmission as exc:
        raise UploadRejected(str(exc)) from exc
    if sub.kind == NOTEBOOK:
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
        except (nbformat.ValidationError, json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise UploadRejected(f"this is not a valid Jupyter notebook ({str(exc).splitlines()[0][:200]}); "
                                 "save it again from Jupyter and resubmit") from exc


def recent_count(session: Session, user: User, slug: str, now: datetime) -> int:
    """Submissions by user to slug in the hour before now."""
    return session.scalar(select(func.count()).select_from(Submission).where(
        Submission.owner == str(user.id), Submission.assignment == slug,
        Submission.created_at >= now - timedelta(hours=1))) or 0


def submit(session: Session, *, user: User, course: CourseAssignment, filename: str, data: bytes,
           max_bytes: int, enqueue: Enqueue, now: datetime | None = None) -> Submission:
    """Store a checked submission, commit, then enqueue it; UploadRejected leaves nothing stored."""
    now = now or utcnow()
    filename = clean_filename(filename)
    validate_upload(filename, data, max_bytes)
    a = course.assignment
    if not user.is_instructor:
        try:
            check_accepts(a, due_for(session, user.id, a), now)
        except ServiceError as exc:
            raise UploadRejected(str(exc)) from exc
        if course.hourly_limit and recent_count(session, user, a.slug, now) >= course.hourly_limit:
            raise RateLimited(f"you have made {course.hourly_limit} submissions to {a.title} in the last "
                              "hour, the most allowed; try again later")
    try:
        sub = create_submission(session, assignment=a.slug, filename=filename, content=data,
                                owner=str(user.id))
        session.commit()  # the database first: it is the source of truth
    except Exception:
        session.rollback()
        raise
    enqueue(sub.id)  # the broker second; when it is away the workers' sweeper sends it later
    return sub


def get_submission(session: Session, submission_id: int, user: User) -> Submission:
    """A submission the user may see (their own, or any for an instructor), or NotFound."""
    sub = session.get(Submission, submission_id)
    if sub is None or (not user.is_instructor and sub.owner != str(user.id)):
        raise NotFound(f"No such submission: {submission_id}")
    return sub


def submissions_of(session: Session, user: User, slug: str | None = None) -> list[Submission]:
    """A user's submissions, newest first, without their file contents."""
    q = (select(Submission).options(defer(Submission.content), defer(Submission.result))
         .where(Submission.owner == str(user.id)).order_by(Submission.id.desc()))
    if slug:
        q = q.where(Submission.assignment == slug)
    return list(session.scalars(q))


def submissions_for_assignment(session: Session, slug: str) -> list[Submission]:
    """Every submission to an assignment, newest first, without contents."""
    q = select(Submission).options(defer(Submission.content), defer(Submission.result))
    return list(session.scalars(q.where(Submission.assignment == slug).order_by(Submission.id.desc())))


def status(sub: Submission) -> dict[str, Any]:
    """The JSON the status poll shows: state, and the score once graded."""
    return {"id": sub.id, "state": sub.state, "done": sub.state in FINAL_STATES,
            "score": sub.score, "max_score": sub.max_score,
            "reason": sub.reason if sub.state == "failed" else None}


def student_feedback(sub: Submission, due: datetime | None,
                     now: datetime | None = None) -> dict[str, Any] | None:
    """What the student may see of the result (hidden tests withheld), or None before grading."""
    if not sub.result:
        return None
    past_due = due is not None and (now or utcnow()) > due
    return GradeResult.from_dict(sub.result).for_student(past_due=past_due)


def submitted_late(session: Session, sub: Submission, course: CourseAssignment) -> int:
    """Days late this submission was made (by its owner's due date)."""
    from web.services.course import days_late

    owner = int(sub.owner) if sub.owner and sub.owner.isdigit() else -1
    return days_late(as_utc(sub.created_at), due_for(session, owner, course.assignment))
