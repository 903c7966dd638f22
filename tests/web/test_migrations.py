"""The Alembic migrations build, from empty, exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.pg import fresh_schema
from web.db import alembic_config
from web.models import Base
from workers.db import make_engine


def test_migrated_schema_matches_the_models(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    engine.dispose()
    assert diff == [], f"the models changed without a migration: {diff}"
    assert version == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()


def test_0003_idempotency_keys_downgrades_and_upgrades_again(tmp_path):
    """The newest migration goes both ways on a database that already holds a key."""
    from alembic import command
    from sqlalchemy import inspect
    from sqlalchemy.orm import Session

    from web.db import upgrade
    from web.models import IdempotencyKey, Submission, User

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        user, sub = User(username="a", password_hash="x"), Submission(assignment="s", filename="f.py",
                                                                      content=b"x")
        s.add_all([user, sub])
        s.flush()
        s.add(IdempotencyKey(user_id=user.id, key="k-12345678", request_hash="h", submission_id=sub.id))
        s.commit()
    command.downgrade(alembic_config(url), "0002")
    assert "idempotency_keys" not in inspect(engine).get_table_names()
    upgrade(url)
    assert "idempotency_keys" in inspect(engine).get_table_names()
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite'}"
        return
    with fresh_schema("tgmig") as url:
        yield url


def test_0004_downgrades_and_upgrades_again_keeping_accounts(empty_db):
    """0004 goes both ways on a database with users, sessions, overrides and extensions (revoked and not)."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import inspect, select, text
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from web.db import upgrade
    from web.models import Extension, ScoreOverride, User, UserSession

    url = empty_db
    command.upgrade(alembic_config(url), "0003")
    engine = make_engine(url)
    with engine.begin() as conn:  # an account made before 0004: it must keep working after it
        conn.execute(text("INSERT INTO users (username, name, email, role, password_hash, active, "
                          "created_at) VALUES ('old', '', '', 'student', 'x', :yes, :at)"),
                     dict(yes=True, at=datetime(2026, 1, 1, tzinfo=UTC)))
    upgrade(url)
    now = datetime.now(UTC)
    with Session(engine) as s:
        old = s.query(User).filter_by(username="old").one()
        assert old.must_change_password is False and old.password_changed_at is None
        s.add_all([UserSession(user_id=old.id, token_hash="h" * 64),
                   ScoreOverride(user_id=old.id, assignment="a", score=3.0, comment="regrade by hand"),
                   Extension(user_id=old.id, assignment="a", due_at=now, revoked_at=now, revoked_by=old.id),
                   Extension(user_id=old.id, assignment="a", due_at=now, reason="in force")])
        s.commit()  # a revoked extension beside the one in force: both kept
        s.add(Extension(user_id=old.id, assignment="a", due_at=now, reason="a second in force"))
        with pytest.raises(IntegrityError):  # never two in force
            s.commit()
    command.downgrade(alembic_config(url), "0003")
    tables = inspect(engine).get_table_names()
    assert not {"user_sessions", "score_overrides", "background_jobs"} & set(tables)
    assert "must_change_password" not in {c["name"] for c in inspect(engine).get_columns("users")}
    with engine.connect() as conn:  # one a (student, assignment) again: the newest
        assert list(conn.execute(select(text("reason")).select_from(text("extensions")))) == [("in force",)]
    upgrade(url)
    assert {"user_sessions", "score_overrides", "background_jobs"} <= set(inspect(engine).get_table_names())
    engine.dispose()
