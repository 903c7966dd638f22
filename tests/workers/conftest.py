"""Real parts for the workers' tests: redis-server processes, PostgreSQL, SQLite, Celery workers."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from workers.celery_app import make_app
from workers.config import Settings
from workers.db import make_engine, session_for
from workers.models import Submission, SubmissionEvent, create_schema
from workers.service import create_submission, enqueue_submission

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fixture assignments' tests run only inside the engine's own trusted session."""
    engine_session = config.inipath is not None and config.inipath.name == "pytest-session.ini"
    if not engine_session and FIXTURES in collection_path.parents:
        return True
    return None
ASSIGNMENTS = Path(__file__).parent / "fixtures" / "assignments"

GOOD = b"def answer(x):\n    return x * 2\n"
WRONG = b"def answer(x):\n    return x + 1\n"
RAISES = b"def answer(x):\n    raise ValueError('student bug')\n"
SLOW = b"import time\n\ndef answer(x):\n    time.sleep(3)\n    return x * 2\n"
HANGS = b"import time\n\ndef answer(x):\n    time.sleep(1000)\n    return x * 2\n"

# Short timings so leases expire and sweeps happen within a test's seconds.
FAST_ENV = {
    "TORCHGRADE_ASSIGNMENTS": str(ASSIGNMENTS),
    "TORCHGRADE_ENGINE_OVERHEAD_S": "2",
    "TORCHGRADE_LEASE_GRACE_S": "4",
    "TORCHGRADE_QUEUED_GRACE_S": "4",
    "TORCHGRADE_SWEEP_EVERY_S": "1",
    "TORCHGRADE_RETRY_BASE_S": "0.5",
    "TORCHGRADE_VISIBILITY_FLOOR_S": "3600",
}


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.2) -> object:
    """Poll predicate until it is truthy, or fail the test saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RedisServer:
    """A real redis-server on its own port, without persistence; can be stopped and restarted."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), 10, "redis-server to answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def queue_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue on Redis: its list for each priority step."""
    from workers.broker_view import REDIS_PRIORITY_STEPS, REDIS_SEP

    return sum(client.llen(queue if step == 0 else f"{queue}{REDIS_SEP}{step}")
               for step in REDIS_PRIORITY_STEPS)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (tests flush it)."""
    assert shutil.which("redis-server"), "redis-server is needed (.ci/run installs it)"
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server: RedisServer) -> str:
    """A clean Redis broker URL."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture(autouse=True)
def _assignments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' own assignments and short timings, in this process and the workers it starts."""
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the shared PostgreSQL `test` database, dropped afterwards."""
    from tests.pg import fresh_schema  # here: the engine's own pytest session reads this conftest too

    with fresh_schema("tgw") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'torchgrade.sqlite'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each database the service supports."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with the workers' tables."""
    engine = make_engine(db_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def submit(engine: Engine, app, n: int = 1, *, slug: str = "tiny", content: bytes = GOOD,
           enqueue: bool = True) -> list[int]:
    """Create n committed submissions, then enqueue them (the order web/ uses)."""
    ids = []
    with session_for(engine) as session:
        for _ in range(n):
            ids.append(create_submission(session, assignment=slug, filename="submission.py",
                                         content=content, owner="student").id)
        session.commit()
    if enqueue:
        for sid in ids:
            assert enqueue_submission(engine, sid, app=app, settings=Settings.from_env())
    return ids


def states(engine: Engine, ids: list[int] | None = None) -> dict[int, Submission]:
    """Submissions by id, freshly read."""
    with session_for(engine) as session:
        rows = session.scalars(select(Submission)).all()
        return {r.id: r for r in rows if ids is None or r.id in ids}


def graded_events(engine: Engine) -> dict[int, int]:
    """How many times each submission was recorded as graded."""
    with engine.connect() as conn:
        rows = conn.execute(select(SubmissionEvent.submission_id, func.count())
                            .where(SubmissionEvent.event == "graded")
                            .group_by(SubmissionEvent.submission_id))
        return dict(rows.all())


def all_final(engine: Engine, ids: list[int]) -> bool:
    """Whether every one of ids is graded or failed."""
    rows = states(engine, ids)
    return len(rows) == len(ids) and all(r.state in ("graded", "failed") for r in rows.values())


def assert_graded_once(engine: Engine, ids: list[int], score: float = 2.0) -> None:
    """Every submission graded, with the expected score, and recorded as graded exactly once."""
    rows = states(engine, ids)
    bad = {i: (r.state, r.score, r.reason) for i, r in rows.items()
           if r.state != "graded" or r.score != score}
    assert not bad, f"not graded as expected: {bad}"
    events = graded_events(engine)
    twice = {i: events.get(i, 0) for i in ids if events.get(i, 0) != 1}
    assert not twice, f"graded events per submission should be exactly 1: {twice}"


class Worker:
    """A real `python -m workers worker` process group."""

    def __init__(self, log: Path, proc: subprocess.Popen, hostname: str) -> None:
        self.log, self.proc, self.hostname = log, proc, hostname

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> Worker:
        wait_until(lambda: " ready." in self.text() or self.proc.poll() is not None, timeout,
                   f"worker {self.hostname} to start")
        assert self.proc.poll() is None, f"worker exited early:\n{self.text()[-3000:]}"
        return self

    def kill_all(self) -> None:
        """kill -9 the worker and its pool children at once (a node dying)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill_all()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start real workers; every one is stopped (its whole process group) afterwards."""
    started: list[Worker] = []

    def start(*, broker: str, database: str, queue: str = "cpu", concurrency: int = 1,
              hostname: str | None = None, env: dict[str, str] | None = None, wait: bool = True) -> Worker:
        hostname = hostname or f"{queue}-{uuid.uuid4().hex[:6]}@test"
        log = tmp_path / f"{hostname}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers", "worker", "--queue", queue, "--concurrency", str(concurrency),
             "--broker", broker, "--database", database, "--hostname", hostname],
            cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **FAST_ENV, **(env or {})})
        worker = Worker(log, proc, hostname)
        started.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def app_for() -> Callable[[str], object]:
    """A Celery app (for sending) on a broker URL, configured like the workers'."""
    return lambda broker: make_app(dataclasses.replace(Settings.from_env(), broker_url=broker))


class TcpCut:
    """A TCP forwarder in front of a real server that a test can cut and mend: a network
    or server outage as the client sees it (connections reset, new ones refused)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threading = threading
        self.mend()

    def _serve(self, listener: socket.socket) -> None:
        # Imported here: this conftest is also read by the engine's own pytest session
        # (the fixture assignments below it), where the checkout is not importable.
        from tests.tcp import pump

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=pump, args=(a, b), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass

    def mend(self) -> None:
        """Listen (again) on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._threading.Thread(target=self._serve, args=(listener,), daemon=True).start()


def via(url: str, cut: TcpCut) -> str:
    """The same database URL through the forwarder's port."""
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{cut.port}/")
