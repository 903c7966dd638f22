"""Score history: every grading of a submission the service has seen, with its tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workers.models import Base, utcnow


class GradeRecord(Base):
    """One grading of a submission; a regrade adds a record, never overwrites one."""

    __tablename__ = "grade_records"
    __table_args__ = (UniqueConstraint("submission_id", "graded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    suite_version: Mapped[str | None] = mapped_column(String(64), default=None)
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    state: Mapped[str] = mapped_column(String(16))
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tests: Mapped[list[TestOutcome]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                    order_by="TestOutcome.id")


class TestOutcome(Base):
    """One test's points in one grading (for pass rates and the history)."""

    __tablename__ = "test_outcomes"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grade_id: Mapped[int] = mapped_column(ForeignKey("grade_records.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    suite: Mapped[str] = mapped_column(String(16), default="public")
    visibility: Mapped[str] = mapped_column(String(16), default="visible")
    points: Mapped[float] = mapped_column(Float, default=0.0)
    max_points: Mapped[float] = mapped_column(Float, default=0.0)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
