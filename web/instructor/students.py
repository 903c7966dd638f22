"""A student's page for the instructor: counted scores, submissions, extensions, and score overrides."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for

from web import common, db
from web.errors import NotFound, ServiceError
from web.forms import ButtonForm
from web.instructor import bp
from web.instructor.forms import OverrideForm, RevokeForm
from web.models import STUDENT, User
from web.security import INSTRUCTOR_ONLY, access
from web.services import course, gradebook, overrides, submissions
from workers.db import as_utc


def _student(user_id: int) -> User:
    """The student with this id, or NotFound (an instructor has no grades to show)."""
    user = db.session().get(User, user_id)
    if user is None or user.role != STUDENT:
        raise NotFound(f"No such student: {user_id}")
    return user


def _page(student: User, failed: tuple[str, OverrideForm] | None = None) -> str:
    """The student's page; `failed` is a refused override form to show again with what was typed."""
    course_list = common.assignments()
    rows = gradebook.student_assignments(db.session(), course_list, student)
    dues = {r.ca.slug: r.due for r in rows}
    subs = submissions.submissions_of(db.session(), student)
    late = {s.id: course.days_late(as_utc(s.created_at), dues.get(s.assignment)) for s in subs}
    forms = {ca.slug: OverrideForm(formdata=None, prefix=ca.slug) for ca in course_list}
    if failed:
        forms[failed[0]] = failed[1]
    return render_template("instructor/student.html", student=student,
                           rows=rows,
                           subs=subs, late=late, forms=forms, revoke=RevokeForm(back=str(student.id)),
                           account=ButtonForm(),
                           extensions=course.list_extensions(db.session(), student.id),
                           trail=overrides.trail(db.session(), student.id),
                           titles={ca.slug: ca.assignment.title for ca in course_list})


@bp.route("/students/<int:user_id>")
@access(INSTRUCTOR_ONLY)
def student(user_id: int) -> Any:
    """One student: each assignment's counted score, submissions, extensions, overrides and their trail."""
    return _page(_student(user_id))


@bp.route("/students/<int:user_id>/overrides/<slug>", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def override(user_id: int, slug: str) -> Any:
    """Set or remove an override of the student's score on an assignment, with a required comment."""
    who, ca = _student(user_id), common.assignment(slug)
    form = OverrideForm(prefix=slug)
    if form.validate_on_submit():
        try:
            overrides.set_override(db.session(), student=who, ca=ca, score=form.value(),
                                   comment=form.comment.data, by=common.user())
            flash(f"override of {ca.assignment.title} for {who.username} "
                  f"{'set' if form.value() is not None else 'removed'}", "info")
            return redirect(url_for("instructor.student", user_id=who.id, _anchor=f"a-{slug}"))
        except ServiceError as exc:
            flash(f"override not saved: {exc}", "error")
    else:
        for errors in form.errors.values():
            flash(f"override not saved: {errors[0]}", "error")
    return _page(who, (slug, form)), 400
