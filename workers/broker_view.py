"""Which submissions have a grading message waiting in the broker now (for the sweeper).

The sweeper resends a queued submission whose message may be lost (a Redis restart
without persistence, a publish that failed). A backlog is not a loss: in a deadline burst
messages wait longer than any grace, and resending them doubled the queue (1376 messages
for 252 submissions). So before resending, the sweeper looks at what waits:

- Redis: the queue's lists, one per priority step (kombu's `queue`, `queue\\x06\\x163`...);
- kombu's SQLAlchemy transport: the visible rows of `kombu_message`.

A message a worker took and has not acked counts (on Redis) for the queued grace after its
delivery: the worker may hold it behind the grading it is doing, or while it waits out a
database outage. Held unclaimed for longer, its worker is taken for dead (Redis would
give it back only after the visibility timeout, an hour) and it is resent.
"""

from __future__ import annotations

import base64
import json
import logging

from kombu.transport.redis import PRIORITY_STEPS as REDIS_PRIORITY_STEPS
from kombu.transport.redis import Channel as _RedisChannel

from workers.config import TASK_NAME

log = logging.getLogger(__name__)
REDIS_SEP = _RedisChannel.sep  # kombu's key for a queue's priority step: queue + sep + step


def submission_of(payload: bytes | str | dict) -> int | None:
    """The submission id a kombu message (JSON envelope) asks to grade, or None."""
    try:
        message = payload if isinstance(payload, dict) else json.loads(payload)
        if message.get("headers", {}).get("task") != TASK_NAME:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _held(entry: bytes | None) -> int | None:
    """The submission of one entry of kombu's `unacked` hash ([message, exchange, key])."""
    try:
        return submission_of(json.loads(entry)[0]) if entry else None
    except (ValueError, IndexError, TypeError):
        return None


def _redis_waiting(url: str, queues: tuple[str, ...], held_within_s: float) -> set[int]:
    import time

    import redis

    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    try:
        found: set[int] = set()
        keys = [q if step == 0 else f"{q}{REDIS_SEP}{step}" for q in queues
                for step in REDIS_PRIORITY_STEPS]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.lrange(key, 0, -1)
            for items in pipe.execute():
                found.update(i for i in map(submission_of, items) if i is not None)
        # Delivered lately and not acked: a worker holds it (reserved behind its grading, or
        # waiting out an outage). Held for longer, it is taken for lost with its worker.
        tags = client.zrangebyscore("unacked_index", time.time() - held_within_s, "+inf")
        if tags:
            found.update(i for i in map(_held, client.hmget("unacked", tags)) if i is not None)
        return found
    finally:
        client.close()


def _sqlalchemy_waiting(url: str, queues: tuple[str, ...]) -> set[int]:
    from sqlalchemy import bindparam, create_engine, inspect, text

    engine = create_engine(url.removeprefix("sqla+"))
    try:
        if not inspect(engine).has_table("kombu_message"):
            return set()
        query = text("SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
                     "WHERE m.visible AND q.name IN :queues").bindparams(
                         bindparam("queues", expanding=True))
        with engine.connect() as conn:
            rows = conn.execute(query, {"queues": list(queues)}).scalars()
            return {i for i in map(submission_of, rows) if i is not None}
    finally:
        engine.dispose()


def waiting_submissions(broker_url: str, queues: tuple[str, ...],
                        held_within_s: float = 0.0) -> set[int] | None:
    """Ids with a grading message waiting in these queues (on Redis also one a worker took
    less than held_within_s ago and has not acked); None where it cannot be known (another
    transport, or the broker did not answer: the caller then resends as before)."""
    try:
        if broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
            return _redis_waiting(broker_url, queues, held_within_s)
        if broker_url.startswith("sqla+"):
            return _sqlalchemy_waiting(broker_url, queues)
    except Exception as exc:  # the broker is away: sending would fail too
        log.warning("could not read the broker's queues (%s: %s)", type(exc).__name__, exc)
    return None
