"""Login sessions kept on the server: the cookie carries a random token, the table its SHA-256.

A session ends when it is revoked (logout; a password change or reset; the account being
disabled), when it has been idle too long, or when it is too old; an ended session's cookie
no longer authenticates, even a copy taken before.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from web.models import User, UserSession
from workers.db import as_utc
from workers.models import utcnow

# last_seen_at is written at most this often: a page view is then a read, not a write (SQLite).
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: idle (since its last request) and in all (since login)."""

    idle: timedelta = timedelta(days=7)
    total: timedelta = timedelta(days=30)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a session token, as stored (a leaked table gives no usable cookie)."""
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, *, address: str = "", user_agent: str = "") -> str:
    """Open and commit a session for user; the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=token_hash(token), address=address[:64],
                            user_agent=user_agent[:200]))
    session.commit()
    return token


def load(session: Session, token: str, lifetime: Lifetime = Lifetime()) -> User | None:
    """The active user of a live session with this token, or None (revoked, expired, unknown)."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    last_seen, created = as_utc(row.last_seen_at), as_utc(row.created_at)
    if now - last_seen > lifetime.idle or now - created > lifetime.total:
        row.revoked_at = now
        session.commit()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - last_seen >= TOUCH_EVERY:
        row.last_seen_at = now
        session.commit()
    return user


def revoke(session: Session, token: str) -> None:
    """End the session with this token (logout); nothing if it is unknown or already ended."""
    session.execute(update(UserSession).where(UserSession.token_hash == token_hash(token),
                                              UserSession.revoked_at.is_(None)).values(revoked_at=utcnow()))
    session.commit()


def revoke_all(session: Session, user_id: int, *, commit: bool = True) -> int:
    """End every live session of a user; how many were ended (commit=False: the caller commits)."""
    result = session.execute(update(UserSession).where(UserSession.user_id == user_id,
                                                       UserSession.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
    if commit:
        session.commit()
    return result.rowcount


def live_count(session: Session, user_id: int) -> int:
    """How many sessions of a user are not revoked (idle ones included until next seen)."""
    rows = session.scalars(select(UserSession.id).where(UserSession.user_id == user_id,
                                                        UserSession.revoked_at.is_(None)))
    return len(list(rows))
