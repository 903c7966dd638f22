"""Helpers of the web tests: constants, CSRF tokens from pages, a test data factory, uploads."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from web import db
from web.models import User
from web.services.users import create_user
from workers.models import GRADED, Submission, utcnow

ROOT = Path(__file__).resolve().parents[2]
SLUG = "03_numpy_backprop"  # NumPy only: cheap to grade where a test needs a real worker
SOLUTION = (ROOT / "assignments" / SLUG / "solution.py").read_bytes()
STARTER_NB = (ROOT / "assignments" / SLUG / "starter.ipynb").read_bytes()
PASSWORD = "pw-" + "x" * 8
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_of(client: FlaskClient, path: str) -> str:
    """The CSRF token in the form on the page at path."""
    page = client.get(path)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


class Factory:
    """Test data: users, logins, and graded submissions as the workers would leave them."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def user(self, username: str, role: str = "student", password: str = PASSWORD) -> User:
        with self.app.app_context():
            return create_user(db.session(), username=username, password=password, role=role)

    def login(self, client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
        token = csrf_of(client, "/login")
        return client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    def graded(self, user: User, *, score: float, slug: str = SLUG, hours_ago: float = 0.0,
               tests: list[dict[str, Any]] | None = None, filename: str = "solution.py") -> int:
        """A graded submission row, as `workers.leases.finish` writes it."""
        tests = tests if tests is not None else [
            dict(name="forward", points=score, max_points=10.0, passed=score == 10, visibility="visible",
                 message="", suite="public"),
            dict(name="secret_backward", points=0.0, max_points=0.0, passed=True, visibility="hidden",
                 message="HIDDEN-DETAIL", suite="hidden")]
        at = utcnow() - timedelta(hours=hours_ago)
        result = dict(assignment=slug, status="graded", score=score, max_score=10.0, tests=tests, seed=7,
                      messages=[], sandbox={}, log="LOG-TEXT", executed_notebook=None, suite_version="v1",
                      duration_s=1.0)
        with self.app.app_context():
            s = db.session()
            sub = Submission(assignment=slug, owner=str(user.id), filename=filename, content=SOLUTION,
                             state=GRADED, queue="cpu", score=score, max_score=10.0, result=result,
                             suite_version="v1", seed=7, created_at=at, finished_at=at)
            s.add(sub)
            s.commit()
            return sub.id



def upload(client: FlaskClient, path: str, name: str, data: bytes) -> Any:
    """POST a file to an upload form, with the form's CSRF token."""
    token = csrf_of(client, path)
    return client.post(path, data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")



class Http:
    """A logged-in HTTP client over urllib with a cookie jar (the service runs as a subprocess)."""

    def __init__(self, base: str) -> None:
        import http.cookiejar
        import urllib.request

        self.base = base.rstrip("/")
        jar = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        self.opener = urllib.request.build_opener(jar)

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as resp:
            return resp.read().decode()

    def post(self, path: str, fields: dict[str, str], *, csrf_from: str | None = None) -> str:
        import urllib.parse

        token = CSRF.search(self.get(csrf_from or path)).group(1)
        body = urllib.parse.urlencode({**fields, "csrf_token": token}).encode()
        with self.opener.open(self.base + path, data=body, timeout=30) as resp:
            return resp.read().decode()

    def login(self, username: str, password: str) -> Http:
        page = self.post("/login", {"username": username, "password": password})
        assert "Log out" in page, f"login of {username} failed"
        return self

    def new_token(self) -> str:
        page = self.post("/account/tokens", {"name": "cli"})
        return re.search(r'id="new-token">([^<]+)<', page).group(1)
