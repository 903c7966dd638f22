"""Score overrides: an instructor's score for a student's assignment, with a comment and an audit trail.

The table is append-only (web.models.overrides): setting or removing an override adds a row, and
the newest row of a (student, assignment) is in force; a row with score None means "removed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.errors import ServiceError
from web.models import STUDENT, ScoreOverride, User
from web.services.course import CourseAssignment
from workers.db import as_utc

MAX_COMMENT = 1000


@dataclass(frozen=True)
class Override:
    """The override in force for one student and assignment."""

    score: float
    comment: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Change:
    """One line of the audit trail: who changed which override when, from what to what, and why."""

    assignment: str
    at: datetime
    by: str
    old: float | None
    new: float | None
    comment: str


def _names(session: Session, rows: list[ScoreOverride]) -> dict[int, str]:
    ids = {r.by_id for r in rows if r.by_id is not None}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def _rows(session: Session, user_ids: list[int] | None = None) -> list[ScoreOverride]:
    q = select(ScoreOverride).order_by(ScoreOverride.id)
    if user_ids is not None:
        q = q.where(ScoreOverride.user_id.in_(user_ids))
    return list(session.scalars(q))


def in_force(session: Session, user_ids: list[int] | None = None) -> dict[tuple[int, str], Override]:
    """The overrides in force by (user id, assignment slug): each key's newest row, unless it removed it."""
    rows = _rows(session, user_ids)
    names = _names(session, rows)
    newest = {(r.user_id, r.assignment): r for r in rows}  # ordered by id: the last one wins
    return {key: Override(r.score, r.comment, names.get(r.by_id, ""), as_utc(r.created_at))
            for key, r in newest.items() if r.score is not None}


def trail(session: Session, user_id: int) -> list[Change]:
    """Every change to a student's overrides, newest first, each with the score it replaced."""
    rows = _rows(session, [user_id])
    names = _names(session, rows)
    before: dict[str, float | None] = {}
    out = []
    for r in rows:
        out.append(Change(r.assignment, as_utc(r.created_at), names.get(r.by_id, ""),
                          before.get(r.assignment), r.score, r.comment))
        before[r.assignment] = r.score
    return out[::-1]


def _check(student: User, ca: CourseAssignment, score: float | None, comment: str) -> str:
    if student.role != STUDENT:
        raise ServiceError(f"{student.username} is an instructor: overrides are for students")
    comment = comment.strip()
    if not comment:
        raise ServiceError("write a comment that says why the score changes: it is kept in the audit trail")
    if len(comment) > MAX_COMMENT:
        raise ServiceError(f"the comment is {len(comment)} characters; keep it under {MAX_COMMENT}")
    points = ca.assignment.points
    if score is not None and not (math.isfinite(score) and 0 <= score <= points):
        raise ServiceError(f"the score must be between 0 and {points:g} (the points of "
                           f"{ca.assignment.title}); {score:g} is not")
    return comment


def set_override(session: Session, *, student: User, ca: CourseAssignment, score: float | None, comment: str,
                 by: User) -> ScoreOverride:
    """Override a student's score on an assignment (None removes the override); the comment is required."""
    comment = _check(student, ca, score, comment)
    current = in_force(session, [student.id]).get((student.id, ca.slug))
    if score is None and current is None:
        raise ServiceError(f"{student.username} has no override on {ca.assignment.title} to remove")
    row = ScoreOverride(user_id=student.id, assignment=ca.slug, score=score, comment=comment, by_id=by.id)
    session.add(row)
    session.commit()
    return row
