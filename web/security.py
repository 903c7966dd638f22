"""CSRF on every form, security headers on every response, and access rules on every route."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, abort, g, redirect, request, url_for
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

# Defence in depth behind escaping: no inline script, no plugins, images only from here or data:.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

PUBLIC, ANY_USER, STUDENT_ONLY, INSTRUCTOR_ONLY, TOKEN = "public", "user", "student", "instructor", "token"


def init_app(app: Flask) -> None:
    """Turn on CSRF protection and the headers."""
    csrf.init_app(app)
    app.after_request(_headers)


def _headers(response: Any) -> Any:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def access(rule: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a view with who may call it and enforce it (the tests check every route has a mark)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = g.get("user")
            if rule in (PUBLIC, TOKEN):  # a token view authenticates itself
                return view(*args, **kwargs)
            if user is None:
                return redirect(url_for("auth.login", next=request.path))
            if rule == INSTRUCTOR_ONLY and not user.is_instructor:
                abort(403)
            return view(*args, **kwargs)

        wrapped.access = rule  # type: ignore[attr-defined]
        return wrapped

    return decorate
