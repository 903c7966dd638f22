"""Users and their role: a student or an instructor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from workers.models import Base, utcnow

STUDENT, INSTRUCTOR = "student", "instructor"
ROLES = (STUDENT, INSTRUCTOR)


class User(Base):
    """An account; the password is stored only as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[str] = mapped_column(String(16), default=STUDENT, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A generated or reset password is for one login: the user must choose their own next.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_instructor(self) -> bool:
        """Whether this user may see the whole course."""
        return self.role == INSTRUCTOR

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"
