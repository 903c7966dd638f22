"""The gradebook: students x assignments under each assignment's score policy and late policy."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import User
from web.services.course import CourseAssignment, days_late, extensions_by_user, late_factor
from workers.db import as_utc
from workers.models import GRADED, Submission


@dataclass(frozen=True)
class Cell:
    """One student's score on one assignment: the chosen submission, after the late penalty."""

    score: float
    max_score: float
    raw_score: float
    days_late: int
    submission_id: int
    submissions: int


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


def build(session: Session, course: list[CourseAssignment], students: list[User]) -> Gradebook:
    """The gradebook of these students; best keeps the highest penalised score, last the newest."""
    book = Gradebook(students=students, assignments=course)
    by_slug = {ca.slug: ca for ca in course}
    ids = {str(u.id): u.id for u in students}
    ext = extensions_by_user(session)
    counts: dict[tuple[int, str], int] = {}
    for sub_id, owner, slug, score, max_score, created in _rows(session, list(by_slug)):
        if owner not in ids or score is None:
            continue
        uid, ca = ids[owner], by_slug[slug]
        due = ext.get((uid, slug), ca.assignment.due)
        days = days_late(as_utc(created), due)
        cell = Cell(score=score * late_factor(ca.assignment, days),
                    max_score=max_score or ca.assignment.points,
                    raw_score=score, days_late=days, submission_id=sub_id, submissions=0)
        key = (uid, slug)
        counts[key] = counts.get(key, 0) + 1
        old = book.cells.get(key)
        if old is None or ca.score_policy == "last" or cell.score > old.score:
            book.cells[key] = cell
    for key, cell in book.cells.items():
        book.cells[key] = Cell(**{**cell.__dict__, "submissions": counts[key]})
        book.totals[key[0]] = book.totals.get(key[0], 0.0) + cell.score
    return book


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(book: Gradebook) -> str:
    """The gradebook as CSV: username, name, one column a assignment, total."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["username", "name", *[ca.slug for ca in book.assignments], "total"])
    for u in book.students:
        cells = [book.cells.get((u.id, ca.slug)) for ca in book.assignments]
        w.writerow([_safe(u.username), _safe(u.name), *[f"{c.score:.2f}" if c else "" for c in cells],
                    f"{book.total(u):.2f}"])
    return out.getvalue()
