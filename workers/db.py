"""Database engines and sessions, one engine per process and URL."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[tuple[int, str], Engine] = {}


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 (DB-API objects)
    cur = dbapi_conn.cursor()
    # WAL lets the web read while a worker writes; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def normalize_url(url: str) -> str:
    """postgresql:// with the driver we ship (psycopg2) when psycopg 3 is not installed."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """A new SQLAlchemy engine for url, with SQLite made safe for several processes."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 5})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A host that drops packets must read as an outage within seconds, not minutes.
    args = {"connect_timeout": 10} if url.startswith("postgresql+psycopg2") else {}
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4, connect_args=args)


def get_engine(url: str) -> Engine:
    """The engine for url in this process (a forked child gets its own, never the parent's)."""
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = make_engine(url)
    return _engines[key]


def engine_of(bind: Session | Engine) -> Engine:
    """The Engine behind a session, a connection or an engine."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.engine if hasattr(engine, "engine") else engine  # a Connection gives its Engine


def session_for(engine: Engine) -> Session:
    """A session that keeps loaded values after commit."""
    return sessionmaker(engine, expire_on_commit=False)()


def as_utc(value: datetime | None) -> datetime | None:
    """A stored datetime as aware UTC (SQLite gives it back naive)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
