"""The database out of reach: 503 with Retry-After (JSON for the API, a page for people), never a 500.

Any request whose database work fails to connect (or loses its connection) ends here; the
request's transaction is rolled back, so an upload is either committed whole or not at all.
`grader submit` retries on these answers (grader/submit.py), with the same Idempotency-Key.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from sqlalchemy import exc as sa_exc

# A connection refused, dropped or timed out (OperationalError, InterfaceError: DBAPI errors
# as SQLAlchemy wraps them); DisconnectionError from the pool; TimeoutError: no pooled
# connection came free in time, which a full or hung database also shows as.
DATABASE_DOWN: tuple[type[BaseException], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError,
                                                 sa_exc.DisconnectionError, sa_exc.TimeoutError)
try:  # psycopg2's own classes, should one ever escape SQLAlchemy's wrapping
    import psycopg2

    DATABASE_DOWN += (psycopg2.OperationalError, psycopg2.InterfaceError)
except ImportError:  # a SQLite-only install
    pass


def init_app(app: Flask) -> None:
    """Answer 503 for every database-unreachable error, on every route."""
    app.config.setdefault("UNAVAILABLE_RETRY_AFTER_S", 10)
    for cls in DATABASE_DOWN:
        app.register_error_handler(cls, unavailable)


def is_database_down(exc: BaseException) -> bool:
    """Whether exc means the database cannot be reached now (not a bug in a query)."""
    return isinstance(exc, DATABASE_DOWN)


def message(retry_after_s: int) -> str:
    """What the user is told: what happened, and when to try again."""
    return (f"the service is temporarily unavailable (its database cannot be reached); "
            f"try again in {retry_after_s} s")


def unavailable(exc: BaseException) -> Any:
    """The 503 answer: JSON for the API and JSON polls, else the site's error page with a retry hint."""
    current_app.logger.error("database unavailable during %s %s: %s", request.method, request.path,
                             str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    _drop_session()
    g.user = None  # the page must not touch the user's expired row (another query, another error)
    retry = int(current_app.config["UNAVAILABLE_RETRY_AFTER_S"])
    if wants_json():
        resp = jsonify(error=message(retry), retry_after_s=retry)
    else:
        resp = current_app.make_response(render_template(
            "unavailable.html", retry=retry, message=message(retry), was_post=request.method == "POST"))
    resp.status_code = 503
    resp.headers["Retry-After"] = str(retry)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def wants_json() -> bool:
    """The API, and the pages' own JSON polls (status.json), get JSON; people get the page."""
    if request.path.startswith("/api/") or request.path.endswith(".json"):
        return True
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def _drop_session() -> None:
    """Roll back and close the request's session now; closing a dead connection must not raise."""
    session = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.rollback()
        session.close()
    except Exception as exc:  # the connection is gone already: the pool discards it
        current_app.logger.debug("closing the session after the outage: %s", exc)
