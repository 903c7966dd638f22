"""SQL models the workers own: submissions with their grading state, leases and results.

The database is the source of truth for a submission's state; the broker only carries
work. `web/` imports these models to create submissions and show results.

States and who moves them:

    queued  --claim-->  running  --finish-->  graded
       ^                   |  \\--fail------>  failed  (with a reason: instructor or infrastructure)
       +----sweeper--------+  (lease expired, or the message was lost)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

QUEUED, RUNNING, GRADED, FAILED = "queued", "running", "graded", "failed"
STATES = (QUEUED, RUNNING, GRADED, FAILED)
FINAL_STATES = (GRADED, FAILED)


def utcnow() -> datetime:
    """Now, timezone-aware UTC (stored naive-UTC by SQLite, timestamptz by PostgreSQL)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the workers' tables (web/ may share its metadata)."""


class Submission(Base):
    """One submitted file, its grading state, lease and result."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment: Mapped[str] = mapped_column(String(200), index=True)
    # Who submitted: web/'s user id as text (no foreign key, so the workers need no web tables).
    owner: Mapped[str | None] = mapped_column(String(200), index=True, default=None)
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    # Why it failed (instructor or infrastructure), or a note on how it was graded.
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    queue: Mapped[str] = mapped_column(String(16), default="cpu")
    # Claims so far; also the fencing token: a finish counts only with the attempt that claimed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Messages that reached a worker (duplicates included); for operators and the tests.
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    task_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The secret seed of the hidden tests' inputs: kept so a regrade reproduces the score.
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    suite_version: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (Index("ix_submissions_state_lease", "state", "lease_expires_at"),)

    def __repr__(self) -> str:
        return f"<Submission {self.id} {self.assignment} {self.state}>"


class SubmissionEvent(Base):
    """What happened to a submission, in order: claimed, graded, requeued, failed, duplicate."""

    __tablename__ = "submission_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                               index=True)
    event: Mapped[str] = mapped_column(String(32))
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    attempt: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkerHeartbeat(Base):
    """A worker's last sign of life, written by the worker every few seconds."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ServiceLock(Base):
    """A named lease that one process across the cluster holds at a time (the sweep's)."""

    __tablename__ = "service_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(255), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


def create_schema(engine: Engine) -> None:
    """Create the workers' tables where they are missing (web/'s migrations may do it instead)."""
    Base.metadata.create_all(engine)
