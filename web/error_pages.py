"""How errors answer: service errors and HTTP errors as the site's pages, or as JSON under /api/."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, render_template

from web.common import error_page
from web.errors import ServiceError


def init_app(app: Flask) -> None:
    """Register the handlers for service errors and the HTTP errors a user can meet."""
    app.register_error_handler(ServiceError, error_page)
    app.register_error_handler(413, _too_large)


def _too_large(_exc: Exception) -> Any:
    limit = current_app.config["MAX_SUBMISSION_BYTES"] / 1e6
    return render_template("error.html", status=413,
                           message=f"that upload is too large; the limit is {limit:.1f} MB (clear large "
                           "outputs from the notebook: Kernel > Restart & Clear Output)"), 413
