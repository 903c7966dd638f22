"""Alembic environment: the whole schema (web's tables and the workers' submissions)."""

from __future__ import annotations

from alembic import context

from web.models import Base
from workers.db import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the migrations on the URL the caller gave (web.db.upgrade)."""
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
