"""Auth blueprint: log in, log out, and load the user of each request from the session."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, session, url_for

from web import db
from web.errors import BadCredentials
from web.forms import ButtonForm, LoginForm
from web.models import User
from web.security import ANY_USER, PUBLIC, access
from web.services import users

bp = Blueprint("auth", __name__)


def init_app(app: Flask) -> None:
    """Register the blueprint and the per-request user loader."""
    app.register_blueprint(bp)
    app.before_request(_load_user)
    app.context_processor(lambda: {"current_user": g.get("user"), "logout_form": ButtonForm(formdata=None)})


def _load_user() -> None:
    user_id = session.get("user_id")
    g.user = db.session().get(User, user_id) if user_id else None
    if g.user is not None and not g.user.active:
        session.clear()
        g.user = None


def _safe_next(target: str | None) -> str | None:
    """A same-site path to return to after login (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return None


@bp.route("/")
@access(PUBLIC)
def home() -> Any:
    """Send each user to their start page."""
    if g.user is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for("instructor.gradebook_page" if g.user.is_instructor else "student.index"))


@bp.route("/login", methods=["GET", "POST"])
@access(PUBLIC)
def login() -> Any:
    """The login form; a new session id on success."""
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = users.authenticate(db.session(), form.username.data, form.password.data)
        except BadCredentials as exc:
            flash(str(exc), "error")
            return render_template("auth/login.html", form=form), 401
        session.clear()
        session["user_id"] = user.id
        return redirect(_safe_next(request.args.get("next")) or url_for("auth.home"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@access(ANY_USER)
def logout() -> Any:
    """End the session (a POST with CSRF, so another site cannot log anyone out)."""
    if ButtonForm().validate_on_submit():
        session.clear()
    return redirect(url_for("auth.login"))
