"""The course: its assignments (from assignments/), their settings, due dates, extensions, lateness."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.assignment import MANIFEST, Assignment, assignments_root, load_assignment
from grader.errors import GraderError
from web.errors import NotFound, ServiceError
from web.models import STUDENT, AssignmentSettings, Extension, User
from workers.db import as_utc
from workers.models import utcnow

log = logging.getLogger(__name__)
POLICIES = ("best", "last")
DAY = timedelta(days=1)


@dataclass(frozen=True)
class CourseAssignment:
    """An assignment with the course's settings for it."""

    assignment: Assignment
    score_policy: str
    hourly_limit: int

    @property
    def slug(self) -> str:
        """The assignment's slug."""
        return self.assignment.slug


def discover(root: Path | None) -> tuple[dict[str, Assignment], dict[str, str]]:
    """The loadable assignments in course order, and why each broken one is not (an instructor fixes it).

    Unlike grader.assignment.discover, one broken manifest does not take every page down with it.
    """
    root = Path(root or assignments_root())
    found: dict[str, Assignment] = {}
    problems: dict[str, str] = {}
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if (child / MANIFEST).is_file():
            try:
                found[child.name] = load_assignment(child)
            except (GraderError, OSError, ValueError) as exc:
                log.warning("assignment %s is not loadable: %s", child.name, exc)
                problems[child.name] = str(exc)
    return found, problems


def assignments(session: Session, *, root: Path | None, default_policy: str,
                default_limit: int) -> list[CourseAssignment]:
    """Every loadable assignment in course order, with its settings."""
    found, _ = discover(root)
    rows = {s.slug: s for s in session.scalars(select(AssignmentSettings))}
    out = []
    for slug, a in found.items():
        s = rows.get(slug)
        policy = (s.score_policy if s and s.score_policy else None) or default_policy
        limit = s.hourly_limit if s and s.hourly_limit is not None else default_limit
        out.append(CourseAssignment(a, policy, limit))
    return out


def get_assignment(session: Session, slug: str, *, root: Path | None, default_policy: str,
                   default_limit: int) -> CourseAssignment:
    """One assignment by slug, or NotFound."""
    for ca in assignments(session, root=root, default_policy=default_policy, default_limit=default_limit):
        if ca.slug == slug:
            return ca
    raise NotFound(f"No such assignment: {slug}")


def update_settings(session: Session, slug: str, *, score_policy: str, hourly_limit: int | None) -> None:
    """Set an assignment's score policy and hourly limit (None: the service default)."""
    if score_policy not in POLICIES:
        raise ServiceError(f"the score policy is one of {POLICIES}")
    row = session.get(AssignmentSettings, slug) or AssignmentSettings(slug=slug)
    row.score_policy, row.hourly_limit = score_policy, hourly_limit
    session.add(row)
    session.commit()


def extensions_by_user(session: Session, slug: str | None = None) -> dict[tuple[int, str], datetime]:
    """Extended due dates in force (not revoked) by (user id, assignment slug)."""
    q = (select(Extension.user_id, Extension.assignment, Extension.due_at)
         .where(Extension.revoked_at.is_(None)))
    if slug:
        q = q.where(Extension.assignment == slug)
    return {(u, s): as_utc(d) for u, s, d in session.execute(q)}


def due_for(session: Session, user_id: int, a: Assignment) -> datetime | None:
    """This student's due date: an extension's in force, else the assignment's."""
    ext = session.scalar(select(Extension.due_at).where(Extension.user_id == user_id,
                                                        Extension.assignment == a.slug,
                                                        Extension.revoked_at.is_(None)))
    return as_utc(ext) if ext is not None else a.due


def days_late(at: datetime, due: datetime | None) -> int:
    """Whole days (started) after the due date; 0 when on time or there is no due date."""
    if due is None or as_utc(at) <= due:
        return 0
    return math.ceil((as_utc(at) - due) / DAY)


def late_factor(a: Assignment, days: int) -> float:
    """The share of the score kept after `days` late days under the late policy."""
    return max(0.0, 1.0 - a.late.penalty_per_day * days)


def check_accepts(a: Assignment, due: datetime | None, now: datetime | None = None) -> int:
    """Days late of a submission made now; ServiceError past the last day the policy accepts."""
    days = days_late(now or utcnow(), due)
    if days > a.late.max_days_late:
        last = due + timedelta(days=a.late.max_days_late) if due else None
        raise ServiceError(f"{a.title} is closed: the last moment to submit was {last:%Y-%m-%d %H:%M} UTC")
    return days


def find_student(session: Session, username: str) -> User:
    """The student with this username; NotFound for an unknown one, ServiceError for an instructor."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"no such student: {username.strip()!r}; check the username on the roster page")
    if user.role != STUDENT:
        raise ServiceError(f"{user.username} is an instructor: extensions and overrides are for students")
    return user


def grant_extension(session: Session, *, user: User, slug: str, due_at: datetime, reason: str,
                    by: User) -> Extension:
    """Give a student a new due date for one assignment; one in force is revoked by it (both are kept)."""
    if user.role != STUDENT:
        raise ServiceError(f"{user.username} is an instructor: extensions are for students")
    now = utcnow()
    # At most one in force (a partial unique index): the one it replaces is revoked first, in the
    # same transaction, so the list keeps every grant with who ended it.
    session.execute(update(Extension).where(Extension.user_id == user.id, Extension.assignment == slug,
                                            Extension.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_by=by.id))
    row = Extension(user_id=user.id, assignment=slug, due_at=as_utc(due_at), reason=reason, granted_by=by.id,
                    created_at=now)
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:  # another instructor granted one in the same moment
        session.rollback()
        raise ServiceError(f"another extension for {user.username} was granted at the same moment; "
                           "look at the list and grant again if it is not the one you meant") from exc
    return row


def revoke_extension(session: Session, extension_id: int, *, by: User) -> Extension:
    """Revoke an extension: the assignment's own due date counts again; the row stays for the record."""
    row = session.get(Extension, extension_id)
    if row is None:
        raise NotFound(f"No such extension: {extension_id}")
    if row.revoked_at is not None:
        raise ServiceError(f"this extension was already revoked on {as_utc(row.revoked_at):%Y-%m-%d %H:%M} "
                           "UTC; grant a new one if the student needs it")
    row.revoked_at, row.revoked_by = utcnow(), by.id
    session.commit()
    return row


@dataclass(frozen=True)
class ExtensionRow:
    """An extension with its student and the usernames of who granted and who revoked it."""

    extension: Extension
    student: User
    granted_by: str
    revoked_by: str


def list_extensions(session: Session, user_id: int | None = None) -> list[ExtensionRow]:
    """Every extension (or one student's) with its student, newest first; revoked ones included."""
    q = select(Extension, User).join(User, User.id == Extension.user_id).order_by(Extension.id.desc())
    if user_id is not None:
        q = q.where(Extension.user_id == user_id)
    rows = list(session.execute(q))
    staff = ({e.granted_by for e, _ in rows} | {e.revoked_by for e, _ in rows}) - {None}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(staff))).all())
    return [ExtensionRow(e, u, names.get(e.granted_by, ""), names.get(e.revoked_by, "")) for e, u in rows]
