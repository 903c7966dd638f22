"""Worker settings, read from the environment (the CLI's flags set the same variables).

Environment variables, so that forked pool children and `celery -A workers.celery_app`
see the same values as `python -m workers worker`:

    TORCHGRADE_DATABASE      SQLAlchemy URL of the database (default: SQLite under instance/)
    TORCHGRADE_BROKER        Celery broker URL (default: kombu's SQLAlchemy transport on SQLite)
    TORCHGRADE_LEASE_GRACE_S seconds a lease outlives the task's hard time limit (default 60)
    TORCHGRADE_QUEUED_GRACE_S seconds a queued submission may wait before the sweeper resends
                             its message (default 300)
    TORCHGRADE_SWEEP_EVERY_S how often each worker sweeps and beats its heart (default 10)
    TORCHGRADE_MAX_ATTEMPTS  claims before a submission is failed for good (default 3)
    TORCHGRADE_MAX_DELIVERIES messages delivered for one submission before it is failed with
                             the last problem seen (default 20): infrastructure errors hand
                             the attempt back, so this is what bounds a retry loop
    TORCHGRADE_VISIBILITY_FLOOR_S least Redis visibility timeout (default 3600)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

INSTANCE = Path(os.environ.get("TORCHGRADE_INSTANCE", Path.cwd() / "instance"))
QUEUES = ("cpu", "gpu")  # the Celery queues: an assignment's device
TASK_NAME = "workers.grade"  # the grading task's name, in every message


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    """Everything a worker or an enqueuing process needs to know."""

    database_url: str
    broker_url: str
    lease_grace_s: float = 60.0
    queued_grace_s: float = 300.0
    sweep_every_s: float = 10.0
    max_attempts: int = 3
    max_deliveries: int = 20
    visibility_floor_s: float = 3600.0
    # Time the engine needs beyond the student's total limit (imports, pytest start).
    engine_overhead_s: float = 15.0

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from TORCHGRADE_* variables, with single-machine defaults."""
        return cls(
            database_url=os.environ.get("TORCHGRADE_DATABASE", f"sqlite:///{INSTANCE / 'torchgrade.sqlite'}"),
            broker_url=os.environ.get("TORCHGRADE_BROKER", f"sqla+sqlite:///{INSTANCE / 'broker.sqlite'}"),
            lease_grace_s=_float("TORCHGRADE_LEASE_GRACE_S", 60.0),
            queued_grace_s=_float("TORCHGRADE_QUEUED_GRACE_S", 300.0),
            sweep_every_s=_float("TORCHGRADE_SWEEP_EVERY_S", 10.0),
            max_attempts=int(os.environ.get("TORCHGRADE_MAX_ATTEMPTS", 3)),
            max_deliveries=int(os.environ.get("TORCHGRADE_MAX_DELIVERIES", 20)),
            visibility_floor_s=_float("TORCHGRADE_VISIBILITY_FLOOR_S", 3600.0),
            engine_overhead_s=_float("TORCHGRADE_ENGINE_OVERHEAD_S", 15.0),
        )

    @property
    def broker_is_redis(self) -> bool:
        """Whether the broker is Redis (visibility timeout applies)."""
        return self.broker_url.startswith(("redis://", "rediss://", "redis+socket://"))
