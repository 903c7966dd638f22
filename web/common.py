"""Small helpers the blueprints share: the current user, the course, service errors as pages."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, jsonify

from web import db, filenames
from web.errors import ServiceError
from web.models import User
from web.services import course


def user() -> User:
    """The logged-in (or token) user of this request."""
    return g.user


def course_kwargs() -> dict[str, Any]:
    """The app's course settings, as the course service takes them."""
    cfg = current_app.config
    return dict(root=cfg.get("ASSIGNMENTS_ROOT"), default_policy=cfg["SCORE_POLICY"],
                default_limit=cfg["SUBMISSIONS_PER_HOUR"])


def assignments() -> list[course.CourseAssignment]:
    """The course's assignments with their settings."""
    return course.assignments(db.session(), **course_kwargs())


def assignment(slug: str) -> course.CourseAssignment:
    """One assignment, or NotFound."""
    return course.get_assignment(db.session(), slug, **course_kwargs())


def error_json(exc: ServiceError) -> tuple[Any, int]:
    """A service error as JSON with its status."""
    return jsonify(error=str(exc)), exc.status


def attachment(body: bytes | str, name: str, *, mimetype: str = "application/octet-stream") -> Response:
    """A download the browser saves as name (never renders), named per RFC 6266 for any name."""
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": filenames.content_disposition(name),
                             "Cache-Control": "private, no-store"})
