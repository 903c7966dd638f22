"""Submissions: validate an upload, apply the late policy and the hourly limit, store, enqueue."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import nbformat
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from grader.errors import InvalidSubmission
from grader.results import GradeResult
from grader.submission import NOTEBOOK, read_submission
from web import filenames, outage
from web.errors import IdempotencyConflict, NotFound, RateLimited, ServiceError, UploadRejected
from web.models import IdempotencyKey, User
from web.services.course import CourseAssignment, check_accepts, due_for
from workers.db import as_utc
from workers.models import FINAL_STATES, Submission, utcnow
from workers.service import create_submission

Enqueue = Callable[[int], object]
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{8,64}")
log = logging.getLogger(__name__)


def clean_filename(name: str) -> str:
    """The student's name for the file (web.filenames); UploadRejected when it cannot be kept."""
    try:
        return filenames.clean_filename(name)
    except filenames.BadFileName as exc:
        raise UploadRejected(str(exc)) from exc


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
           max_bytes: int, enqueue: Enqueue, now: datetime | None = None,
           idempotency_key: tuple[str, str] | None = None) -> Submission:
    """Store a checked submission, commit, then enqueue it; UploadRejected leaves nothing stored.

    idempotency_key, (key, request hash), is stored in the same transaction: a concurrent
    upload with the same key fails the commit with IntegrityError and stores nothing.
    """
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
        if idempotency_key:
            session.add(IdempotencyKey(user_id=user.id, key=idempotency_key[0],
                                       request_hash=idempotency_key[1], submission_id=sub.id))
        session.commit()  # the database first: it is the source of truth
    except Exception:
        session.rollback()
        raise
    try:
        enqueue(sub.id)  # the broker second; when it is away the workers' sweeper sends it later
    except Exception as exc:
        if not outage.is_database_down(exc):
            raise
        # Committed already: a 503 now would make the client send it again. The sweeper sends it.
        log.warning("submission %s stored, but the database went away before it was enqueued: %s",
                    sub.id, exc)
    return sub


def request_hash(slug: str, filename: str, data: bytes) -> str:
    """SHA-256 of what an upload sends, to tell a retry from a different upload under the same key."""
    h = hashlib.sha256()
    for part in (slug.encode(), clean_filename(filename).encode(), data):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def by_idempotency_key(session: Session, user: User, key: str, digest: str) -> Submission | None:
    """The submission an earlier upload with this key made, or None; IdempotencyConflict if it differs."""
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user.id,
                                                      IdempotencyKey.key == key))
    if row is None:
        return None
    if row.request_hash != digest:
        raise IdempotencyConflict(f"this Idempotency-Key was already used for a different upload "
                                  f"(submission {row.submission_id}); send a new key with a new upload")
    return session.get(Submission, row.submission_id)


def submit_once(session: Session, *, key: str, user: User, course: CourseAssignment, filename: str,
                data: bytes, **kwargs: Any) -> tuple[Submission, bool]:
    """submit() at most once per (user, key): a repeat returns the first submission and True."""
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise UploadRejected("the Idempotency-Key header must be 8 to 64 letters, digits or -_.:; "
                             "send a fresh random one (a UUID) with each new upload")
    digest = request_hash(course.assignment.slug, filename, data)
    earlier = by_idempotency_key(session, user, key, digest)
    if earlier is not None:
        return earlier, True
    try:
        return submit(session, user=user, course=course, filename=filename, data=data,
                      idempotency_key=(key, digest), **kwargs), False
    except IntegrityError:  # a concurrent try with the same key committed first
        earlier = by_idempotency_key(session, user, key, digest)
        if earlier is None:
            raise
        return earlier, True


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


# What a student reads of a failed grading. The reason itself is for staff: it can name
# the course's files (a manifest's path, an internal error's text) and is theirs to act on.
STUDENT_FAILED = ("a problem on the course's side, not in your code, stopped the grading; "
                  "the course staff can see what it was")


def status(sub: Submission, notice: str | None = None, *, staff: bool = False) -> dict[str, Any]:
    """The JSON the status poll shows: state, the score once graded, and a notice while it cannot
    be; a failure's reason only for staff (students read STUDENT_FAILED)."""
    reason = (sub.reason if staff else STUDENT_FAILED) if sub.state == "failed" else None
    return {"id": sub.id, "state": sub.state, "done": sub.state in FINAL_STATES,
            "score": sub.score, "max_score": sub.max_score, "reason": reason, "notice": notice}


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
