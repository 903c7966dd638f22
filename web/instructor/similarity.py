"""Code similarity: an assignment's pairs of students ranked, and one pair side by side."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from sqlalchemy import select

from web import common, db
from web.instructor import bp
from web.models import User
from web.security import INSTRUCTOR_ONLY, access
from web.services import similarity, users


@bp.route("/assignments/<slug>/similarity", endpoint="similarity")
@access(INSTRUCTOR_ONLY)
def similarity_page(slug: str) -> Any:
    """Pairs of the students' counted submissions, the most similar first (the starter's code left out)."""
    ca = common.assignment(slug)
    top, top_error = similarity.bounded_top(request.args.get("top"))
    students = users.students(db.session())
    report = similarity.for_assignment(db.session(), ca, students)
    compared = {d.owner for d in report.documents}
    return render_template("instructor/similarity.html", ca=ca, report=report, pairs=report.pairs[:top],
                           top=top, top_error=top_error, names={str(u.id): u for u in students},
                           missing=[u for u in students if str(u.id) not in compared],
                           floor=similarity.FLOOR, k=similarity.K, w=similarity.W, max_top=similarity.MAX_TOP)


@bp.route("/assignments/<slug>/similarity/<int:a>/<int:b>")
@access(INSTRUCTOR_ONLY)
def similarity_pair(slug: str, a: int, b: int) -> Any:
    """Two submissions side by side, their common code highlighted in matching colours."""
    ca = common.assignment(slug)
    left, right, pair = similarity.side_by_side(db.session(), ca, a, b)
    ids = [int(o) for o in (left.document.owner, right.document.owner) if o.isdigit()]
    names = {str(u.id): u for u in db.session().scalars(select(User).where(User.id.in_(ids)))}
    return render_template("instructor/similarity_pair.html", ca=ca, left=left, right=right, pair=pair,
                           names=names)
