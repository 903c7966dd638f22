"""Helpers of the web tests: constants, CSRF tokens from pages, a test data factory, uploads."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web import db
from web.models import User
from web.services.users import create_user
from workers.models import GRADED, Submission, utcnow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("TORCHGRADE_SCREENSHOTS", ROOT / "screenshots" / "web"))
WIDTHS = (1280, 375)  # a laptop, and a phone (an iPhone SE/mini is 375 px wide)
SLUG = "03_numpy_backprop"  # NumPy only: cheap to grade where a test needs a real worker
SOLUTION = (ROOT / "assignments" / SLUG / "solution.py").read_bytes()
STARTER_NB = (ROOT / "assignments" / SLUG / "starter.ipynb").read_bytes()
PASSWORD = "Plum-Harbor-4271-kite"  # passes the password policy (web/services/passwords.py)
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


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        pytest.fail(f"{name} is needed to start a private PostgreSQL: apt-get install -y postgresql")
    return str(found)


class PrivatePostgres:
    """A PostgreSQL server of this test session alone, so a test may stop it (the shared one must stay up).

    Stopped with `pg_ctl -m immediate`: the server goes away as in a crash or a network cut, with the
    app's pooled connections left open. Started again, it keeps its data. As root, it runs as the
    `postgres` user (initdb refuses root), in a folder under /tmp that user can reach.
    """

    def __init__(self) -> None:
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="tg-private-pg-"))
        self.data = self.dir / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8")
        self.start()

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w",
                  "start")

    def stop(self) -> None:
        """Stop it at once, as a crash would (open connections are cut)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        """Whether the server is up."""
        return (self.data / "postmaster.pid").exists()

    def close(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class LiveServer:
    """The app behind a real HTTP server (werkzeug's, threaded) on a free port, in this process."""

    def __init__(self, app: Flask) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


class Service:
    """`python -m web serve` as a subprocess on its own SQLite, broker and embedded worker."""

    ADMIN_PASSWORD = "Admin-Lantern-9813-quay"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "BROKER_URL", "TORCHGRADE_DATABASE", "TORCHGRADE_BROKER")}
        self.env.update(TORCHGRADE_INSTANCE=str(tmp / "instance"), PYTHONPATH=str(ROOT),
                        TORCHGRADE_ADMIN_PASSWORD=self.ADMIN_PASSWORD)
        self.log = open(tmp / "service.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "web", "serve", "--port", str(self.port), "--workers", "1",
             "--threads", "8", "--worker-concurrency", "1"], cwd=tmp, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (tmp / "service.log").read_text()
            try:
                urllib.request.urlopen(self.url + "/login", timeout=2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the service did not answer in 60 s:\n" + (tmp / "service.log").read_text())

    def create_user(self, username: str, role: str = "student", password: str = PASSWORD) -> str:
        """Create a user with the operators' command against the service's own database."""
        subprocess.run([sys.executable, "-m", "web", "create-user", username, "--role", role,
                        "--password", password], cwd=self.tmp, env=self.env, check=True, capture_output=True)
        return password

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # gunicorn stops, then `serve` stops its worker
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def login(page: Any, service: Any, username: str, password: str) -> None:
    """Log in through the login form in the browser and wait for the signed-in header."""
    from playwright.sync_api import expect

    page.goto(service.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Log in')")
    expect(page.locator("span.who")).to_contain_text(username)


def shot(page: Any, name: str) -> None:
    """A full-page screenshot in SHOTS at the page's current width."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def shots(page: Any, name: str) -> dict[int, int]:
    """Screenshots at each of WIDTHS (name-1280.png, name-375.png); the page's scroll width at each.

    A page usable on a phone has no horizontal scroll: callers assert scroll width <= the width.
    The viewport is back at 1280 px after; tables may scroll inside their own box (.scroll).
    """
    widths = {}
    for w in WIDTHS:
        page.set_viewport_size({"width": w, "height": 900})
        page.wait_for_timeout(50)
        widths[w] = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(SHOTS / f"{name}-{w}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    return widths
