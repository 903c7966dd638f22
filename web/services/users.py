"""Accounts: password hashing with argon2, login, password change and reset, disabling."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.errors import BadCredentials, Forbidden, NotFound, ServiceError
from web.models import INSTRUCTOR, ROLES, STUDENT, User
from web.services import passwords, sessions, tokens
from workers.models import utcnow

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


# Read aloud or copied by hand from a screen: no characters that look alike (0/O, 1/l/I).
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def new_password(username: str = "") -> str:
    """A random one-time password like `k7Rw-xq3M-...` (16 characters, 93 bits) that passes the policy."""
    while True:  # a draw that happens to hold the username, or to look like a word, is drawn again
        password = "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
        try:
            passwords.check(password, username=username)
            return password
        except passwords.WeakPassword:
            continue


def create_user(session: Session, *, username: str, password: str, role: str = STUDENT, name: str = "",
                email: str = "", must_change: bool = False) -> User:
    """Create and commit a user; ServiceError if the username is taken, the role unknown or the password weak.

    must_change: the password is a one-time one (generated and handed out), to be replaced at first login.
    """
    username = username.strip()
    if not username or role not in ROLES:
        raise ServiceError(f"a user needs a username and a role in {ROLES}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ServiceError(f"the username {username!r} is taken")
    passwords.check(password, username=username, others=(name, email))
    user = User(username=username, password_hash=hash_password(password), role=role, name=name, email=email,
                must_change_password=must_change)
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
    generated = not password
    password = password or new_password("admin")
    create_user(session, username="admin", password=password, role=INSTRUCTOR, name="Instructor",
                must_change=generated)
    return password


def change_password(session: Session, user: User, *, current: str, new: str) -> None:
    """Replace user's password after checking the current one; every session of theirs is revoked.

    BadCredentials if current is wrong, WeakPassword if new fails the policy (or is the current one).
    The caller opens a fresh session for the browser that asked (so only the others end).
    """
    if not verify_password(user.password_hash, current):
        raise BadCredentials("your current password is not the one you typed; type it again (if you have "
                             "forgotten it, ask your instructor to reset it)")
    if new == current:
        raise passwords.WeakPassword("the new password is the same as the current one: choose another one")
    passwords.check(new, username=user.username, others=(user.name, user.email))
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.password_changed_at = utcnow()
    sessions.revoke_all(session, user.id, commit=False)
    session.commit()


def _student_for(session: Session, actor: User, user_id: int, action: str, own: str) -> User:
    """The student an instructor acts on; Forbidden for an instructor's account (their own included)."""
    user = get_user(session, user_id)
    if user.id == actor.id:
        raise Forbidden(f"you cannot {action} your own account{own}")
    if user.role != STUDENT:
        raise Forbidden(f"you cannot {action} another instructor's account here: an operator can run "
                        "`python -m web reset-password USERNAME` on the server")
    return user


def reset_password(session: Session, actor: User, user_id: int) -> tuple[User, str]:
    """Give a student a one-time password (returned, shown once); end their sessions and API tokens."""
    user = _student_for(session, actor, user_id, "reset the password of",
                        ": change your own password on the Change password page")
    return user, _reset(session, user)


def _reset(session: Session, user: User) -> str:
    password = new_password(user.username)
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.password_changed_at = utcnow()
    sessions.revoke_all(session, user.id, commit=False)
    # A reset is how a taken-over account is recovered: tokens made with it must die with it.
    tokens.revoke_all_tokens(session, user.id)
    session.commit()
    return password


def operator_reset(session: Session, username: str) -> str:
    """A one-time password for any account, for an operator on the server (`python -m web reset-password`)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"No such user: {username}")
    return _reset(session, user)


def set_active(session: Session, actor: User, user_id: int, active: bool) -> User:
    """Enable or disable a student's account; disabling ends every session of theirs at once."""
    user = _student_for(session, actor, user_id, "disable or enable",
                        " (so that no course is left without an instructor who can log in)")
    user.active = active
    if not active:
        sessions.revoke_all(session, user.id, commit=False)
    session.commit()
    return user
