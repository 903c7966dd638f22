"""The app's database: one engine per app, one session per request (closed on teardown)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from workers.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


CONNECT_TIMEOUT_S = 5


def engine_url(url: str) -> str:
    """The app's database URL with a connect timeout on PostgreSQL (unless the URL sets one).

    Without it, a database host that drops packets holds a request for the kernel's TCP
    timeout (minutes) before the outage page; with it, the answer is a 503 in seconds.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    if not parsed.drivername.endswith(("+psycopg2", "+psycopg")) and "+" in parsed.drivername:
        return url  # another driver: its own option names
    return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)}).render_as_string(
        hide_password=False)


def init_app(app: Flask) -> None:
    """Make the engine (it connects on first use, not now) and close sessions after requests."""
    engine = make_engine(engine_url(app.config["DATABASE_URL"]))
    app.extensions["torchgrade.engine"] = engine
    app.extensions["torchgrade.sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close)


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["torchgrade.engine"]


def session() -> Session:
    """The request's session (services commit it)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["torchgrade.sessions"]()
    return g.db_session


def _close(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def alembic_config(url: str):  # noqa: ANN201 (alembic.config.Config, imported lazily)
    """An Alembic config pointing at web/migrations for this database URL."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str) -> None:
    """Bring the schema to the newest migration (from empty, too)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
