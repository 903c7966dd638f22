"""CSRF on every form, security headers on every response, access rules on every route, failure limits."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_limiter import Limiter
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
    # A page for a logged-in user (or the login form) must not be kept by the browser or a proxy:
    # the Back button after logout, or the next user of a shared computer, would show it again.
    # Static files are the same for everyone and stay cacheable.
    if (g.get("user") is not None and request.endpoint != "static") or request.endpoint == "auth.login":
        response.headers["Cache-Control"] = "no-store"
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


def client_address() -> str:
    """The client's address: the socket's, or the one TRUSTED_PROXIES proxies in front vouch for.

    X-Forwarded-For is read only when the app is configured to sit behind that many proxies
    (each appends the address it saw): the entry that many from the right is the one the
    outermost of our proxies saw; anything left of it the client could have written.
    """
    hops = current_app.config.get("TRUSTED_PROXIES", 0)
    if hops:
        chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if len(chain) >= hops:
            return chain[-hops]
    return request.remote_addr or "unknown"


def limit_failures(app: Flask, endpoint: str, limits: list[tuple[str, Callable[[], str], str]],
                   failed: Callable[[Any], bool]) -> Limiter:
    """Rate-limit the failures of one endpoint: each (limit, key function, scope) counts a request
    only when failed(response) is true, and refuses (429, RateLimitExceeded) once one is exceeded.

    A Limiter of this app's own (its storage, prefix and strategy from the app's RATELIMIT_* config),
    so apps made one after another in a process never share counts or settings.
    """
    limiter = Limiter(key_func=client_address, app=app, fail_on_first_breach=False)
    view = app.view_functions[endpoint]
    for value, key, scope in limits:
        view = limiter.limit(value, key_func=key, scope=scope, methods=["POST"], deduct_when=failed)(view)
    app.view_functions[endpoint] = view
    app.extensions.setdefault("torchgrade.limiters", {})[endpoint] = limiter
    return limiter
