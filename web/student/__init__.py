"""Student blueprint: assignments as handouts, uploads, live status, feedback, own work, API tokens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, jsonify, redirect, render_template, url_for

from web import common, db, notebook, queue
from web.errors import NotFound, UploadRejected
from web.forms import ButtonForm, TokenForm, UploadForm
from web.security import ANY_USER, access
from web.services import course, gradebook, grading, handout, health, submissions, tokens
from workers.db import as_utc

bp = Blueprint("student", __name__)


def init_app(app: Flask) -> None:
    """Register the blueprint."""
    app.register_blueprint(bp)


@bp.route("/assignments")
@access(ANY_USER)
def index() -> Any:
    """Every assignment with its due date (an extension's if any) and the student's score."""
    me, course_list = common.user(), common.assignments()
    book = gradebook.build(db.session(), course_list, [me])  # the same score policy and late penalty
    rows = []
    for ca in course_list:
        cell = book.cells.get((me.id, ca.slug))
        rows.append(dict(ca=ca, due=course.due_for(db.session(), me.id, ca.assignment),
                         score=cell.score if cell else None,
                         count=len(submissions.submissions_of(db.session(), me, ca.slug))))
    return render_template("student/index.html", rows=rows)


@bp.route("/assignments/<slug>", methods=["GET", "POST"])
@access(ANY_USER)
def assignment(slug: str) -> Any:
    """An assignment's page: the handout (description, downloads, check command), the upload form
    and this student's submissions."""
    me, ca = common.user(), common.assignment(slug)
    form = UploadForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        try:
            sub = submissions.submit(db.session(), user=me, course=ca, filename=upload.filename or "",
                                     data=upload.read(), max_bytes=db_max_bytes(), enqueue=queue.enqueue)
            return redirect(url_for("student.submission", submission_id=sub.id))
        except UploadRejected as exc:
            flash(str(exc), "error")
            status = exc.status
    elif form.is_submitted():
        status = 400
        flash("choose a file to upload", "error")
    due = course.due_for(db.session(), me.id, ca.assignment)
    a = ca.assignment
    return render_template("student/assignment.html", ca=ca, form=form, due=due,
                           subs=submissions.submissions_of(db.session(), me, slug),
                           description=handout.description(a), zip_name=handout.zip_name(a),
                           commands=handout.check_commands(a), elsewhere=handout.check_elsewhere(a)), status


@bp.route("/assignments/<slug>/starter.<kind>")
@access(ANY_USER)
def starter(slug: str, kind: str) -> Any:
    """The starter module (.py) or notebook (.ipynb), named for the assignment."""
    body, name, mimetype = handout.starter(common.assignment(slug).assignment, kind)
    return common.attachment(body, name, mimetype=mimetype)


@bp.route("/assignments/<slug>/public-tests.zip")
@access(ANY_USER)
def public_tests(slug: str) -> Any:
    """What `grader release` gives students (starters, public tests, manifest) as <slug>.zip."""
    a = common.assignment(slug).assignment
    return common.attachment(handout.public_zip(a), handout.zip_name(a), mimetype="application/zip")


def db_max_bytes() -> int:
    """The upload limit in bytes."""
    from flask import current_app

    return current_app.config["MAX_SUBMISSION_BYTES"]


def _owned(submission_id: int) -> Any:
    sub = submissions.get_submission(db.session(), submission_id, common.user())
    grading.record_grading(db.session(), sub)
    return sub


def _feedback(sub: Any) -> dict[str, Any]:
    ca = common.assignment(sub.assignment)
    owner = int(sub.owner) if sub.owner and sub.owner.isdigit() else -1
    due = course.due_for(db.session(), owner, ca.assignment)
    return dict(sub=sub, ca=ca, due=due, feedback=submissions.student_feedback(sub, due), work=_work(sub),
                notice=health.waiting_notice(db.session(), sub),
                days_late=course.days_late(as_utc(sub.created_at), due),
                factor=course.late_factor(ca.assignment, course.days_late(as_utc(sub.created_at), due)))


MAX_SOURCE_SHOWN = 200_000


def _work(sub: Any) -> dict[str, Any]:
    """The student's own work for their page: the executed notebook, else the file as uploaded.

    The executed notebook holds only what the student's cells produced as the notebook loaded:
    the sandbox serialises it before any test calls in (grader.guest.notebook.run_notebook), and
    the proxy keeps the first load's copy only, so nothing a hidden test's call printed is in it.
    """
    executed = (sub.result or {}).get("executed_notebook")
    if executed:
        return dict(kind="executed", html=notebook.render(executed))
    text = sub.content.decode("utf-8", "replace")
    if sub.filename.lower().endswith(".ipynb"):  # the upload check refuses a notebook under another name
        return dict(kind="notebook", html=notebook.render(text))
    cut = len(text) > MAX_SOURCE_SHOWN
    return dict(kind="module", source=text[:MAX_SOURCE_SHOWN] + ("\n… (cut; download the file for all of it)"
                                                                 if cut else ""))


@bp.route("/submissions/<int:submission_id>")
@access(ANY_USER)
def submission(submission_id: int) -> Any:
    """One submission: its state (updated live by static/status.js) and its feedback."""
    return render_template("student/submission.html", **_feedback(_owned(submission_id)))


@bp.route("/submissions/<int:submission_id>/download")
@access(ANY_USER)
def download(submission_id: int) -> Any:
    """The student's own file back, under the name they gave it."""
    sub = submissions.get_submission(db.session(), submission_id, common.user())
    return common.attachment(sub.content, sub.filename)


@bp.route("/submissions/<int:submission_id>/feedback")
@access(ANY_USER)
def feedback(submission_id: int) -> Any:
    """The feedback block alone, fetched by the page when grading ends."""
    return render_template("student/_feedback.html", **_feedback(_owned(submission_id)))


@bp.route("/submissions/<int:submission_id>/status.json")
@access(ANY_USER)
def status(submission_id: int) -> Any:
    """The submission's state as JSON, for the page's poll."""
    try:
        sub = _owned(submission_id)
        return jsonify(submissions.status(sub, health.waiting_notice(db.session(), sub)))
    except NotFound as exc:
        return common.error_json(exc)


@bp.route("/account/tokens", methods=["GET", "POST"])
@access(ANY_USER)
def account_tokens() -> Any:
    """Make API tokens for `grader submit`; a new token is shown once."""
    me, form = common.user(), TokenForm()
    token = None
    if form.validate_on_submit():
        token = tokens.create_token(db.session(), me, form.name.data)
    return render_template("student/tokens.html", form=form, token=token, revoke=ButtonForm(),
                           tokens=tokens.tokens_of(db.session(), me))


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@access(ANY_USER)
def revoke_token(token_id: int) -> Any:
    """Revoke one of the user's own tokens."""
    tokens.revoke_token(db.session(), common.user(), token_id)
    flash("token revoked", "info")
    return redirect(url_for("student.account_tokens"))
