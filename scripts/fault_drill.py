"""Fault drill: a burst of submissions through real workers while their servers fail.

    python scripts/fault_drill.py [--n 300] [--workers 2] [--assignment tiny|01_tensors|...]
        [--faults dup,kill,redis,postgres,freeze] [--seed 0] [--json drill.json]

Everything it uses it starts itself, on free ports and in one temporary folder, so it
never touches the machine's own Redis or PostgreSQL: a redis-server without persistence,
a PostgreSQL cluster of its own (initdb; as root through `runuser -u postgres`), and
`--workers` real `python -m workers worker` processes, each its own process group with
a hostname of its own. It submits --n submissions at once (the reference solution, plus
--wrong-frac of known-wrong ones: the starter, the assignment's examples/ with their
expected scores), and while the workers drain them it injects, in the order given:

    dup       every --dup-frac'th submission is sent twice at submit time, and later some
              queued, running and graded ones are sent again (a broker redelivering)
    kill      kill -9 a worker node's whole process tree (pool, zygotes, jobs), start another
    redis     kill Redis and start it again on the same port: every message in it is lost
    postgres  pg_ctl stop -m fast, --pg-down-s seconds down, start again
    freeze    SIGSTOP a worker node (one that holds a lease) for longer than its lease, SIGCONT

Faults fire as the burst progresses (the i-th of k when about 8% + 60% i/(k-1) of the burst
is final), one at a time. The drill settings are short (lease grace, queued grace, sweep
interval: the tests' FAST_ENV) so recovery happens within the drill; flags change them.
When every submission is final (or --drain-timeout-s passes) it waits --settle-s more for
late duplicate gradings, then prints the figures and writes them as JSON (--json):
graded, failed (reasons grouped), lost (still queued or running), graded twice (more than
one 'graded' event), wrong scores, time to drain, rate, each fault with its recovery time,
deliveries per submission, the sweeper's resends, and the workers' log lines by level with
the most repeated ones.

Exit status: 0 when nothing is lost, nothing is graded twice and no score is wrong; 1 when
one of those happened; 2 when the drill itself could not run. Every process it started and
its temporary folder are removed on exit, Ctrl-C included (--keep keeps the folder).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests") / "workers" / "fixtures" / "assignments"  # in the checkout under test
ALL_FAULTS = ("dup", "kill", "redis", "postgres", "freeze")
SCHEDULED = ("dup", "kill", "redis", "postgres", "freeze")

# The tests' short timings (tests/workers/conftest.py FAST_ENV), so that a lease expires and a
# lost message is resent within the drill's seconds rather than the service's minutes.
DRILL_ENV = {
    "TORCHGRADE_ENGINE_OVERHEAD_S": "2",
    "TORCHGRADE_LEASE_GRACE_S": "4",
    "TORCHGRADE_QUEUED_GRACE_S": "4",
    "TORCHGRADE_SWEEP_EVERY_S": "1",
    "TORCHGRADE_RETRY_BASE_S": "0.5",
    "TORCHGRADE_VISIBILITY_FLOOR_S": "3600",
}
# Wrong answers to the tests' tiny assignment (twice x) whose score is certain whatever the seed.
TINY_WRONG = {
    "wrong_half_off": (b"def answer(x):\n    return 2 * x + 0.5\n", 0.0),
    "raises": (b"def answer(x):\n    raise ValueError('student bug')\n", 0.0),
}
PR_SET_CHILD_SUBREAPER = 36
# Held while a child is started or waited for by subprocess, so reap_orphans (which collects
# the orphans that reach us as subreaper) never takes a status subprocess is waiting for.
SPAWN_LOCK = threading.RLock()


class DrillError(Exception):
    """The drill itself could not run (a server would not start, a worker died at once)."""


def log(msg: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, every: float = 0.2):
    """Poll predicate until truthy; DrillError saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise DrillError(f"timed out after {timeout:g} s waiting for {what}")


# ---------------------------------------------------------------- processes ----------


def _become_subreaper() -> None:
    """Orphans of our children (a killed worker's zygotes) become ours, so cleanup finds them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2:
            table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int, *, include_self: bool = True) -> list[int]:
    """pid and every live process below it, parents before children (zombies left out)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        if p in table and table[p][1] != "Z" and (p != pid or include_self):
            out.append(p)
        todo += children.get(p, [])
    return out


def signal_all(pids: list[int], sig: int) -> None:
    """Send sig to each pid that still exists."""
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reap_orphans(keep: set[int]) -> None:
    """Collect exited processes that became ours as subreaper (not the Popen ones: they wait)."""
    me = os.getpid()
    with SPAWN_LOCK:
        for p, (ppid, state) in _proc_table().items():
            if ppid == me and state == "Z" and p not in keep:
                try:
                    os.waitpid(p, os.WNOHANG)
                except ChildProcessError:
                    pass


class RedisServer:
    """A redis-server of the drill's own, no persistence; kill and start on the same port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.pushes_before = 0  # pushes counted by earlier runs of the server (restarts)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        if not shutil.which("redis-server"):
            raise DrillError("redis-server is not installed (apt-get install redis-server)")
        self.starts += 1
        with SPAWN_LOCK, (self.folder / "redis.log").open("ab") as out:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def pings() -> bool:
            if self.proc.poll() is not None:
                raise DrillError(f"redis-server exited: see {self.folder / 'redis.log'}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(pings, 20, "redis-server to answer")

    def pushes(self) -> int:
        """Messages pushed into Redis lists since it started (its own command counters)."""
        import redis

        try:
            stats = redis.Redis(port=self.port, socket_connect_timeout=1).info("commandstats")
        except redis.RedisError:
            return 0
        return sum(int(v.get("calls", 0)) for k, v in stats.items()
                   if k in ("cmdstat_lpush", "cmdstat_rpush"))

    def kill(self) -> None:
        self.pushes_before += self.pushes()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def waiting(self, queue: str) -> dict[str, int] | None:
        """Messages waiting in a queue (all its priority lists) and unacked ones; None if away."""
        import redis

        try:
            client = redis.Redis(port=self.port, socket_connect_timeout=1)
            lists = [k for k in client.keys(f"{queue}*") if k == queue.encode()
                     or k.startswith(f"{queue}\x06\x16".encode())]
            return {"waiting": sum(int(client.llen(k)) for k in lists),
                    "unacked": int(client.hlen("unacked"))}
        except redis.RedisError:
            return None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb into the drill's folder), on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.bin = self._find_bin()
        self.as_root = os.geteuid() == 0

    @staticmethod
    def _find_bin() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                       key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
        if found:
            return found[-1].parent
        initdb = shutil.which("initdb")
        if initdb:
            return Path(initdb).parent
        raise DrillError("PostgreSQL's initdb was not found (apt-get install postgresql)")

    def _run(self, *argv: str, timeout: float = 60) -> None:
        # PostgreSQL refuses to run as root: as root, run it as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        with SPAWN_LOCK, (self.folder / "pg_ctl.out").open("ab") as out:
            proc = subprocess.run([*prefix, *argv], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, start_new_session=True)
        if proc.returncode != 0:
            raise DrillError(f"{Path(argv[0]).name} failed ({proc.returncode}): see "
                             f"{self.folder / 'pg_ctl.out'} and {self.folder / 'postgres.log'}")

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        os.chmod(self.folder, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
                  "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class Worker:
    """One `python -m workers worker` node: its process group and its log."""

    hostname: str
    proc: subprocess.Popen
    log_path: Path
    started_at: float
    ready_at: float | None = None
    ended: str = ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tree(self) -> list[int]:
        return descendants(self.proc.pid) if self.alive() else []

    def kill_tree(self) -> list[int]:
        """kill -9 the node: its process group and everything below it (zygotes, jobs)."""
        pids = self.tree()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        signal_all(pids, signal.SIGKILL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        return pids


# ---------------------------------------------------------------- the drill ----------


@dataclass
class Fault:
    """One injected fault and what followed it."""

    kind: str
    at: float  # wall clock, time.time()
    detail: dict[str, Any] = field(default_factory=dict)
    victims: list[int] = field(default_factory=list)
    ended_at: float | None = None

    def as_dict(self, t0: float) -> dict[str, Any]:
        return {"kind": self.kind, "at_s": round(self.at - t0, 2),
                "at": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds"),
                "active_s": round((self.ended_at or self.at) - self.at, 2), **self.detail,
                "victims": self.victims}


@dataclass
class Kind:
    """A kind of submission in the burst: its bytes and the score it must get."""

    name: str
    content: bytes
    score: float
    state: str = "graded"


class Drill:
    """Servers, workers, the burst, the faults, and the figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="torchgrade-drill-"))
        os.chmod(self.tmp, 0o711)  # the postgres user reaches its own folder inside
        self.redis = RedisServer(self.tmp / "redis")
        self.pg = PostgresCluster(self.tmp / "pg")
        self.workers: list[Worker] = []
        self.serial = 0
        self.faults: list[Fault] = []
        self.not_fired: list[str] = []
        self.frozen: list[int] = []
        self.sent_by_drill = 0
        self.ids: list[int] = []
        self.kind_of: dict[int, str] = {}
        self.kinds: dict[str, Kind] = {}
        self.t0 = 0.0
        self.stop = threading.Event()
        self.fault_error: BaseException | None = None
        self.engine = None
        self.app = None
        self.queue = "cpu"
        self.lease_s = 0.0
        self.code_version = code_version(args.code)

    # ---- setup

    def env(self) -> dict[str, str]:
        """What the workers (and this process) run with."""
        a = self.args
        pythonpath = os.pathsep.join([str(a.code), *filter(None, [os.environ.get("PYTHONPATH")])])
        return {**DRILL_ENV,
                "TORCHGRADE_LEASE_GRACE_S": str(a.lease_grace_s),
                "TORCHGRADE_QUEUED_GRACE_S": str(a.queued_grace_s),
                "TORCHGRADE_SWEEP_EVERY_S": str(a.sweep_every_s),
                "TORCHGRADE_ASSIGNMENTS": str(a.assignments_root),
                "TORCHGRADE_DATABASE": self.pg.url,
                "TORCHGRADE_BROKER": self.redis.url,
                "TORCHGRADE_INSTANCE": str(self.tmp / "instance"),
                "PYTHONPATH": pythonpath}

    def setup(self) -> None:
        log(f"folder {self.tmp}")
        self.pg.init()
        self.pg.start()
        self.redis.start()
        log(f"postgresql on port {self.pg.port}, redis on port {self.redis.port}")
        os.environ.update(self.env())
        from grader.assignment import find
        from workers.celery_app import make_app
        from workers.config import Settings
        from workers.db import make_engine
        from workers.models import create_schema
        from workers.service import lease_s, queue_for

        settings = Settings.from_env()
        self.engine = make_engine(settings.database_url)
        create_schema(self.engine)
        self.app = make_app(settings)
        try:
            assignment = find(self.args.assignment)
        except Exception as exc:
            raise DrillError(str(exc)) from exc
        self.assignment = assignment
        self.queue = queue_for(assignment)
        self.lease_s = lease_s(assignment, settings)
        self.kinds = self._kinds(assignment)
        log(f"assignment {assignment.slug} ({assignment.device}), lease {self.lease_s:g} s, kinds "
            + ", ".join(f"{k.name}={k.score:g}" for k in self.kinds.values()))
        for _ in range(self.args.workers):
            self.start_worker()
        for w in self.workers:
            self.wait_ready(w)

    def _kinds(self, assignment) -> dict[str, Kind]:
        """The reference (full marks), and known-wrong submissions with their exact scores."""
        kinds = {"solution": Kind("solution", assignment.solution.read_bytes(), float(assignment.points))}
        wrong: list[Kind] = []
        if assignment.starter_module.exists():
            wrong.append(Kind("starter", assignment.starter_module.read_bytes(), 0.0))
        if assignment.slug == "tiny" and assignment.path.parent == self.args.code / FIXTURES:
            wrong += [Kind(name, content, score) for name, (content, score) in TINY_WRONG.items()]
        try:
            from grader.validate import load_examples

            folder = self.tmp / "examples"
            folder.mkdir(exist_ok=True)
            for ex in load_examples(assignment):
                path = ex.materialize(assignment, folder)
                wrong.append(Kind(f"example:{ex.name}", path.read_bytes(), ex.score, ex.status))
        except Exception as exc:  # examples are extra; the reference alone still drills
            log(f"could not load the assignment's examples: {exc}")
        if self.args.wrong_frac > 0:
            for k in wrong:
                kinds[k.name] = k
        return kinds

    def start_worker(self) -> Worker:
        self.serial += 1
        hostname = f"drill{self.serial}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        path = self.tmp / "logs" / f"worker{self.serial:02d}-{hostname.split('@')[0]}.log"
        path.parent.mkdir(exist_ok=True)
        cwd = self.tmp / "cwd"  # not the checkout: the grader refuses imports from the working dir
        cwd.mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "workers", "worker", "--queue", self.queue,
                "--concurrency", str(self.args.concurrency), "--hostname", hostname,
                "--loglevel", self.args.loglevel]
        with SPAWN_LOCK, path.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **self.env()})
        worker = Worker(hostname, proc, path, time.time())
        self.workers.append(worker)
        return worker

    def wait_ready(self, w: Worker, timeout: float = 120) -> None:
        def ready() -> bool:
            if not w.alive():
                raise DrillError(f"worker {w.hostname} exited ({w.proc.returncode}):\n{w.text()[-3000:]}")
            return " ready." in w.text() or self._beat(w.hostname)

        wait_for(ready, timeout, f"worker {w.hostname} to be ready", every=0.3)
        w.ready_at = time.time()

    # ---- database reads (each tolerates the database being away)

    def _rows(self, query) -> list | None:
        import sqlalchemy.exc

        try:
            with self.engine.connect() as conn:
                return conn.execute(query).all()
        except sqlalchemy.exc.SQLAlchemyError:
            return None

    def _beat(self, hostname: str) -> bool:
        """Whether the worker has written its heartbeat (it does so when ready)."""
        from sqlalchemy import select

        from workers.models import WorkerHeartbeat

        return bool(self._rows(select(WorkerHeartbeat.hostname).where(WorkerHeartbeat.hostname == hostname)))

    def final_count(self) -> int | None:
        from sqlalchemy import func, select

        from workers.models import Submission

        rows = self._rows(select(func.count()).where(Submission.id.in_(self.ids),
                                                     Submission.state.in_(("graded", "failed"))))
        return rows[0][0] if rows else None

    def running_on(self, hostname: str) -> list[int]:
        from sqlalchemy import select

        from workers.models import Submission

        rows = self._rows(select(Submission.id).where(Submission.state == "running",
                                                      Submission.lease_owner.like(f"{hostname}/%")))
        return sorted(r[0] for r in rows or [])

    def in_state(self, state: str) -> list[int]:
        from sqlalchemy import select

        from workers.models import Submission

        rows = self._rows(select(Submission.id).where(Submission.id.in_(self.ids), Submission.state == state))
        return sorted(r[0] for r in rows or [])

    # ---- the burst

    def submit(self) -> None:
        from workers.db import session_for
        from workers.service import create_submission, enqueue_submission, send

        wrong = [n for n in self.kinds if n != "solution"]
        n_wrong = round(self.args.wrong_frac * self.args.n) if wrong else 0
        plan = [wrong[i % len(wrong)] for i in range(n_wrong)] + ["solution"] * (self.args.n - n_wrong)
        self.rng.shuffle(plan)
        self.t0 = time.time()
        with session_for(self.engine) as session:
            subs = [create_submission(session, assignment=self.assignment.slug, filename="submission.py",
                                      content=self.kinds[k].content, owner=f"drill-{i}")
                    for i, k in enumerate(plan)]
            session.commit()
            self.ids = [s.id for s in subs]
        self.kind_of = dict(zip(self.ids, plan, strict=True))
        dup_every = round(1 / self.args.dup_frac) if "dup" in self.args.faults and self.args.dup_frac else 0
        dups = 0
        for i, sid in enumerate(self.ids):
            if enqueue_submission(self.engine, sid, app=self.app):
                self.sent_by_drill += 1
            if dup_every and i % dup_every == 0:  # the broker delivers this one twice
                send(self.app, sid, self.assignment, self._settings())
                self.sent_by_drill += 1
                dups += 1
        log(f"submitted {len(self.ids)} ({dict(Counter(plan))}), {dups} sent twice, in "
            f"{time.time() - self.t0:.1f} s")

    def _settings(self):
        from workers.celery_app import settings_of

        return settings_of(self.app)

    # ---- faults

    def thresholds(self) -> list[tuple[str, float]]:
        """(fault, share of the burst final when it fires), in order."""
        kinds = [f for f in self.args.faults if f in SCHEDULED]
        if self.args.at:
            return list(zip(kinds, self.args.at, strict=True))
        if len(kinds) == 1:
            return [(kinds[0], 0.15)]
        return [(k, 0.08 + 0.6 * i / (len(kinds) - 1)) for i, k in enumerate(kinds)]

    def run_faults(self) -> None:
        """The fault thread: each fault when its share of the burst is final, one at a time."""
        try:
            for kind, share in self.thresholds():
                goal = max(1, int(share * len(self.ids)))
                while not self.stop.is_set():
                    done = self.final_count()
                    if done is not None and done >= min(goal, len(self.ids)):
                        break
                    time.sleep(0.3)
                if self.stop.is_set():
                    self.not_fired.append(kind)
                    continue
                if (self.final_count() or 0) >= len(self.ids):
                    self.not_fired.append(kind)  # the burst drained before its turn
                    log(f"fault {kind} not fired: the burst was already drained")
                    continue
                getattr(self, f"fault_{kind}")()
                time.sleep(self.args.fault_gap_s)
        except BaseException as exc:  # reported by the main thread
            self.fault_error = exc
            log(f"fault thread failed: {type(exc).__name__}: {exc}")

    def _alive_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.alive() and not w.ended]

    def _busy_worker(self, within: float = 10.0) -> tuple[Worker | None, list[int]]:
        """A live worker that holds a lease now (waiting a little for one), and what it holds."""
        deadline = time.monotonic() + within
        while True:
            candidates = self._alive_workers()
            self.rng.shuffle(candidates)
            for w in candidates:
                held = self.running_on(w.hostname)
                if held:
                    return w, held
            if time.monotonic() > deadline or not candidates:
                return (candidates[0] if candidates else None), []
            time.sleep(0.1)

    def fault_dup(self) -> None:
        from workers.service import send

        picked = []
        for state in ("queued", "running", "graded"):
            ids = self.in_state(state)
            picked += self.rng.sample(ids, min(len(ids), max(1, self.args.n // 50)))
        fault = Fault("dup", time.time(), victims=sorted(picked))
        for sid in picked:
            try:
                send(self.app, sid, self.assignment, self._settings())
                self.sent_by_drill += 1
            except Exception as exc:
                fault.detail.setdefault("send_errors", []).append(f"{sid}: {exc}")
        fault.ended_at = time.time()
        fault.detail["sent_again"] = len(picked)
        self.faults.append(fault)
        log(f"dup: sent {len(picked)} submissions' tasks again (queued, running and graded ones)")

    def fault_kill(self) -> None:
        victim, held = self._busy_worker()
        if victim is None:
            self.not_fired.append("kill")
            return
        fault = Fault("kill", time.time(), victims=held, detail={"worker": victim.hostname})
        pids = victim.kill_tree()
        victim.ended = "killed"
        fault.detail["processes_killed"] = len(pids)
        log(f"kill: kill -9 {victim.hostname} ({len(pids)} processes) while it graded {held}")
        new = self.start_worker()  # the node comes back (under a new name); the next fault need not wait
        fault.ended_at = time.time()
        fault.detail["replacement"] = new.hostname
        self.faults.append(fault)

        def until_ready() -> None:
            try:
                self.wait_ready(new)
            except BaseException as exc:
                self.fault_error = exc
                log(f"kill: the replacement worker did not start: {exc}")
                return
            fault.detail["replacement_ready_s"] = round(new.ready_at - fault.at, 2)
            log(f"kill: replacement {new.hostname} ready after {new.ready_at - fault.at:.1f} s")

        threading.Thread(target=until_ready, name="replacement", daemon=True).start()

    def fault_redis(self) -> None:
        queued = self.in_state("queued")
        held = self.redis.waiting(self.queue) or {}
        fault = Fault("redis", time.time(), victims=queued,
                      detail={"messages_in_queue": held.get("waiting"),
                              "messages_unacked": held.get("unacked"), "down_s": self.args.redis_down_s})
        self.redis.kill()
        log(f"redis: killed with {held} messages ({len(queued)} submissions queued); "
            f"{self.args.redis_down_s:g} s down")
        time.sleep(self.args.redis_down_s)
        self.redis.start()
        fault.ended_at = time.time()
        self.faults.append(fault)
        log("redis: started again, empty")

    def fault_postgres(self) -> None:
        running = self.in_state("running")
        fault = Fault("postgres", time.time(), victims=running, detail={"down_s": self.args.pg_down_s})
        self.pg.stop("fast")
        log(f"postgres: stopped (-m fast) while {len(running)} were running; {self.args.pg_down_s:g} s down")
        time.sleep(self.args.pg_down_s)
        self.pg.start()
        fault.ended_at = time.time()
        self.faults.append(fault)
        log(f"postgres: started again after {fault.ended_at - fault.at:.1f} s")

    def fault_freeze(self) -> None:
        victim, held = self._busy_worker()
        if victim is None:
            self.not_fired.append("freeze")
            return
        freeze_s = self.args.freeze_s or (self.lease_s + 3 * self.args.sweep_every_s + 5)
        fault = Fault("freeze", time.time(), victims=held,
                      detail={"worker": victim.hostname, "frozen_s": round(freeze_s, 1),
                              "lease_s": self.lease_s})
        pids = victim.tree()
        signal_all(pids, signal.SIGSTOP)
        more = [p for p in victim.tree() if p not in pids]  # forked while we stopped the rest
        signal_all(more, signal.SIGSTOP)
        self.frozen = pids + more
        fault.detail["processes_frozen"] = len(self.frozen)
        log(f"freeze: SIGSTOP {victim.hostname} ({len(self.frozen)} processes) holding {held} "
            f"for {freeze_s:.0f} s (lease {self.lease_s:g} s)")
        self.stop.wait(freeze_s)
        signal_all(list(reversed(self.frozen)), signal.SIGCONT)
        self.frozen = []
        fault.ended_at = time.time()
        self.faults.append(fault)
        log(f"freeze: SIGCONT {victim.hostname}")

    # ---- the run

    def drain(self) -> tuple[bool, float]:
        """Wait until every submission is final (bounded); whether it drained, and when."""
        deadline = time.monotonic() + self.args.drain_timeout_s
        last_report = 0.0
        while time.monotonic() < deadline:
            done = self.final_count()
            if done == len(self.ids) and not self.frozen:
                return True, time.time()
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                log(f"{done if done is not None else '?'}/{len(self.ids)} final, "
                    f"{time.time() - self.t0:.0f} s in, {len(self._alive_workers())} workers alive")
            self.reap()
            time.sleep(0.5)
        return False, time.time()

    def reap(self) -> None:
        with SPAWN_LOCK:
            reap_orphans({w.proc.pid for w in self.workers} | {self.redis.proc.pid if self.redis.proc else 0})

    def run(self) -> dict[str, Any]:
        self.setup()
        self.submit()
        faults = threading.Thread(target=self.run_faults, name="faults", daemon=True)
        faults.start()
        drained, drained_at = self.drain()
        self.stop.set()
        faults.join(timeout=max(60.0, self.args.freeze_s or 0))
        if drained and self.args.settle_s:
            log(f"drained in {drained_at - self.t0:.1f} s; {self.args.settle_s:g} s more for late gradings")
            time.sleep(self.args.settle_s)
        else:
            log("not drained: " + f"{self.final_count()}/{len(self.ids)} final at the deadline")
        return Report(self, drained, drained_at).build()

    def cleanup(self) -> None:
        """Stop every process the drill started, then remove its folder."""
        self.stop.set()
        signal_all(list(reversed(self.frozen)), signal.SIGCONT)
        for w in self.workers:
            if w.alive():
                signal_all(w.tree(), signal.SIGCONT)
                try:
                    os.killpg(w.proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 8
        for w in self.workers:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            w.kill_tree()
        if self.engine is not None:
            self.engine.dispose()
        if self.pg.running():
            try:
                self.pg.stop("immediate")
            except (DrillError, subprocess.TimeoutExpired, OSError) as exc:
                log(f"could not stop postgresql: {exc}")
        self.redis.kill()
        left = descendants(os.getpid(), include_self=False)
        signal_all(left, signal.SIGKILL)  # anything else of ours (a zygote, a postmaster)
        reap_orphans(set())
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- the figures -------


_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,.]+: (?P<level>[A-Z]+)/(?P<proc>[\w-]+)\] (?P<msg>.*)$")
_TASK = re.compile(r"Task workers\.grade\[[0-9a-f-]+\] (?:(received)|succeeded in [\d.]+s: '(\w+)'|(retry):"
                   r"|(raised unexpected))")
_PYWARN = re.compile(r"^\S+:\d+: \w*Warning: ")
_NOISE = [(re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
          (re.compile(r"drill\d+-[0-9a-f]{6}@[\w.-]+"), "<worker>"),
          (re.compile(r"\[[\d, ]+\]"), "[<ids>]"),
          (re.compile(r"\d+(\.\d+)?"), "<n>")]


def normalize(msg: str) -> str:
    """A log message with its ids, numbers and names taken out, so repeats group together."""
    for pattern, repl in _NOISE:
        msg = pattern.sub(repl, msg)
    return msg[:200]


def log_figures(paths: list[Path]) -> dict[str, Any]:
    """Lines by level, tracebacks, the sweeper's resends, and the most repeated lines."""
    levels: Counter = Counter()
    repeated: Counter = Counter()
    resent: Counter = Counter()
    tasks: Counter = Counter()
    tracebacks = lines = 0
    per_worker = {}
    for path in paths:
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        mine: Counter = Counter()
        for line in text:
            lines += 1
            if line.startswith("Traceback (most recent call last)"):
                tracebacks += 1
            m = _LINE.match(line)
            level = m.group("level") if m else "PYWARNING" if _PYWARN.match(line) else "CONTINUED"
            if level == "PYWARNING":
                repeated[f"{level}: {normalize(line.split(': ', 1)[-1])}"] += 1
            mine[level] += 1
            if m and level in ("WARNING", "ERROR", "CRITICAL"):
                repeated[f"{level}: {normalize(m.group('msg'))}"] += 1
            task = _TASK.search(line) if m else None
            if task:
                tasks[next(g for g in task.groups() if g)] += 1
            if m and "sweeper: requeued" in line:
                got = re.search(r"resent \[([\d, ]*)\]", line)
                for sid in (got.group(1).split(",") if got else []):
                    if sid.strip():
                        resent[int(sid)] += 1
        levels.update(mine)
        per_worker[path.stem] = dict(mine)
    return {"lines": lines, "by_level": dict(levels), "tracebacks": tracebacks,
            "warnings_and_errors": sum(levels[k] for k in ("WARNING", "ERROR", "CRITICAL")),
            "top_repeated": [{"count": c, "line": line} for line, c in repeated.most_common(12)],
            # Task messages: received, and how each ended (the task's return value, retry, raised).
            "task_messages": dict(tasks.most_common()),
            "per_worker": per_worker, "_resent": resent}


class Report:
    """Everything the drill measured, from the database and the workers' logs."""

    def __init__(self, drill: Drill, drained: bool, drained_at: float) -> None:
        self.d, self.drained, self.drained_at = drill, drained, drained_at

    def _load(self):
        from sqlalchemy import func, select

        from workers.models import Submission, SubmissionEvent

        engine = self.d.engine
        with engine.connect() as conn:
            subs = conn.execute(select(Submission.id, Submission.state, Submission.score, Submission.reason,
                                       Submission.attempts, Submission.deliveries, Submission.created_at,
                                       Submission.finished_at, Submission.lease_owner)
                                .where(Submission.id.in_(self.d.ids))).all()
            events = conn.execute(select(SubmissionEvent.submission_id, SubmissionEvent.event, func.count())
                                  .where(SubmissionEvent.submission_id.in_(self.d.ids))
                                  .group_by(SubmissionEvent.submission_id, SubmissionEvent.event)).all()
            graded_at = conn.execute(select(SubmissionEvent.submission_id, SubmissionEvent.at)
                                     .where(SubmissionEvent.submission_id.in_(self.d.ids),
                                            SubmissionEvent.event == "graded")).all()
        return subs, events, graded_at

    def build(self) -> dict[str, Any]:
        d = self.d
        subs, events, graded_at = self._load()
        by_id = {r.id: r for r in subs}
        per_sub: dict[int, Counter] = {}
        totals: Counter = Counter()
        for sid, event, count in events:
            per_sub.setdefault(sid, Counter())[event] += count
            totals[event] += count
        graded = [r for r in subs if r.state == "graded"]
        failed = [r for r in subs if r.state == "failed"]
        lost = [r for r in subs if r.state not in ("graded", "failed")]
        twice = {sid: c["graded"] for sid, c in per_sub.items() if c["graded"] > 1}
        wrong = self._wrong(subs)
        finished = [r.finished_at.timestamp() for r in subs if r.finished_at is not None]
        last = max(finished) if finished and not lost else self.drained_at
        drain_s = last - d.t0
        latencies = sorted(r.finished_at.timestamp() - r.created_at.timestamp()
                           for r in subs if r.finished_at is not None)
        grades = sorted(at.timestamp() for _, at in graded_at)
        logs = log_figures(sorted((d.tmp / "logs").glob("*.log")))
        resent = logs.pop("_resent")
        deliveries = [r.deliveries for r in subs]
        report = {
            "ok": not lost and not twice and not wrong and d.fault_error is None,
            "config": self._config(),
            "submissions": len(subs),
            "graded": len(graded),
            "failed": len(failed),
            "failed_reasons": dict(Counter(normalize(r.reason or "") for r in failed).most_common()),
            "lost": len(lost),
            "lost_detail": [{"id": r.id, "state": r.state, "attempts": r.attempts, "owner": r.lease_owner,
                             "kind": d.kind_of.get(r.id)} for r in lost][:100],
            "graded_twice": len(twice),
            "graded_twice_detail": {str(k): v for k, v in sorted(twice.items())},
            "wrong_score": len(wrong),
            "wrong_score_detail": wrong[:50],
            "by_kind": self._by_kind(subs),
            "drained": self.drained,
            "drain_s": round(drain_s, 1),
            "rate_per_min": round((len(graded) + len(failed)) / drain_s * 60, 1) if drain_s > 0 else None,
            "latency_s": {"p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95),
                          "max": round(latencies[-1], 1) if latencies else None},
            "faults": [self._fault(f, grades, by_id) for f in d.faults],
            "faults_not_fired": d.not_fired,
            "deliveries": {"total": sum(deliveries),
                           "per_submission": round(sum(deliveries) / max(1, len(deliveries)), 2),
                           "max": max(deliveries, default=0),
                           "histogram": {str(k): v for k, v in sorted(Counter(deliveries).items())}},
            "sent": {"by_drill": d.sent_by_drill, "broker_pushes": d.redis.pushes_before + d.redis.pushes(),
                     "sweeper_resent_logged": sum(resent.values()),
                     "sweeper_resent_logged_max_per_submission": max(resent.values(), default=0)},
            "attempts_histogram": {str(k): v for k, v in sorted(Counter(r.attempts for r in subs).items())},
            "events": dict(sorted(totals.items())),
            "logs": logs,
            "workers_started": len(d.workers),
        }
        if d.fault_error is not None:
            report["fault_thread_error"] = f"{type(d.fault_error).__name__}: {d.fault_error}"
        return report

    def _config(self) -> dict[str, Any]:
        a, d = self.d.args, self.d
        return {"n": a.n, "workers": a.workers, "concurrency": a.concurrency, "assignment": a.assignment,
                "assignments_root": str(a.assignments_root), "seed": a.seed, "faults": a.faults,
                "at": a.at, "wrong_frac": a.wrong_frac, "dup_frac": a.dup_frac, "lease_s": d.lease_s,
                "settings": {k: v for k, v in d.env().items() if k.startswith("TORCHGRADE_")
                             and k not in ("TORCHGRADE_DATABASE", "TORCHGRADE_BROKER",
                                           "TORCHGRADE_INSTANCE", "TORCHGRADE_ASSIGNMENTS")},
                "code": str(a.code), "code_version": d.code_version, "folder": str(d.tmp),
                "ports": {"postgres": d.pg.port, "redis": d.redis.port},
                "hostnames": [w.hostname for w in d.workers],
                "started": datetime.fromtimestamp(d.t0, UTC).isoformat(timespec="seconds"),
                "cpus": os.cpu_count()}

    def _wrong(self, subs) -> list[dict[str, Any]]:
        out = []
        for r in subs:
            kind = self.d.kinds[self.d.kind_of[r.id]]
            if r.state == "graded" and (kind.state != "graded" or r.score is None
                                        or abs(r.score - kind.score) > 1e-9):
                out.append({"id": r.id, "kind": kind.name, "expected": kind.score, "got": r.score})
        return out

    def _by_kind(self, subs) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in subs:
            name = self.d.kind_of[r.id]
            k = out.setdefault(name, {"n": 0, "expected_score": self.d.kinds[name].score, "graded": 0,
                                      "right": 0})
            k["n"] += 1
            if r.state == "graded":
                k["graded"] += 1
                k["right"] += r.score is not None and abs(r.score - self.d.kinds[name].score) <= 1e-9
        return out

    def _fault(self, f: Fault, grades: list[float], by_id: dict) -> dict[str, Any]:
        out = f.as_dict(self.d.t0)
        after = [g for g in grades if g > f.at]
        out["next_graded_s"] = round(after[0] - f.at, 2) if after else None
        if f.ended_at:
            back = [g for g in grades if g > f.ended_at]
            out["next_graded_after_end_s"] = round(back[0] - f.ended_at, 2) if back else None
        ends = [by_id[v].finished_at for v in f.victims if v in by_id]
        if f.victims:
            out["victims_final_s"] = (round(max(e.timestamp() for e in ends) - f.at, 2)
                                      if ends and all(e is not None for e in ends) else None)
        if len(out["victims"]) > 20:
            out["victims"] = out["victims"][:20] + [f"... {len(f.victims)} in all"]
        return out


def code_version(code: Path) -> dict[str, Any]:
    """Which code the workers ran: the commit, and a hash of workers/ and grader/ as they were."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([*code.glob("workers/**/*.py"), *code.glob("grader/**/*.py")]):
        digest.update(str(path.relative_to(code)).encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        head = ""
    return {"commit": head, "sources_sha256": digest.hexdigest()[:16]}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[max(0, int(round(q * len(values))) - 1)], 2)


def summary(r: dict[str, Any]) -> str:
    """The figures as lines a person reads."""
    c = r["config"]
    lines = [f"fault drill: {r['submissions']} submissions of {c['assignment']}, {c['workers']} workers "
             f"x {c['concurrency']}, faults {','.join(c['faults']) or 'none'}, seed {c['seed']}",
             f"  graded {r['graded']}, failed {r['failed']}, lost {r['lost']}, graded twice "
             f"{r['graded_twice']}, wrong score {r['wrong_score']}",
             f"  drained {'yes' if r['drained'] else 'NO'} in {r['drain_s']} s: "
             f"{r['rate_per_min']} final/min; "
             f"submit->final p50 {r['latency_s']['p50']} s, p95 {r['latency_s']['p95']} s",
             f"  deliveries {r['deliveries']['total']} ({r['deliveries']['per_submission']} a submission, "
             f"max {r['deliveries']['max']}); messages: {r['sent']['by_drill']} sent by the drill, "
             f"{r['sent']['broker_pushes']} pushed into Redis in all, sweepers logged "
             f"{r['sent']['sweeper_resent_logged']} resends",
             f"  events {r['events']}"]
    for f in r["faults"]:
        extra = {k: f[k] for k in ("worker", "down_s", "frozen_s", "messages_in_queue", "messages_unacked",
                                   "sent_again",
                                   "replacement_ready_s") if k in f}
        lines.append(f"  fault {f['kind']:8} at {f['at_s']:7.1f} s, active {f['active_s']:5.1f} s, "
                     f"next graded +{f['next_graded_s']} s, {len(f['victims'])} victims final "
                     f"+{f.get('victims_final_s', '-')} s {extra}")
    if r["faults_not_fired"]:
        lines.append(f"  faults not fired: {r['faults_not_fired']}")
    lines.append(f"  worker logs: {r['logs']['lines']} lines {r['logs']['by_level']}, "
                 f"{r['logs']['tracebacks']} tracebacks; task messages {r['logs']['task_messages']}")
    for t in r["logs"]["top_repeated"][:6]:
        lines.append(f"    {t['count']:5} x {t['line'][:150]}")
    for key in ("failed_reasons", "lost_detail", "graded_twice_detail", "wrong_score_detail"):
        if r[key]:
            lines.append(f"  {key}: {json.dumps(r[key])[:1500]}")
    lines.append("  RESULT: " + ("ok (nothing lost, nothing graded twice, every score right)" if r["ok"]
                                 else "FAILED"))
    return "\n".join(lines)


# ---------------------------------------------------------------- entry --------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--n", type=int, default=300, help="submissions in the burst (default 300)")
    p.add_argument("--workers", type=int, default=2, help="worker nodes (default 2)")
    p.add_argument("--concurrency", type=int, default=1, help="pool processes per node (default 1)")
    p.add_argument("--assignment", default="tiny",
                   help="slug: 'tiny' (the workers' tests' fixture, default) or a course one (01_tensors)")
    p.add_argument("--assignments-root", type=Path,
                   help="where assignments live (default: the fixtures for 'tiny', else the course's)")
    p.add_argument("--faults", default=",".join(ALL_FAULTS),
                   help=f"comma-separated, in order (default {','.join(ALL_FAULTS)}; 'none' for none)")
    p.add_argument("--at", help="comma-separated shares of the burst final at which each fault fires, "
                   "one per fault (default: spread from 0.08 to 0.68)")
    p.add_argument("--seed", type=int, default=0, help="which submissions are wrong, which workers fail")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--wrong-frac", type=float, default=0.1, help="share of known-wrong submissions")
    p.add_argument("--dup-frac", type=float, default=0.05, help="share sent twice at submit time (dup)")
    p.add_argument("--pg-down-s", type=float, default=8.0, help="PostgreSQL down this long")
    p.add_argument("--redis-down-s", type=float, default=2.0, help="Redis down this long")
    p.add_argument("--freeze-s", type=float, default=0.0,
                   help="freeze length (default: the lease + 3 sweeps + 5 s)")
    p.add_argument("--fault-gap-s", type=float, default=2.0, help="pause after each fault")
    p.add_argument("--lease-grace-s", type=float, default=4.0)
    p.add_argument("--queued-grace-s", type=float, default=4.0)
    p.add_argument("--sweep-every-s", type=float, default=1.0)
    p.add_argument("--drain-timeout-s", type=float, default=600.0, help="give up waiting after this")
    p.add_argument("--settle-s", type=float, default=5.0, help="wait after draining for late gradings")
    p.add_argument("--loglevel", default="INFO", help="the workers' log level (default INFO)")
    p.add_argument("--code", type=Path, default=ROOT, help="the checkout the workers run (default this one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    a = p.parse_args(argv)
    a.faults = [f.strip() for f in a.faults.split(",") if f.strip() and f.strip() != "none"]
    unknown = [f for f in a.faults if f not in ALL_FAULTS]
    if unknown:
        p.error(f"unknown faults {unknown}; known: {', '.join(ALL_FAULTS)}")
    a.at = [float(x) for x in a.at.split(",")] if a.at else []
    if a.at and len(a.at) != len(a.faults):
        p.error(f"--at gives {len(a.at)} shares for {len(a.faults)} faults")
    if a.n < 1 or a.workers < 1:
        p.error("--n and --workers must be at least 1")
    a.code = a.code.resolve()
    if a.assignments_root is None:
        fixtures = a.code / FIXTURES
        a.assignments_root = fixtures if (fixtures / a.assignment).is_dir() else a.code / "assignments"
    a.assignments_root = a.assignments_root.resolve()
    return a


def _on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(args.code))
    _become_subreaper()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a `&` job ignores it
        signal.signal(sig, _on_signal)
    drill = Drill(args)
    status = 2
    try:
        report = drill.run()
        text = summary(report)
        print(text, flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
            log(f"wrote {args.json}")
        status = 0 if report["ok"] else 1
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except DrillError as exc:
        log(f"the drill could not run: {exc}")
    except Exception as exc:  # a bug of the drill's, or a server that never came back
        import traceback

        traceback.print_exc()
        log(f"the drill failed: {type(exc).__name__}: {exc}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        drill.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
