"""The Alembic migrations build, from empty, exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

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
