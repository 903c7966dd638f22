"""The Celery app: JSON only, queues cpu and gpu, late acks, prefetch one.

Start a worker with `python -m workers worker --queue cpu` (or `grader worker`), or with
the plain command `celery -A workers.celery_app worker -Q cpu`. Nothing here connects to
the broker or the database at import time.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from celery import Celery, signals
from kombu import Queue

from workers.config import QUEUES, Settings

log = logging.getLogger(__name__)


def _visibility_timeout(settings: Settings) -> float:
    from grader.assignment import discover
    from workers.service import visibility_timeout_s

    try:
        assignments = list(discover().values())
    except Exception as exc:  # a broken assignment must not stop the workers starting
        log.warning("could not load the assignments for the visibility timeout: %s", exc)
        assignments = []
    return visibility_timeout_s(assignments, settings)


def make_app(settings: Settings | None = None) -> Celery:
    """A configured Celery app for these settings (default: from the environment)."""
    settings = settings or Settings.from_env()
    app = Celery("torchgrade", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],
        task_default_queue="cpu",
        task_create_missing_queues=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker restart is waited out, never fatal
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    if settings.broker_is_redis:
        # A message unacked for this long is delivered again; it must outlast the longest job
        # or Redis starts a second copy of a grading that is still running.
        app.conf.broker_transport_options = {"visibility_timeout": _visibility_timeout(settings)}
    # The SQLAlchemy transport crashes on polling_interval/visibility_timeout options: none given.
    app.conf.torchgrade_settings = settings
    return app


_app: Celery | None = None
_lock = threading.Lock()


def get_app() -> Celery:
    """The process's Celery app, made on first use from the environment."""
    global _app
    with _lock:
        if _app is None:
            _app = make_app()
        return _app


app = get_app()


def settings_of(a: Any) -> Settings:
    """The Settings an app was made with."""
    return a.conf.get("torchgrade_settings") or Settings.from_env()


# ---- worker process lifecycle: GPU refusal, one GPU per child, heartbeats and sweeping ----


def _consumed_queues(sender: Any) -> list[str]:
    try:
        return sorted(sender.app.amqp.queues.consume_from)
    except Exception:
        return [os.environ.get("TORCHGRADE_WORKER_QUEUE", "cpu")]


@signals.celeryd_after_setup.connect
def _after_setup(sender: str, instance: Any, **_: Any) -> None:
    """Refuse the gpu queue without a GPU; tell the pool children which queue they serve."""
    import grader.engine  # noqa: F401  (imported once here, inherited by every pool child)
    from workers.gpu import require_gpus
    from workers.log_events import install

    install()  # where Celery's logging set-up sent no after_setup_logger

    queues = sorted(instance.app.amqp.queues.consume_from)
    os.environ["TORCHGRADE_WORKER_QUEUE"] = ",".join(queues)
    if "gpu" in queues:
        gpus = require_gpus()  # NoGPU stops the worker with the reason
        if instance.concurrency > len(gpus):
            raise SystemExit(f"gpu workers run one task per GPU: concurrency {instance.concurrency} "
                             f"is more than the {len(gpus)} visible GPUs")


@signals.after_setup_logger.connect
def _quiet_logs(logger: logging.Logger, **_: Any) -> None:
    """One line per event in the worker's log (workers.log_events)."""
    from workers.log_events import install

    install(logger)


# A stop (systemd, `docker stop`, Ctrl-C) signals the whole process group. Celery's main
# process then stops taking work and waits for the gradings in flight (a warm shutdown);
# a pool process that died of the same SIGTERM would lose its grading. So a pool process
# keeps grading through it, and stops when the main process ends the pool. (billiard sets
# its own SIGTERM handler after the pool process starts: ours goes in at the first task,
# and hands an idle process's SIGTERM to billiard's.)
_grading_now = False
_billiards_sigterm: Any = None


def _on_sigterm(signum: int, frame: Any) -> None:
    if _grading_now:
        log.warning("pool process %s: finishing the grading in flight before it stops", os.getpid())
        return
    if callable(_billiards_sigterm):
        _billiards_sigterm(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@signals.task_prerun.connect
def _task_started(**_: Any) -> None:
    global _grading_now, _billiards_sigterm
    _grading_now = True
    current = signal.getsignal(signal.SIGTERM)
    if current is not _on_sigterm:
        _billiards_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)


@signals.task_postrun.connect
def _task_ended(**_: Any) -> None:
    global _grading_now
    _grading_now = False


@signals.worker_process_init.connect
def _child_init(**_: Any) -> None:
    """In each pool child: one line per event in its log, one GPU of its own on gpu
    workers, and warm zygotes."""
    from workers.log_events import install

    install()
    if "gpu" in os.environ.get("TORCHGRADE_WORKER_QUEUE", "").split(","):
        from workers.gpu import claim_gpu, visible_gpus

        gpu = claim_gpu(visible_gpus())
        log.info("pool process %s grades on GPU %s", os.getpid(), gpu)
    _warm_up()


def _warm_up() -> None:
    """Start this pool process's zygotes now (grader.sandbox.zygote), not at its first grading."""
    from grader.assignment import discover
    from grader.engine import warm_up

    gpu = "gpu" in os.environ.get("TORCHGRADE_WORKER_QUEUE", "").split(",")
    try:
        wanted = [a for a in discover().values() if (a.device == "gpu") == gpu]
        log.info("pool process %s started %d warm zygotes", os.getpid(), warm_up(wanted))
    except Exception as exc:  # a warm start is an optimisation: grading works without it
        log.warning("pool process %s could not warm up: %s", os.getpid(), exc)


class Housekeeper(threading.Thread):
    """The worker's background thread: a heartbeat and a sweep every few seconds."""

    def __init__(self, app: Celery, hostname: str, queues: str, concurrency: int) -> None:
        super().__init__(name="torchgrade-housekeeper", daemon=True)
        self.app, self.hostname, self.queues, self.concurrency = app, hostname, queues, concurrency
        self.settings = settings_of(app)
        self.stop = threading.Event()

    def _once(self) -> None:
        from workers.db import get_engine
        from workers.service import beat, sweep

        engine = get_engine(self.settings.database_url)
        gpus = len(os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")) if "gpu" in self.queues else 0
        beat(engine, hostname=self.hostname, queues=self.queues, pid=os.getpid(),
             concurrency=self.concurrency, gpus=gpus)
        report = sweep(engine, app=self.app, settings=self.settings, hostname=self.hostname)
        if report.did_something:
            log.warning("sweeper: requeued %s, failed %s, resent %s", report.requeued, report.failed,
                        report.resent)

    def run(self) -> None:
        """Beat and sweep until stopped; an outage is one line when it starts, one when it ends."""
        failing_since: float | None = None
        while not self.stop.is_set():
            try:
                self._once()
                if failing_since is not None:
                    log.warning("heartbeat/sweep works again after %.0f s", time.monotonic() - failing_since)
                    failing_since = None
            except Exception as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("heartbeat/sweep failed (%s: %s); retrying every %g s",
                                type(exc).__name__, str(exc).splitlines()[0][:200],
                                self.settings.sweep_every_s)
            self.stop.wait(self.settings.sweep_every_s)


_housekeeper: Housekeeper | None = None


@signals.worker_ready.connect
def _worker_ready(sender: Any, **_: Any) -> None:
    global _housekeeper
    from workers.db import get_engine
    from workers.models import create_schema

    settings = settings_of(sender.app)
    create_schema(get_engine(settings.database_url))
    concurrency = getattr(getattr(sender, "controller", None), "concurrency", 0) or 0
    _housekeeper = Housekeeper(sender.app, sender.hostname, ",".join(_consumed_queues(sender)),
                               concurrency)
    _housekeeper.start()


@signals.worker_shutdown.connect
def _worker_shutdown(sender: Any, **_: Any) -> None:
    from workers import cluster_lock
    from workers.db import get_engine
    from workers.leases import owner_name
    from workers.service import SWEEP_LOCK, beat

    if _housekeeper is None:
        return
    _housekeeper.stop.set()
    engine = get_engine(_housekeeper.settings.database_url)
    try:
        beat(engine, hostname=_housekeeper.hostname, queues=_housekeeper.queues, pid=os.getpid(),
             concurrency=_housekeeper.concurrency, gpus=0, stopped=True)
        cluster_lock.let_go(engine, SWEEP_LOCK, owner_name(_housekeeper.hostname))
    except Exception as exc:
        log.warning("could not record the worker's shutdown: %s", exc)
