"""Accounts: password hashing with argon2, login, roster import from CSV."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.errors import BadCredentials, NotFound, ServiceError
from web.models import INSTRUCTOR, ROLES, STUDENT, User

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    """An argon2id hash of password."""
    return _hasher.hash(password)


def verify_password(user_hash: str, password: str) -> bool:
    """Whether password matches the stored hash."""
    try:
        return _hasher.verify(user_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A random password to hand out once."""
    return secrets.token_urlsafe(12)


def create_user(session: Session, *, username: str, password: str, role: str = STUDENT, name: str = "",
                email: str = "") -> User:
    """Create and commit a user; ServiceError if the username is taken or the role unknown."""
    username = username.strip()
    if not username or role not in ROLES:
        raise ServiceError(f"a user needs a username and a role in {ROLES}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ServiceError(f"the username {username!r} is taken")
    user = User(username=username, password_hash=hash_password(password), role=role, name=name, email=email)
    session.add(user)
    session.commit()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with these credentials, or BadCredentials."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise BadCredentials("wrong username or password")
    if not verify_password(user.password_hash, password) or not user.active:
        raise BadCredentials("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user


def get_user(session: Session, user_id: int) -> User:
    """The user with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No such user: {user_id}")
    return user


def students(session: Session) -> list[User]:
    """Every student, by username."""
    return list(session.scalars(select(User).where(User.role == STUDENT).order_by(User.username)))


def ensure_instructor(session: Session, password: str | None) -> str | None:
    """Create the first instructor `admin` when none exists; the password used, or None if one existed."""
    if session.scalar(select(func.count()).select_from(User).where(User.role == INSTRUCTOR)):
        return None
    password = password or new_password()
    create_user(session, username="admin", password=password, role=INSTRUCTOR, name="Instructor")
    return password


@dataclass
class RosterImport:
    """What a roster import did: new accounts with their one-time passwords, and skipped rows."""

    created: list[tuple[str, str]]
    skipped: list[str]


def import_roster(session: Session, text: str) -> RosterImport:
    """Create students from CSV with a `username` column (optional `name`, `email`); one commit."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "username" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ServiceError("the CSV needs a header row with a 'username' column (and optionally name, email)")
    existing = set(session.scalars(select(User.username)))
    out = RosterImport(created=[], skipped=[])
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        username = row.get("username", "")
        if not username or username in existing:
            out.skipped.append(username or "(empty username)")
            continue
        password = new_password()
        session.add(User(username=username, name=row.get("name", ""), email=row.get("email", ""),
                         role=STUDENT, password_hash=hash_password(password)))
        existing.add(username)
        out.created.append((username, password))
    session.commit()
    return out
