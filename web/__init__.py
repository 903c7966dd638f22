"""The torchgrade web service: `create_app()` builds it; `python -m web serve` runs it on one machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None, *, config: str | None = None) -> Flask:
    """The Flask app: configuration, database (and its outages), CSRF, headers and the four blueprints."""
    from web import api, auth, db, error_pages, instructor, outage, security, student
    from web.config import CONFIGS

    app = Flask(__name__, instance_path=os.environ.get("TORCHGRADE_INSTANCE", str(Path.cwd() / "instance")))
    name = config or os.environ.get("TORCHGRADE_CONFIG", "testing" if test_config else "default")
    app.config.from_object(CONFIGS[name])
    if test_config is None:
        app.config.update(CONFIGS[name].from_env(Path(app.instance_path)))
    else:
        app.config.update(test_config)
    db.init_app(app)
    outage.init_app(app)
    # auth first: its user loader runs before CSRF's check (security), which can refuse the
    # request (a bad token, a body over the limit) before later hooks run; the error page then
    # still knows who is logged in and shows the navigation.
    auth.init_app(app)
    security.init_app(app)
    error_pages.init_app(app)
    student.init_app(app)
    instructor.init_app(app)
    api.init_app(app)
    return app
