"""API tokens: shown once when made, stored as a SHA-256, checked on each API call."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from web.errors import BadCredentials, NotFound
from web.models import ApiToken, User
from workers.db import as_utc
from workers.models import utcnow

PREFIX = "tg_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str) -> str:
    """Make and commit a token for user; the plain token is returned once and never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name.strip()[:100] or "token", prefix=token[:10],
                         token_hash=_digest(token)))
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User:
    """The active user a live token belongs to, or BadCredentials."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token.strip())))
    if row is None or row.revoked_at is not None:
        raise BadCredentials("unknown or revoked API token")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise BadCredentials("unknown or revoked API token")
    now = utcnow()
    # Written at most once a minute: a write per API call would serialise uploads on SQLite.
    if row.last_used_at is None or now - as_utc(row.last_used_at) > timedelta(minutes=1):
        row.last_used_at = now
        session.commit()
    return user


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """A user's tokens, newest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.id.desc())))


def revoke_token(session: Session, user: User, token_id: int) -> None:
    """Revoke one of user's own tokens; NotFound for anyone else's."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"No such token: {token_id}")
    row.revoked_at = row.revoked_at or utcnow()
    session.commit()


def revoke_all_tokens(session: Session, user_id: int) -> int:
    """Revoke every live token of a user, uncommitted (the caller commits); how many."""
    live = (ApiToken.user_id == user_id) & ApiToken.revoked_at.is_(None)
    result = session.execute(update(ApiToken).where(live).values(revoked_at=utcnow()))
    return result.rowcount
