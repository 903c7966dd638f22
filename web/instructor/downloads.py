"""Exports of an assignment from the web (per-test CSV, Gradescope results.json) and its live status."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, url_for

from web import common, db
from web.instructor import bp
from web.security import INSTRUCTOR_ONLY, access
from web.services import exports, grading, submissions, users


@bp.route("/assignments/<slug>/tests.csv")
@access(INSTRUCTOR_ONLY)
def tests_csv(slug: str) -> Any:
    """One row per student: each test's points in the counted submission, late days, override, score."""
    ca = common.assignment(slug)
    body = exports.per_test_csv(db.session(), ca, users.students(db.session()))
    return common.attachment(body, f"{slug}-tests.csv", mimetype="text/csv")


@bp.route("/assignments/<slug>/gradescope.zip")
@access(INSTRUCTOR_ONLY)
def gradescope_zip(slug: str) -> Any:
    """A zip of each student's counted submission's results.json (Gradescope's format)."""
    ca = common.assignment(slug)
    body, count = exports.gradescope_zip(db.session(), ca, users.students(db.session()))
    if not count:
        flash("no student has a graded submission of this assignment yet: there is nothing to export",
              "error")
        return redirect(url_for("instructor.assignment", slug=slug))
    return common.attachment(body, f"{slug}-gradescope.zip", mimetype="application/zip")


@bp.route("/submissions/<int:submission_id>/results.json")
@access(INSTRUCTOR_ONLY)
def results_json(submission_id: int) -> Any:
    """The submission's grading as Gradescope's results.json, as `grader --gradescope` writes it."""
    sub = submissions.get_submission(db.session(), submission_id, common.user())
    return common.attachment(exports.results_json(sub), f"{sub.id}-results.json", mimetype="application/json")


@bp.route("/assignments/<slug>/status.json")
@access(INSTRUCTOR_ONLY)
def assignment_status(slug: str) -> Any:
    """The assignment's submission states, for the page's poll while regrades run (static/instructor.js)."""
    common.assignment(slug)
    return jsonify(grading.assignment_status(db.session(), slug))
