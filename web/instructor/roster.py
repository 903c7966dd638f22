"""The roster: import students from a CSV (their first passwords shown once)."""

from __future__ import annotations

from typing import Any

from flask import flash, render_template

from web import db
from web.errors import ServiceError
from web.forms import RosterForm
from web.instructor import bp
from web.security import INSTRUCTOR_ONLY, access
from web.services import users


@bp.route("/roster", methods=["GET", "POST"])
@access(INSTRUCTOR_ONLY)
def roster() -> Any:
    """Import students from a CSV; their first passwords are shown once."""
    form = RosterForm()
    result = None
    if form.validate_on_submit():
        try:
            result = users.import_roster(db.session(), form.file.data.read().decode("utf-8-sig"))
        except (ServiceError, UnicodeDecodeError) as exc:
            flash(f"roster not imported: {exc}", "error")
    return render_template("instructor/roster.html", form=form, result=result,
                           students=users.students(db.session()))
