"""API blueprint for `grader submit`: bearer tokens instead of sessions, so no CSRF."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request, url_for

from web import common, db, outage, queue
from web.errors import BadCredentials
from web.security import TOKEN, access, csrf
from web.services import course, grading, health, submissions, tokens

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    """Register the blueprint, exempt from CSRF (no cookies are read here)."""
    csrf.exempt(bp)
    app.register_blueprint(bp)


@bp.before_request
def _token_user() -> Any:
    g.user = None  # the session cookie never authenticates the API
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return jsonify(error="send an API token: Authorization: Bearer <token>"), 401
    try:
        g.user = tokens.user_for_token(db.session(), header.removeprefix("Bearer "))
    except BadCredentials as exc:
        return common.error_json(exc)
    return None


# Every error under /api/ (a service's refusal, unknown paths, wrong methods, 413 with its sizes,
# 500) is JSON: web/error_pages.py answers by path, since routing errors never reach a blueprint.


@bp.route("/assignments")
@access(TOKEN)
def assignments() -> Any:
    """The course's assignments with this user's due dates."""
    me = common.user()
    out = []
    for ca in common.assignments():
        due = course.due_for(db.session(), me.id, ca.assignment)
        out.append(dict(slug=ca.slug, title=ca.assignment.title, points=ca.assignment.points,
                        due=due.isoformat() if due else None))
    return jsonify(out)


@bp.route("/submissions", methods=["POST"])
@access(TOKEN)
def create() -> Any:
    """Upload a file (multipart: `file`, `assignment`); 201 with the submission's id and status URL.

    With an `Idempotency-Key` header, a repeat of the same upload under the same key (a client
    retrying after a lost answer) gets the first submission back with 200, never a second one.
    """
    upload = request.files.get("file")
    slug = request.form.get("assignment", "")
    if upload is None or not slug:
        return jsonify(error="send multipart fields 'file' and 'assignment'"), 400
    args = dict(user=common.user(), course=common.assignment(slug), filename=upload.filename or "",
                data=upload.read(), max_bytes=current_app.config["MAX_SUBMISSION_BYTES"],
                enqueue=queue.enqueue)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        sub, replayed = submissions.submit(db.session(), **args), False
    else:
        sub, replayed = submissions.submit_once(db.session(), key=key.strip(), **args)
    body = submissions.status(sub, _notice_after_commit(sub), staff=common.user().is_instructor)
    body["replayed"] = replayed
    body["url"] = url_for("api.show", submission_id=sub.id, _external=True)
    body["page"] = url_for("student.submission", submission_id=sub.id, _external=True)
    return jsonify(body), 200 if replayed else 201


def _notice_after_commit(sub: Any) -> str | None:
    """The queue's notice, or None when the database just went away: the upload is stored either way."""
    try:
        return health.waiting_notice(db.session(), sub)
    except outage.DATABASE_DOWN as exc:
        current_app.logger.warning("submission %s stored; could not read the queue's health: %s", sub.id, exc)
        return None


@bp.route("/submissions/<int:submission_id>")
@access(TOKEN)
def show(submission_id: int) -> Any:
    """A submission's state and, once graded, the feedback the student may see."""
    sub = submissions.get_submission(db.session(), submission_id, common.user())
    grading.record_grading(db.session(), sub)
    body = submissions.status(sub, health.waiting_notice(db.session(), sub),
                              staff=common.user().is_instructor)
    owner = int(sub.owner) if sub.owner and sub.owner.isdigit() else -1
    due = course.due_for(db.session(), owner, common.assignment(sub.assignment).assignment)
    body["feedback"] = submissions.student_feedback(sub, due)
    return jsonify(body)
