"""What the instructor's health table shows: each worker node, and each queue's consumers.

A node writes its heartbeat row every few seconds (`workers.service.beat`); a node that
stopped (a clean shutdown) or went silent is shown as such for FORGET_AFTER_S, then
left out (its row is deleted by the sweeper after PRUNE_AFTER_S). A queue with waiting
submissions and no live consumer is the case nobody notices without this: a GPU exercise
with no GPU worker, or an embedded worker that died.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from workers.config import QUEUES
from workers.db import as_utc, engine_of
from workers.models import QUEUED, RUNNING, Submission, WorkerHeartbeat, utcnow

STALE_AFTER_S = 30.0  # a heartbeat older than this: the node is taken for dead
FORGET_AFTER_S = 3600.0  # a stopped or dead node is still listed this long
PRUNE_AFTER_S = 86400.0  # and its row deleted after this
S = Submission.__table__
H = WorkerHeartbeat.__table__


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the dashboard shows it."""

    hostname: str
    queues: str
    pid: int
    concurrency: int
    gpus: int
    started_at: datetime
    last_seen_at: datetime
    alive: bool
    stopped: bool
    grading: list[int]

    @property
    def status(self) -> str:
        """'alive', 'stopped' (shut down cleanly) or 'dead' (no heartbeat lately)."""
        return "alive" if self.alive else "stopped" if self.stopped else "dead"


@dataclass(frozen=True)
class QueueInfo:
    """One Celery queue: how many live workers consume it and how much waits on it."""

    queue: str
    consumers: int
    waiting: int
    oldest_waiting_s: float | None

    @property
    def unserved(self) -> bool:
        """Work waits and no live worker takes this queue."""
        return self.waiting > 0 and self.consumers == 0


def worker_health(bind: Session | Engine, *, stale_after_s: float = STALE_AFTER_S,
                  forget_after_s: float = FORGET_AFTER_S) -> list[WorkerInfo]:
    """Every worker seen lately, whether it is alive, and what it is grading."""
    engine = engine_of(bind)
    now = utcnow()
    with engine.connect() as conn:
        beats = conn.execute(select(H).where(H.c.last_seen_at >= now - timedelta(seconds=forget_after_s))
                             .order_by(H.c.hostname)).mappings().all()
        running = conn.execute(select(S.c.id, S.c.lease_owner).where(S.c.state == RUNNING)).all()
    out = []
    for b in beats:
        last = as_utc(b["last_seen_at"])
        stopped = b["stopped_at"] is not None
        alive = not stopped and (now - last).total_seconds() <= stale_after_s
        grading = sorted(r.id for r in running if (r.lease_owner or "").startswith(b["hostname"] + "/"))
        out.append(WorkerInfo(hostname=b["hostname"], queues=b["queues"], pid=b["pid"],
                              concurrency=b["concurrency"], gpus=b["gpus"],
                              started_at=as_utc(b["started_at"]), last_seen_at=last, alive=alive,
                              stopped=stopped, grading=grading))
    return out


def queue_health(bind: Session | Engine, *, stale_after_s: float = STALE_AFTER_S) -> list[QueueInfo]:
    """Each queue that has a consumer or waiting work (cpu always), with both counts."""
    engine = engine_of(bind)
    now = utcnow()
    consumers: dict[str, int] = {}
    for w in worker_health(engine, stale_after_s=stale_after_s):
        for queue in filter(None, (q.strip() for q in w.queues.split(","))):
            consumers[queue] = consumers.get(queue, 0) + (1 if w.alive else 0)
    with engine.connect() as conn:
        rows = conn.execute(select(S.c.queue, func.count(), func.min(S.c.created_at))
                            .where(S.c.state == QUEUED).group_by(S.c.queue)).all()
    waiting = {r[0]: (r[1], as_utc(r[2])) for r in rows}
    names = [q for q in QUEUES if q == "cpu" or q in consumers or q in waiting]
    names += sorted((set(consumers) | set(waiting)) - set(names))
    out = []
    for queue in names:
        count, oldest = waiting.get(queue, (0, None))
        out.append(QueueInfo(queue=queue, consumers=consumers.get(queue, 0), waiting=count,
                             oldest_waiting_s=(now - oldest).total_seconds() if oldest else None))
    return out


def has_consumer(bind: Session | Engine, queue: str, *, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether a live worker consumes `queue` now (a student's page says so when none does;
    one query, as the page polls it)."""
    since = utcnow() - timedelta(seconds=stale_after_s)
    with engine_of(bind).connect() as conn:
        consumed = conn.execute(select(H.c.queues).where(H.c.stopped_at.is_(None),
                                                         H.c.last_seen_at >= since)).scalars()
        return any(queue in (q.strip() for q in queues.split(",")) for queues in consumed)


def prune_gone_workers(engine: Engine, *, older_than_s: float = PRUNE_AFTER_S) -> int:
    """Delete heartbeat rows of nodes silent (stopped or dead) for longer than older_than_s."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with engine.begin() as conn:
        return conn.execute(delete(H).where(H.c.last_seen_at < cutoff)).rowcount
