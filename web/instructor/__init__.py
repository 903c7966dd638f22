"""Instructor blueprint: gradebook and its CSV, statistics, submissions, regrades, extensions, roster."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from grader.results import GradeResult
from web import common, db, notebook, queue, svg
from web.errors import NotFound, ServiceError
from web.forms import ButtonForm, ExtensionForm, SettingsForm
from web.instructor.forms import RevokeForm
from web.models import User
from web.security import INSTRUCTOR_ONLY, access
from web.services import course, gradebook, grading, health, stats, submissions, users

bp = Blueprint("instructor", __name__, url_prefix="/instructor")

def init_app(app: Flask) -> None:
    """Register the blueprint."""
    app.register_blueprint(bp)


def _health() -> health.Health:
    """This request's view of workers and queues (read once however many templates ask)."""
    if "health" not in g:
        g.health = health.overview(db.session())
    return g.health


@bp.context_processor
def _service_warnings() -> dict[str, Any]:
    # On every instructor page, so a queue nobody serves is seen wherever the instructor is.
    user = g.get("user")
    if user is None or not user.is_instructor:  # also the outage page: it sets no user
        return {}
    return {"service_warnings": _health().warnings}

def _sorted_view(book: gradebook.Gradebook) -> tuple[list[User], dict[str, Any]]:
    """The students of the request's search and sort (?q=&sort=&dir=), and those settings for links."""
    q = request.args.get("q", "")[:200]
    sort, direction = request.args.get("sort", "username"), request.args.get("dir", "asc")
    if direction not in ("asc", "desc"):
        flash(f"the sort direction is asc or desc, not {direction[:20]!r}; sorted ascending", "error")
        direction = "asc"
    try:
        rows = gradebook.view(book, q=q, sort=sort, descending=direction == "desc")
    except ServiceError as exc:
        flash(str(exc), "error")
        sort, direction = "username", "asc"
        rows = gradebook.view(book, q=q)
    return rows, {"q": q, "sort": sort, "dir": direction}


@bp.route("/")
@access(INSTRUCTOR_ONLY)
def gradebook_page() -> Any:
    """Students x assignments, under each assignment's score and late policy; searchable and sortable."""
    book = gradebook.build(db.session(), common.assignments(), users.students(db.session()))
    rows, view = _sorted_view(book)
    _, problems = course.discover(common.course_kwargs()["root"])
    return render_template("instructor/gradebook.html", book=book, rows=rows, view=view, problems=problems,
                           health=_health(), age=health.age)

gradebook_endpoint = "instructor.gradebook_page"

@bp.route("/gradebook.csv")
@access(INSTRUCTOR_ONLY)
def gradebook_csv() -> Any:
    """The gradebook as a CSV download: every student (a search narrows the page only), in the page's sort."""
    book = gradebook.build(db.session(), common.assignments(), users.students(db.session()))
    try:
        rows = gradebook.view(book, sort=request.args.get("sort", "username"),
                              descending=request.args.get("dir") == "desc")
    except ServiceError:  # an old link's column: the download still comes, in username order
        rows = book.students
    return common.attachment(gradebook.to_csv(book, rows), "gradebook.csv", mimetype="text/csv")

@bp.route("/assignments/<slug>")
@access(INSTRUCTOR_ONLY)
def assignment(slug: str) -> Any:
    """An assignment: statistics with plots, its settings, every submission."""
    ca = common.assignment(slug)
    st = stats.compute(db.session(), ca, users.students(db.session()))
    plots = [svg.bar_chart(*st.histogram, title="Score distribution (students, counted score)"),
             svg.bar_chart(*st.pass_rates, title="Pass rate of each test (%)", ymax=100, fmt="{:.0f}",
                           color="#4a8f4a"),
             svg.bar_chart(*st.over_time, title="Submissions over time", color="#a5673b")]
    form = SettingsForm(score_policy=ca.score_policy, hourly_limit=ca.hourly_limit)
    everyone = list(db.session().scalars(select(User)))
    names = {str(u.id): u.username for u in everyone}
    students = {str(u.id) for u in everyone if not u.is_instructor}  # who has a student page
    return render_template("instructor/assignment.html", ca=ca, stats=st, plots=plots, form=form,
                           button=ButtonForm(), names=names, students=students,
                           subs=submissions.submissions_for_assignment(db.session(), slug))

@bp.route("/assignments/<slug>/settings", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def settings(slug: str) -> Any:
    """Change the score policy and hourly limit."""
    common.assignment(slug)
    form = SettingsForm()
    if form.validate_on_submit():
        course.update_settings(db.session(), slug, score_policy=form.score_policy.data,
                               hourly_limit=form.hourly_limit.data)
        flash("settings saved", "info")
    else:
        flash("settings not saved: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()), "error")
    return redirect(url_for("instructor.assignment", slug=slug))

@bp.route("/assignments/<slug>/regrade", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def regrade_all(slug: str) -> Any:
    """Regrade every finished submission of an assignment (history kept)."""
    common.assignment(slug)
    n = grading.regrade_assignment(db.session(), slug, requeue=queue.requeue)
    flash(f"{n} submissions queued for regrading", "info")
    return redirect(url_for("instructor.assignment", slug=slug))

@bp.route("/submissions/<int:submission_id>")
@access(INSTRUCTOR_ONLY)
def submission(submission_id: int) -> Any:
    """Everything about one submission: file, full result, log, executed notebook, history."""
    sub = submissions.get_submission(db.session(), submission_id, common.user())
    grading.record_grading(db.session(), sub)
    owner = db.session().get(User, int(sub.owner)) if sub.owner and sub.owner.isdigit() else None
    result = GradeResult.from_dict(sub.result) if sub.result else None
    source = sub.content.decode("utf-8", "replace") if not sub.filename.endswith(".ipynb") else None
    return render_template("instructor/submission.html", sub=sub, owner=owner, result=result, source=source,
                           notebook=notebook.render(result.executed_notebook if result else None)
                           if result and result.executed_notebook else None,
                           uploaded=notebook.render(sub.content.decode("utf-8", "replace"))
                           if source is None else None,
                           history=grading.history(db.session(), sub.id), button=ButtonForm())

@bp.route("/submissions/<int:submission_id>/download")
@access(INSTRUCTOR_ONLY)
def download(submission_id: int) -> Any:
    """The submitted file, as an attachment (never rendered by the browser)."""
    sub = submissions.get_submission(db.session(), submission_id, common.user())
    # The id first: an instructor collects many files of the same name.
    return common.attachment(sub.content, f"{sub.id}-{sub.filename}")

@bp.route("/submissions/<int:submission_id>/regrade", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def regrade(submission_id: int) -> Any:
    """Regrade one submission with its stored seed; the old score stays in the history."""
    try:
        grading.regrade(db.session(), submission_id, requeue=queue.requeue)
        flash("queued for regrading", "info")
    except NotFound:
        raise
    except ServiceError as exc:
        flash(str(exc), "error")
    return redirect(url_for("instructor.submission", submission_id=submission_id))

@bp.route("/extensions", methods=["GET", "POST"])
@access(INSTRUCTOR_ONLY)
def extensions() -> Any:
    """Grant a student a new due date for one assignment; the list shows revoked ones too."""
    form = ExtensionForm()
    form.assignment.choices = [(ca.slug, ca.assignment.title) for ca in common.assignments()]
    status = 200
    if form.validate_on_submit():
        try:
            student = course.find_student(db.session(), form.username.data)
            course.grant_extension(db.session(), user=student, slug=form.assignment.data,
                                   due_at=form.due_at.data.replace(tzinfo=UTC), reason=form.reason.data or "",
                                   by=common.user())
            flash(f"extension granted to {student.username}", "info")
            return redirect(url_for("instructor.extensions"))
        except ServiceError as exc:
            flash(f"extension not granted: {exc}", "error")
            status = 400
    elif form.is_submitted():
        status = 400
        for name, errors in form.errors.items():
            flash(f"extension not granted: {getattr(form, name).label.text}: {errors[0]}", "error")
    return render_template("instructor/extensions.html", form=form, revoke=RevokeForm(),
                           extensions=course.list_extensions(db.session())), status


@bp.route("/extensions/<int:extension_id>/revoke", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def revoke_extension(extension_id: int) -> Any:
    """Revoke an extension: the assignment's due date counts again for that student."""
    form = RevokeForm()
    try:
        ext = course.revoke_extension(db.session(), extension_id, by=common.user())
        flash(f"extension of {ext.assignment} revoked: the assignment's due date counts again", "info")
    except NotFound:
        raise
    except ServiceError as exc:
        flash(str(exc), "error")
    back = form.back.data or ""
    if back.isdigit():  # the student page it was sent from (built here, so never an open redirect)
        return redirect(url_for("instructor.student", user_id=int(back), _anchor="extensions"))
    return redirect(url_for("instructor.extensions"))


# Views in modules of their own, on this blueprint (imported last: they import bp from here).
import web.instructor.downloads  # noqa: E402, F401
import web.instructor.similarity  # noqa: E402, F401
import web.instructor.students  # noqa: E402, F401
from web.instructor import roster  # noqa: E402, F401
