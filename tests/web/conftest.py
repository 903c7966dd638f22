"""Real parts for the web's tests: SQLite and PostgreSQL (a fresh schema a session), a real broker file.

Route tests run on both databases (`db_url` is parametrized). Each test starts from empty
tables; the schema is built once per database by the Alembic migrations themselves.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import CHROMIUM, ROOT, SHOTS, Factory, LiveServer, PrivatePostgres, Service

from tests.pg import fresh_schema
from web import create_app
from web.db import upgrade
from web.models import Base
from workers.db import make_engine


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
    with fresh_schema("tgweb") as url:
        upgrade(url)
        yield url


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


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The one-command service, started once for the end-to-end and browser tests."""
    svc = Service(tmp_path_factory.mktemp("service"))
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL, migrated to the newest schema (up at the start of each test using it)."""
    pg = PrivatePostgres()
    upgrade(pg.url)
    yield pg
    pg.close()


@pytest.fixture
def outage_app(private_pg: PrivatePostgres, broker_url: str) -> Iterator[Flask]:
    """The app on the private PostgreSQL (started, tables emptied), retrying after 1 s when it is down."""
    if not private_pg.running():
        private_pg.start()
    engine = make_engine(private_pg.url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    app = create_app({"DATABASE_URL": private_pg.url, "BROKER_URL": broker_url,
                      "UNAVAILABLE_RETRY_AFTER_S": 1})
    yield app
    app.extensions["torchgrade.engine"].dispose()
    if not private_pg.running():
        private_pg.start()


@pytest.fixture
def live(outage_app: Flask) -> Iterator[LiveServer]:
    """outage_app served over real HTTP."""
    server = LiveServer(outage_app)
    yield server
    server.close()


@pytest.fixture
def outage_factory(outage_app: Flask) -> Factory:
    """Test data factory bound to outage_app."""
    return Factory(outage_app)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Debian's Chromium driven by Playwright (which never downloads a browser of its own here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is needed for the browser tests: apt-get install -y chromium")
    import playwright.sync_api as playwright  # the dev extra; a missing one fails here
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def page(browser, request):  # noqa: ANN001, ANN201 (playwright types, imported lazily)
    """A fresh browser context and page at 1280 px; dialogs are recorded (and dismissed) in page.dialogs."""
    # The hostile-content test turns the Content-Security-Policy off: escaping alone must keep it inert.
    bypass = "inert" in request.node.name
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                  bypass_csp=bypass)
    page = context.new_page()
    page.set_default_timeout(60_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()
