"""Auth blueprint: log in and out, change and reset passwords, and load each request's user.

A login opens a server-side session (web/services/sessions.py): the signed Flask cookie holds
a random token, the database its hash, so logging out, a password change or reset, and a
disabled account end the session on the server, whatever copies of the cookie exist. Failed
logins are rate-limited by username and by address (Flask-Limiter; successes never count).
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded

from web import db
from web.auth.forms import ChangePasswordForm, ResetPasswordForm, SetActiveForm
from web.errors import BadCredentials, ServiceError
from web.forms import ButtonForm, LoginForm
from web.security import ANY_USER, INSTRUCTOR_ONLY, PUBLIC, access, client_address, limit_failures
from web.services import passwords, sessions, users

bp = Blueprint("auth", __name__)
SESSION_KEY = "sid"  # the session token in the signed cookie
# Pages a user who must choose a new password may still reach.
OPEN_WHILE_CHANGING = ("auth.change_password", "auth.logout", "static")


def init_app(app: Flask) -> None:
    """Register the blueprint, the per-request user loader, and the limits on failed logins."""
    app.register_blueprint(bp)
    app.before_request(_load_user)
    app.before_request(_require_new_password)
    app.context_processor(lambda: {"current_user": g.get("user"), "logout_form": ButtonForm(formdata=None)})
    app.register_error_handler(RateLimitExceeded, _too_many_failures)
    cfg = app.config
    limit_failures(app, "auth.login", [(cfg["LOGIN_LIMIT_ACCOUNT"], _posted_username, "account"),
                                       (cfg["LOGIN_LIMIT_ADDRESS"], client_address, "address")],
                   failed=lambda response: response.status_code == 401)
    # A stolen session must not be a way to guess the password behind it (and so keep the account).
    limit_failures(app, "auth.change_password", [(cfg["LOGIN_LIMIT_ACCOUNT"], _session_user, "account")],
                   failed=lambda _response: bool(g.get("wrong_current_password")))


def _posted_username() -> str:
    """The username a login form posted, as the limit counts it (one account, however it is typed)."""
    return request.form.get("username", "").strip().lower()


def _session_user() -> str:
    return str(g.user.id) if g.get("user") is not None else ""


def _lifetime() -> sessions.Lifetime:
    cfg = current_app.config
    return sessions.Lifetime(idle=timedelta(seconds=cfg["LOGIN_SESSION_IDLE_S"]),
                             total=timedelta(seconds=cfg["LOGIN_SESSION_MAX_S"]))


def _load_user() -> None:
    """g.user from a live server-side session; a cookie of an ended session (or an old one) is dropped."""
    token = session.get(SESSION_KEY)
    g.user = sessions.load(db.session(), token, _lifetime()) if token else None
    # An ended session's cookie, or one from before server-side sessions (it held only user_id).
    if g.user is None and (token or "user_id" in session):
        session.clear()


def _require_new_password() -> Any:
    """After a one-time password, every page leads to the change page (the token API is not a page)."""
    user = g.get("user")
    if user is None or not user.must_change_password or request.blueprint == "api":
        return None
    if request.endpoint in OPEN_WHILE_CHANGING:
        return None
    return redirect(url_for("auth.change_password"))


def _open_session(user: Any) -> None:
    """A fresh cookie session (a new id: no fixation) bound to a new server-side session."""
    session.clear()
    session[SESSION_KEY] = sessions.start(db.session(), user, address=client_address(),
                                          user_agent=request.headers.get("User-Agent", ""))


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
    """The login form; a new server-side session on success (failures are rate-limited: init_app)."""
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = users.authenticate(db.session(), form.username.data, form.password.data)
        except BadCredentials as exc:
            flash(str(exc), "error")
            return render_template("auth/login.html", form=form), 401
        _open_session(user)
        if user.must_change_password:
            return redirect(url_for("auth.change_password"))
        return redirect(_safe_next(request.args.get("next")) or url_for("auth.home"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@access(ANY_USER)
def logout() -> Any:
    """End the session on the server and in the browser (a POST with CSRF: no other site can)."""
    if ButtonForm().validate_on_submit():
        sessions.revoke(db.session(), session.get(SESSION_KEY, ""))
        session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@access(ANY_USER)
def change_password() -> Any:
    """Change one's own password; every other session of the account ends, this one continues."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            users.change_password(db.session(), g.user, current=form.current.data, new=form.new.data)
        except BadCredentials as exc:
            g.wrong_current_password = True  # counted by the limit (init_app)
            flash(str(exc), "error")
            return _change_page(form, 400)
        except passwords.WeakPassword as exc:
            flash(str(exc), "error")
            return _change_page(form, 400)
        _open_session(g.user)
        flash("Your password was changed; any other browser logged in as you was logged out.", "info")
        return redirect(url_for("auth.home"))
    return _change_page(form, 400 if form.errors else 200)


def _change_page(form: ChangePasswordForm, status: int) -> tuple[str, int]:
    return render_template("auth/change_password.html", form=form, advice=passwords.ADVICE,
                           forced=g.user.must_change_password), status


@bp.route("/instructor/users/<int:user_id>/reset-password", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def reset_password(user_id: int) -> Any:
    """Give a student a one-time password, shown once on the page this answers with."""
    form = ResetPasswordForm()  # its CSRF token was checked before the view (security.csrf)
    user, password = users.reset_password(db.session(), g.user, user_id)
    back = _safe_next(form.next.data) or url_for("instructor.gradebook_page")
    return render_template("auth/reset_done.html", student=user, password=password, back=back)


@bp.route("/instructor/users/<int:user_id>/active", methods=["POST"])
@access(INSTRUCTOR_ONLY)
def set_active(user_id: int) -> Any:
    """Disable (active=0: their sessions end at once) or enable (active=1) a student's account."""
    form = SetActiveForm()
    if not form.validate_on_submit():
        raise ServiceError("; ".join(m for errs in form.errors.values() for m in errs))
    user = users.set_active(db.session(), g.user, user_id, form.active.data == "1")
    flash(f"{user.username}'s account is enabled: they can log in again." if user.active else
          f"{user.username}'s account is disabled: they were logged out and cannot log in.", "info")
    return redirect(_safe_next(form.next.data) or url_for("instructor.gradebook_page"))


def _too_many_failures(exc: RateLimitExceeded) -> Any:
    """The form again, with when to try next (and Retry-After), instead of checking the password."""
    limiter = current_app.extensions["torchgrade.limiters"].get(request.endpoint)
    breached = [lim for lim in (limiter.current_limits if limiter else []) if lim.breached]
    wait_s = max([lim.window[0] - time.time() for lim in breached] or [60.0])  # window[0]: reset time
    wait_s = max(1, math.ceil(wait_s))
    by_address = any(lim.request_args[-1].endswith(":address") for lim in breached)
    whom = "from your network address" if by_address else "for this account"
    message = f"Too many failed attempts {whom}. Wait {_duration(wait_s)} and try again"
    if request.endpoint == "auth.change_password":
        flash(f"{message} with your current password.", "error")
        page, _ = _change_page(ChangePasswordForm(), 429)
    else:
        flash(f"{message} (if you have forgotten your password, ask your instructor to reset it).", "error")
        page = render_template("auth/login.html", form=LoginForm())
    return page, 429, {"Retry-After": str(wait_s)}


def _duration(seconds: int) -> str:
    """Seconds as a person says them: "45 seconds", "3 minutes", "about 1 hour"."""
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    hours = round(seconds / 3600)
    return f"about {hours} hour{'' if hours == 1 else 's'}"
