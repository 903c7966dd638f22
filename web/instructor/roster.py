"""The roster: import students from a CSV in the background, with progress and one-time passwords."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, url_for

from web import common, db
from web.errors import NotFound
from web.forms import ButtonForm, RosterForm
from web.instructor import bp
from web.models import BackgroundJob
from web.security import INSTRUCTOR_ONLY, access
from web.services import jobs, users
from web.services import roster as rosters


@bp.route("/roster", methods=["GET", "POST"])
@access(INSTRUCTOR_ONLY)
def roster() -> Any:
    """The import form and the students; a valid CSV starts an import and leads to its progress page."""
    form = RosterForm()
    status = 200
    if form.validate_on_submit():
        try:
            plan = rosters.parse(db.session(), form.file.data.read())
        except rosters.RosterRejected as exc:
            flash(f"Roster not imported: {exc}.", "error")
            status = 400
        else:
            job = jobs.start(current_app._get_current_object(), db.session(), kind=rosters.KIND,
                             total=len(plan.students), user=common.user(), work=rosters.work(plan))
            return redirect(url_for("instructor.roster_job", job_id=job.id), 303)
    elif form.is_submitted():
        flash("Choose a CSV file to import.", "error")
        status = 400
    rosters.purge_expired(db.session())
    return render_template("instructor/roster.html", form=form, job=None, state_of=jobs.state_of,
                           students=users.students(db.session()),
                           recent=rosters.recent(db.session(), common.user())), status


@bp.route("/roster/jobs/<int:job_id>")
@access(INSTRUCTOR_ONLY)
def roster_job(job_id: int) -> Any:
    """An import's progress (updated by jobs.js), then its new accounts and skipped rows."""
    rosters.purge_expired(db.session())
    job = _job(job_id)
    return render_template("instructor/roster.html", job=job, progress=jobs.progress(job),
                           shown=rosters.passwords_shown(job), button=ButtonForm())


@bp.route("/jobs/<int:job_id>.json")
@access(INSTRUCTOR_ONLY)
def job_json(job_id: int) -> Any:
    """A job's progress for jobs.js; once a roster import is done, its result (passwords while kept)."""
    job = jobs.get(db.session(), job_id, common.user())
    body = jobs.progress(job)
    if body["state"] == jobs.DONE and job.kind == rosters.KIND:
        rosters.purge_expired(db.session())
        body["result"] = job.result
    return jsonify(body)


@bp.route("/roster/jobs/<int:job_id>/accounts.csv")
@access(INSTRUCTOR_ONLY)
def roster_accounts_csv(job_id: int) -> Any:
    """The new accounts with their one-time passwords, as a CSV to hand out (while they are kept)."""
    rosters.purge_expired(db.session())
    job = _job(job_id)
    if not rosters.passwords_shown(job):
        flash("The one-time passwords of this import are gone; reset a student's password to give a new one.",
              "error")
        return redirect(url_for("instructor.roster_job", job_id=job.id))
    return common.attachment(rosters.accounts_csv(job), f"roster-import-{job.id}.csv", mimetype="text/csv")


@bp.route("/roster/jobs/<int:job_id>/forget", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def roster_forget(job_id: int) -> Any:
    """Wipe an import's one-time passwords now (the instructor has handed them out)."""
    job = _job(job_id)
    if ButtonForm().validate_on_submit():
        rosters.forget_passwords(db.session(), job, "removed at your request")
        flash("The one-time passwords of this import are deleted.", "info")
    return redirect(url_for("instructor.roster_job", job_id=job.id))


def _job(job_id: int) -> BackgroundJob:
    """This instructor's roster import, or NotFound."""
    job = jobs.get(db.session(), job_id, common.user())
    if job.kind != rosters.KIND:
        raise NotFound(f"No such roster import: {job_id}")
    return job

