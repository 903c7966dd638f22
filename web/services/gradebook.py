"""The gradebook: students x assignments under each assignment's score policy, late policy and overrides."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.errors import ServiceError
from web.models import User
from web.services import overrides
from web.services.course import CourseAssignment, days_late, extensions_by_user, late_factor
from web.services.overrides import Override
from workers.db import as_utc
from workers.models import GRADED, Submission


@dataclass(frozen=True)
class Cell:
    """One student's score on one assignment: an override in force, else the chosen submission after
    the late penalty (graded); an override may stand without any graded submission."""

    score: float
    max_score: float
    raw_score: float | None
    days_late: int
    submission_id: int | None
    submissions: int
    graded: float | None = None
    override: Override | None = None


@dataclass
class Gradebook:
    """Rows of students, columns of assignments, and the cells between."""

    students: list[User]
    assignments: list[CourseAssignment]
    cells: dict[tuple[int, str], Cell] = field(default_factory=dict)
    totals: dict[int, float] = field(default_factory=dict)

    def total(self, user: User) -> float:
        """A student's total over the assignments."""
        return self.totals.get(user.id, 0.0)

    @property
    def max_total(self) -> float:
        """The most points the course gives."""
        return sum(ca.assignment.points for ca in self.assignments)


def _rows(session: Session, slugs: list[str]) -> list[tuple[int, str, str, float, float, datetime]]:
    q = (select(Submission.id, Submission.owner, Submission.assignment, Submission.score,
                Submission.max_score, Submission.created_at)
         .where(Submission.state == GRADED, Submission.assignment.in_(slugs)).order_by(Submission.id))
    return list(session.execute(q))


def _graded(session: Session, course: list[CourseAssignment], students: list[User],
            ext: dict[tuple[int, str], datetime]) -> dict[tuple[int, str], Cell]:
    """The chosen graded submission of each (student, assignment); best keeps the highest penalised score."""
    by_slug = {ca.slug: ca for ca in course}
    ids = {str(u.id): u.id for u in students}
    cells: dict[tuple[int, str], Cell] = {}
    counts: dict[tuple[int, str], int] = {}
    for sub_id, owner, slug, score, max_score, created in _rows(session, list(by_slug)):
        if owner not in ids or score is None:
            continue
        uid, ca = ids[owner], by_slug[slug]
        days = days_late(as_utc(created), ext.get((uid, slug), ca.assignment.due))
        penalised = score * late_factor(ca.assignment, days)
        cell = Cell(score=penalised, max_score=max_score or ca.assignment.points, raw_score=score,
                    days_late=days, submission_id=sub_id, submissions=0, graded=penalised)
        key = (uid, slug)
        counts[key] = counts.get(key, 0) + 1
        old = cells.get(key)
        if old is None or ca.score_policy == "last" or cell.score > old.score:
            cells[key] = cell
    return {key: replace(cell, submissions=counts[key]) for key, cell in cells.items()}


def build(session: Session, course: list[CourseAssignment], students: list[User],
          ext: dict[tuple[int, str], datetime] | None = None) -> Gradebook:
    """The gradebook of these students under each assignment's policies, overrides in force applied.

    ext: the extensions in force (course.extensions_by_user), when the caller has read them already.
    """
    book = Gradebook(students=students, assignments=course)
    book.cells = _graded(session, course, students, extensions_by_user(session) if ext is None else ext)
    points = {ca.slug: ca.assignment.points for ca in course}
    ids = {u.id for u in students}
    # A long IN list is slower (and SQLite caps its parameters) than reading the few overrides there are.
    forced = overrides.in_force(session, list(ids) if len(ids) <= 500 else None)
    for (uid, slug), ov in forced.items():
        if uid not in ids or slug not in points:
            continue
        base = book.cells.get((uid, slug)) or Cell(score=0.0, max_score=points[slug], raw_score=None,
                                                   days_late=0, submission_id=None, submissions=0)
        book.cells[(uid, slug)] = replace(base, score=ov.score, override=ov)
    for (uid, _), cell in book.cells.items():
        book.totals[uid] = book.totals.get(uid, 0.0) + cell.score
    return book


SORT_TEXT = ("username", "name")
SORT_NUMBERS = ("total",)


def sort_keys(book: Gradebook) -> list[str]:
    """The columns the gradebook sorts by: username, name, total and each assignment's slug."""
    return [*SORT_TEXT, *SORT_NUMBERS, *[ca.slug for ca in book.assignments]]


def _value(book: Gradebook, user: User, sort: str) -> str | float | None:
    if sort in SORT_TEXT:
        return (getattr(user, sort) or "").casefold() or None
    if sort == "total":
        return book.total(user)
    cell = book.cells.get((user.id, sort))
    return cell.score if cell else None


def view(book: Gradebook, *, q: str = "", sort: str = "username", descending: bool = False) -> list[User]:
    """The students matching q (in username, name or email), sorted by a column; blanks always last.

    ServiceError for a column the gradebook does not have (an old link to a removed assignment).
    """
    if sort not in sort_keys(book):
        raise ServiceError(f"the gradebook has no column {sort!r} to sort by; sorted by username instead")
    needle = q.strip().casefold()
    rows = [u for u in book.students
            if not needle or any(needle in (v or "").casefold() for v in (u.username, u.name, u.email))]
    rows.sort(key=lambda u: u.username.casefold())  # ties keep username order (the sort below is stable)
    values = {u.id: _value(book, u, sort) for u in rows}
    present = sorted((u for u in rows if values[u.id] is not None), key=lambda u: values[u.id],
                     reverse=descending)
    return present + [u for u in rows if values[u.id] is None]


def safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def override_note(slug: str, cell: Cell) -> str:
    """An override in words for a CSV cell: what it is, what was graded, who set it and why."""
    ov = cell.override
    assert ov is not None
    graded = f"{cell.graded:.2f}" if cell.graded is not None else "none"
    return f"{slug}: {ov.score:.2f} (graded {graded}) by {ov.by} on {ov.at:%Y-%m-%d}: {ov.comment}"


def to_csv(book: Gradebook, students: list[User] | None = None) -> str:
    """The gradebook as CSV: username, name, one column a assignment, total, and the overrides in words."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["username", "name", *[ca.slug for ca in book.assignments], "total", "overrides"])
    for u in book.students if students is None else students:
        cells = [book.cells.get((u.id, ca.slug)) for ca in book.assignments]
        notes = [override_note(ca.slug, c) for ca, c in zip(book.assignments, cells, strict=True)
                 if c and c.override]
        w.writerow([safe_cell(u.username), safe_cell(u.name), *[f"{c.score:.2f}" if c else "" for c in cells],
                    f"{book.total(u):.2f}", safe_cell("; ".join(notes))])
    return out.getvalue()


@dataclass(frozen=True)
class StudentAssignment:
    """One assignment on a student's page: their due date (an extension's if in force) and counted cell."""

    ca: CourseAssignment
    due: datetime | None
    extended: bool
    cell: Cell | None


def student_assignments(session: Session, course: list[CourseAssignment],
                        user: User) -> list[StudentAssignment]:
    """Each assignment of the course for one student, as the gradebook counts it."""
    ext = extensions_by_user(session)
    book = build(session, course, [user], ext)
    return [StudentAssignment(ca, ext.get((user.id, ca.slug), ca.assignment.due), (user.id, ca.slug) in ext,
                              book.cells.get((user.id, ca.slug))) for ca in course]
