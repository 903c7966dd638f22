"""Course settings of an assignment (its content lives in assignments/) and extensions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from workers.models import Base, utcnow


class AssignmentSettings(Base):
    """What the course staff choose per assignment: score policy and submission rate."""

    __tablename__ = "assignment_settings"

    slug: Mapped[str] = mapped_column(String(200), primary_key=True)
    # "best" or "last"; None means the service default.
    score_policy: Mapped[str | None] = mapped_column(String(8), default=None)
    # Submissions a student may make per hour; None means the service default, 0 no limit.
    hourly_limit: Mapped[int | None] = mapped_column(Integer, default=None)


class Extension(Base):
    """A per-student due date that replaces the assignment's (and so its late policy's start).

    Granting again revokes the one in force and adds a row, so every grant and revoke is kept.
    """

    __tablename__ = "extensions"
    # One extension in force per student and assignment; revoked ones stay beside it, for the record.
    __table_args__ = (Index("uq_extensions_live", "user_id", "assignment", unique=True,
                            sqlite_where=text("revoked_at IS NULL"),
                            postgresql_where=text("revoked_at IS NULL")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assignment: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A revoked extension no longer moves the due date; the row stays for the record.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
