"""The serverless default (SQLite + kombu's SQLAlchemy broker), GPU refusal, and the Celery config."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

from grader.assignment import discover
from tests.workers.conftest import ROOT, SLOW, all_final, assert_graded_once, submit, wait_until
from workers.celery_app import make_app
from workers.config import Settings
from workers.db import make_engine
from workers.gpu import claim_gpu
from workers.models import create_schema
from workers.service import hard_limit_s, visibility_timeout_s


def test_sqlite_broker_survives_a_killed_worker(tmp_path, start_worker):
    """No servers at all: a whole worker killed mid-grading (the message is gone for good) is still graded."""
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    db = make_engine(database)
    create_schema(db)
    app = make_app(dataclasses.replace(Settings.from_env(), broker_url=broker, database_url=database))
    doomed = start_worker(broker=broker, database=database, concurrency=1, hostname="cpu@solo")
    ids = submit(db, app, 3) + submit(db, app, content=SLOW)
    wait_until(lambda: _running(db, ids[-1]), 40, "the slow one to start")
    doomed.kill_all()
    # Restarted under the same name (as systemd or docker restart it): orphans are requeued at once.
    start_worker(broker=broker, database=database, concurrency=1, hostname="cpu@solo")
    wait_until(lambda: all_final(db, ids), 60, "every submission on the serverless broker")
    assert_graded_once(db, ids)


def _running(db, sid) -> bool:
    from tests.workers.conftest import states

    return states(db, [sid])[sid].state == "running"


def test_gpu_queue_refused_without_a_gpu(tmp_path):
    """No GPU on this machine (none can be attached in CI): `--queue gpu` refuses and says why."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TORCHGRADE_DATABASE": f"sqlite:///{tmp_path}/db"}
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "worker", "--queue", "gpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing the gpu queue: no GPU is visible" in proc.stderr


def test_each_pool_process_locks_its_own_gpu(tmp_path):
    """One GPU per pool child: two processes on a 2-GPU list take different ones, a third is refused.

    GPU ids here are only names (no GPU on this machine); the locking is real.
    """
    code = ("import sys, time; from workers.gpu import claim_gpu; "
            "print(claim_gpu(['0', '1'], sys.argv[1]), flush=True); time.sleep(5)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE) for _ in range(2)]
    try:
        got = sorted(p.stdout.readline().strip() for p in procs)
        assert got == ["0", "1"]
        try:
            claim_gpu(["0", "1"], tmp_path)
        except RuntimeError as exc:
            assert "held by other pool processes" in str(exc)
        else:
            raise AssertionError("a third process got a GPU that two others hold")
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_celery_config_and_visibility_timeout(broker):
    """JSON, late acks, reject on lost worker, prefetch 1; Redis redelivers only after the longest job."""
    settings = dataclasses.replace(Settings.from_env(), broker_url=broker, visibility_floor_s=1)
    app = make_app(settings)
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert {q.name for q in conf.task_queues} == {"cpu", "gpu"}
    longest = max(hard_limit_s(a, settings) for a in discover().values())
    assert conf.broker_transport_options["visibility_timeout"] >= 2 * longest
    assert visibility_timeout_s([], settings) == 1
    sqla = make_app(dataclasses.replace(settings, broker_url="sqla+sqlite:///x.sqlite"))
    assert not sqla.conf.broker_transport_options  # that transport crashes on these options
