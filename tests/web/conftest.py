"""Real parts for the web's tests: SQLite and PostgreSQL (a fresh schema a session), a real broker file.

Route tests run on both databases (`db_url` is parametrized). Each test starts from empty
tables; the schema is built once per database by the Alembic migrations themselves.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from web_helpers import ROOT, Factory

from web import create_app
from web.db import upgrade
from web.models import Base
from workers.db import make_engine

PG_ADMIN = os.environ.get("TORCHGRADE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session", autouse=True)
def course(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The course with every due date a month from now, for the app and its subprocesses.

    The manifests carry the term's real deadlines; without this, every upload in these tests
    would be refused as too late once the term's last late day has passed.
    """
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "assignments", root, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    due = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()
    for manifest in root.glob("*/assignment.toml"):
        text, count = re.subn(r'(?m)^due = ".*"$', f'due = "{due}"', manifest.read_text())
        assert count == 1, f"{manifest}: expected one due date"
        manifest.write_text(text)
    patch = pytest.MonkeyPatch()
    patch.setenv("TORCHGRADE_ASSIGNMENTS", str(root))
    yield root
    patch.undo()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated from empty: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'web.sqlite'}"
        upgrade(url)
        yield url
        return
    schema = f"tgweb_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The serverless broker (kombu's SQLAlchemy transport) in a file of this session."""
    return f"sqla+sqlite:///{tmp_path_factory.mktemp('broker') / 'broker.sqlite'}"


@pytest.fixture
def app(db_url: str, broker_url: str) -> Iterator[Flask]:
    """The app on empty tables (CSRF on, as in production)."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    app = create_app({"DATABASE_URL": db_url, "BROKER_URL": broker_url, "SUBMISSIONS_PER_HOUR": 5})
    yield app
    app.extensions["torchgrade.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def factory(app: Flask) -> Factory:
    """Test data factory bound to the app."""
    return Factory(app)


class Service:
    """`python -m web serve` as a subprocess on its own SQLite, broker and embedded worker."""

    ADMIN_PASSWORD = "admin-" + "p" * 10

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

    def create_user(self, username: str, role: str = "student", password: str = "pw-" + "x" * 8) -> str:
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


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The one-command service, started once for the end-to-end and browser tests."""
    svc = Service(tmp_path_factory.mktemp("service"))
    yield svc
    svc.stop()
