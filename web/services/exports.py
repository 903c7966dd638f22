"""Exports of an assignment: a per-test CSV, and Gradescope's results.json (one, or a zip of them)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.results import GradeResult
from web.errors import NotFound
from web.models import User
from web.services import gradebook
from web.services.course import CourseAssignment
from web.services.gradebook import safe_cell
from workers.models import Submission

_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9_.@+-]+")


def results_json(sub: Submission) -> str:
    """A submission's grading as Gradescope's results.json, exactly as `grader --gradescope` writes it."""
    if not sub.result:
        raise NotFound(f"submission {sub.id} has no result yet ({sub.state}): wait until its grading ends")
    return _gradescope(sub.result)


def _gradescope(result: dict[str, Any]) -> str:
    # GradeResult.to_gradescope is the engine's writer; grader.engine.write_gradescope dumps it alike.
    return json.dumps(GradeResult.from_dict(result).to_gradescope(), indent=2)


def _results(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    return dict(session.execute(select(Submission.id, Submission.result).where(Submission.id.in_(ids))).all())


def _test_names(results: list[dict[str, Any]]) -> list[str]:
    """Every test name in the order the suites list them (a newer suite's tests after the older's)."""
    names: dict[str, None] = {}
    for r in results:
        for t in r.get("tests", []):
            names.setdefault(str(t.get("name", "")), None)
    return list(names)


def _points(result: dict[str, Any] | None, names: list[str]) -> list[str]:
    got = {str(t.get("name", "")): float(t.get("points", 0)) for t in (result or {}).get("tests", [])}
    return [f"{got[n]:g}" if n in got else "" for n in names]


def per_test_csv(session: Session, ca: CourseAssignment, students: list[User]) -> str:
    """One row per student: each test's points in the counted submission, late days, override, score."""
    book = gradebook.build(session, [ca], students)
    cells = {uid: c for (uid, _), c in book.cells.items()}
    results = _results(session, [c.submission_id for c in cells.values() if c.submission_id is not None])
    names = _test_names([r for r in results.values() if r])
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["username", "name", "submission", *[safe_cell(n) for n in names], "tests_total", "late_days",
                "graded", "override", "override_comment", "score"])
    for u in students:
        c = cells.get(u.id)
        result = results.get(c.submission_id) if c and c.submission_id is not None else None
        ov = c.override if c else None
        submission = c.submission_id if c and c.submission_id else ""
        w.writerow([safe_cell(u.username), safe_cell(u.name), submission,
                    *_points(result, names), f"{c.raw_score:.2f}" if c and c.raw_score is not None else "",
                    c.days_late if c and c.submission_id else "",
                    f"{c.graded:.2f}" if c and c.graded is not None else "",
                    f"{ov.score:.2f}" if ov else "", safe_cell(ov.comment) if ov else "",
                    f"{c.score:.2f}" if c else ""])
    return out.getvalue()


def _folder(username: str, taken: set[str]) -> str:
    """A zip folder name for a student: the username where it is a safe path part, made unique."""
    base = _UNSAFE_PATH.sub("_", username).strip(".") or "student"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def gradescope_zip(session: Session, ca: CourseAssignment, students: list[User]) -> tuple[bytes, int]:
    """A zip of <username>/results.json of each student's counted submission; the zip and how many."""
    book = gradebook.build(session, [ca], students)
    ids = {uid: c.submission_id for (uid, _), c in book.cells.items() if c.submission_id is not None}
    results = _results(session, list(ids.values()))
    buf, taken, count = io.BytesIO(), set(), 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for u in students:
            result = results.get(ids.get(u.id, -1))
            if result:
                z.writestr(f"{_folder(u.username, taken)}/results.json", _gradescope(result))
                count += 1
    return buf.getvalue(), count
