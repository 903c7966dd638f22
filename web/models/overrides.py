"""Score overrides: an instructor's score for a student's assignment, every change kept (the audit trail)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workers.models import Base, utcnow


class ScoreOverride(Base):
    """One change of an override; the newest row of a (student, assignment) is in force.

    A row with score None removes the override (the graded score counts again); rows are
    never updated or deleted, so the table is the audit trail.
    """

    __tablename__ = "score_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assignment: Mapped[str] = mapped_column(String(200), index=True)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
