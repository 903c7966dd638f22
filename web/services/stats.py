"""Per-assignment statistics: score histogram, pass rate of each test, submissions over time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import User
from web.services import gradebook
from web.services.course import CourseAssignment
from workers.db import as_utc
from workers.models import Submission


@dataclass
class Stats:
    """The numbers behind the plots."""

    students: int
    submitted: int
    mean: float
    histogram: tuple[list[str], list[float]]
    pass_rates: tuple[list[str], list[float]]
    over_time: tuple[list[str], list[float]]
    states: dict[str, int]
    overridden: int = 0


def _histogram(fractions: list[float], bins: int = 10) -> tuple[list[str], list[float]]:
    counts = [0.0] * bins
    for f in fractions:
        counts[min(int(f * bins), bins - 1)] += 1
    return [f"{100 * i // bins}-{100 * (i + 1) // bins}%" for i in range(bins)], counts


def _over_time(session: Session, slug: str) -> tuple[list[str], list[float]]:
    times = [as_utc(t) for t in session.scalars(select(Submission.created_at)
                                                .where(Submission.assignment == slug))]
    if not times:
        return [], []
    hourly = max(times) - min(times) <= timedelta(days=2)
    key = "%m-%d %H:00" if hourly else "%Y-%m-%d"
    counts = Counter(t.strftime(key) for t in times)
    labels = sorted(counts)
    return labels, [float(counts[k]) for k in labels]


def compute(session: Session, course: CourseAssignment, students: list[User]) -> Stats:
    """Statistics of one assignment over its students' counted scores (overrides in force applied)."""
    book = gradebook.build(session, [course], students)
    cells = [c for (_, slug), c in book.cells.items() if slug == course.slug]
    fractions = [c.score / c.max_score if c.max_score else 0.0 for c in cells]
    passed: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    # Pass rates are of the tests: an override's cell without a graded submission has none.
    ids = [c.submission_id for c in cells if c.submission_id is not None]
    for result in session.scalars(select(Submission.result).where(Submission.id.in_(ids))) if ids else []:
        for t in (result or {}).get("tests", []):
            seen[t["name"]] += 1
            passed[t["name"]] += bool(t.get("passed"))
    names = sorted(seen)
    states = Counter(session.scalars(select(Submission.state).where(Submission.assignment == course.slug)))
    return Stats(students=len(students), submitted=len(cells),
                 mean=sum(c.score for c in cells) / len(cells) if cells else 0.0,
                 histogram=_histogram(fractions),
                 pass_rates=(names, [100.0 * passed[n] / seen[n] for n in names]),
                 over_time=_over_time(session, course.slug), states=dict(states),
                 overridden=sum(c.override is not None for c in cells))
