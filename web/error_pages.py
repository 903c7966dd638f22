"""How errors answer: JSON under /api/ (and the pages' .json polls), else the site's page with a way back.

Every HTTP error a user can meet (403, 404, 405, 413, 429, CSRF, 500) says what happened and
what to do. Database outages are not here: web/outage.py answers those with a 503.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, jsonify, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from web.errors import ServiceError
from web.outage import wants_json

MESSAGES = {
    400: "the request could not be understood. Go back, reload the page and try again.",
    401: "you need to log in first.",
    403: "you do not have access to this page. If you think you should, log in with the right account "
         "or ask your instructor.",
    404: "there is no such page (or it is not yours to see). Check the address, or go back.",
    405: "this address does not accept that kind of request (a form sent to a page that only shows "
         "things, say). Go back and use the page's own buttons.",
    429: "too many requests in a short time. Wait a minute, then try again.",
    500: "something went wrong on our side; it has been logged. Try again in a moment, and if it keeps "
         "happening, tell your instructor what you were doing.",
}
# A program reads these (`grader submit`, scripts): what was wrong with the request, not where to click.
API_MESSAGES = {
    404: "no such API address: {path} (the API's addresses start with /api/v1/)",
    405: "{method} is not allowed on {path}; it accepts {allowed}",
    429: "too many requests in a short time; wait a minute, then send it again",
    500: "an internal error on the server (it has been logged); try again in a moment",
}
CSRF_MESSAGE = ("the form's security token (CSRF) was missing or had expired, so nothing was changed. "
                "Reload the page and send the form again.")


def init_app(app: Flask) -> None:
    """Register the handlers for service errors and every HTTP error, including CSRF and 500."""
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)


def answer(status: int, message: str) -> Response:
    """The error as JSON {"error": ...} for API clients and JSON polls, else the site's error page."""
    if wants_json():
        resp = jsonify(error=message)
    else:
        resp = current_app.make_response(render_template("error.html", status=status, message=message,
                                                         back=back_link()))
    resp.status_code = status
    return resp


def back_link() -> str:
    """Where "Go back" leads: the previous page when it is on this site (and not this one), else home."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if referrer and parts.scheme in ("http", "https") and parts.netloc == request.host:
        if parts.path != request.path:
            return referrer
    return url_for("auth.home")


def too_large_message() -> str:
    """The 413 message with the real numbers: the request's size and the upload limit, in MB."""
    limit = current_app.config["MAX_SUBMISSION_BYTES"] / 1e6
    size = request.content_length
    what = f"your upload is {size / 1e6:.1f} MB" if size else "your upload is too large"
    return (f"{what}; the limit is {limit:.1f} MB. Make the file smaller (for a notebook, clear large "
            "outputs: Kernel > Restart & Clear Output) and upload it again.")


def _service_error(exc: ServiceError) -> Any:
    return answer(exc.status, str(exc))


def _csrf_error(exc: CSRFError) -> Any:
    current_app.logger.info("CSRF refused on %s %s: %s", request.method, request.path, exc.description)
    return answer(400, CSRF_MESSAGE)


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if status == 413:
        return answer(413, too_large_message())
    allowed = sorted(getattr(exc, "valid_methods", None) or [])
    resp = answer(status, _message(status, exc, allowed))
    if status == 405 and allowed:  # HTTP requires the methods this address does accept
        resp.headers["Allow"] = ", ".join(allowed)
    return resp


def _message(status: int, exc: HTTPException, allowed: list[str]) -> str:
    """What to tell the user (or the API client) about this HTTP error."""
    if wants_json() and status in API_MESSAGES:
        return API_MESSAGES[status].format(path=request.path, method=request.method,
                                           allowed=", ".join(allowed) or "no method")
    return MESSAGES.get(status, f"{exc.name}: {exc.description}")


def _server_error(_exc: InternalServerError) -> Any:
    # Flask has logged the traceback before calling this (app.log_exception); the user gets no internals.
    return answer(500, API_MESSAGES[500] if wants_json() else MESSAGES[500])
