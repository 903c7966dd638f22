"""A named lease in the database that one process of the cluster holds at a time.

The sweep runs on every worker node's housekeeper thread; two sweeping at once each
resent the same backlog. The database is the one thing every node shares whatever the
broker, so the lock is a row there: taken or renewed with one conditional UPDATE (the
same fencing as a submission's lease), taken over only once its holder let it expire.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from workers.models import ServiceLock, utcnow

L = ServiceLock.__table__


def hold(engine: Engine, name: str, owner: str, ttl_s: float) -> bool:
    """Take or renew the lock `name` for ttl_s seconds; False while another owner holds it."""
    now = utcnow()
    until = now + timedelta(seconds=ttl_s)
    with engine.begin() as conn:
        free = or_(L.c.owner == owner, L.c.owner.is_(None), L.c.expires_at.is_(None),
                   L.c.expires_at < now)
        if conn.execute(update(L).where(L.c.name == name, free)
                        .values(owner=owner, expires_at=until)).rowcount == 1:
            return True
        if conn.execute(select(L.c.name).where(L.c.name == name)).first() is not None:
            return False
    try:
        with engine.begin() as conn:
            conn.execute(insert(L).values(name=name, owner=owner, expires_at=until))
        return True
    except IntegrityError:  # another node inserted it first
        return False


def holder(engine: Engine, name: str) -> str | None:
    """Who holds the lock now, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(L.c.owner, L.c.expires_at).where(L.c.name == name)).first()
    from workers.db import as_utc

    if row is None or row.owner is None or row.expires_at is None or as_utc(row.expires_at) < utcnow():
        return None
    return row.owner


def let_go(engine: Engine, name: str, owner: str) -> None:
    """Hand the lock back at once (a node stopping), if this owner holds it."""
    with engine.begin() as conn:
        conn.execute(update(L).where(L.c.name == name, L.c.owner == owner)
                     .values(owner=None, expires_at=None))
