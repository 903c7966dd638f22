"""Grading capacity in words: the instructor's worker and queue tables, their warning, the student's notice.

The numbers come from workers.health (heartbeats and queued rows in the database); this
module decides what each reader is told. An instructor hears which queue nobody serves, how
much waits there and the command that starts a worker for it; a student hears that the
submission is safe and will be graded when a worker starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from workers.health import QueueInfo, WorkerInfo, has_consumer, queue_health, worker_health
from workers.models import QUEUED, Submission

# What each queue's workers are called in messages (a queue not listed is named as it is).
LABELS = {"cpu": "CPU", "gpu": "GPU"}


@dataclass(frozen=True)
class Banner:
    """One banner line: what is wrong and the command that fixes it."""

    text: str
    command: str = ""

    def __str__(self) -> str:
        return f"{self.text} `{self.command}`" if self.command else self.text


@dataclass(frozen=True)
class Health:
    """What the instructor's pages show about grading capacity."""

    workers: list[WorkerInfo]
    queues: list[QueueInfo]
    warnings: list[Banner]


def overview(session: Session) -> Health:
    """Workers, queues and a warning for each queue where work waits and no live worker takes it."""
    queues = queue_health(session)
    return Health(workers=worker_health(session), queues=queues,
                  warnings=[unserved_warning(q) for q in queues if q.unserved])


def age(seconds: float | None) -> str:
    """A duration as people say it: 40 s, 12 min, 3 h, 2 days."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def unserved_warning(q: QueueInfo) -> Banner:
    """The instructor's banner for a queue with waiting work and no live consumer."""
    label = LABELS.get(q.queue, q.queue)
    waits = f"{q.waiting} submission waits" if q.waiting == 1 else f"{q.waiting} submissions wait"
    text = (f"No worker is taking the {q.queue} queue: {waits} (oldest {age(q.oldest_waiting_s)}). "
            f"Start a {label} worker")
    if q.queue == "cpu":
        text += " (or restart `python -m web serve`, whose embedded worker takes cpu)"
    return Banner(text=text + ":", command=f"grader worker --queue {q.queue}")


def waiting_notice(session: Session, sub: Submission) -> str | None:
    """For a queued submission whose queue no live worker takes: what the student should know."""
    if sub.state != QUEUED or has_consumer(session, sub.queue):
        return None
    label = LABELS.get(sub.queue, sub.queue)
    grader = "grader" if sub.queue == "cpu" else f"{label} grader"
    return (f"No {grader} is running right now. Your submission is saved and will be graded when one "
            "starts; your instructor can see this.")
