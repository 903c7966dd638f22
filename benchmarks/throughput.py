"""Throughput: N submissions of a real assignment through the broker to K workers on this machine.

    python benchmarks/throughput.py --n 60 --workers 2 [--assignment 03_numpy_backprop]
        [--broker redis://...] [--database postgresql://...]

Without --broker it starts its own redis-server on a free port; without --database it uses a
fresh SQLite file. Before the burst, --warm submissions per worker (default 2) are graded and
not counted: a deadline burst reaches workers that have been running (their imports done,
their zygotes ready), and the figure is the rate at which they drain it. --warm 0 counts the
workers' start as well. Prints submissions per minute and p50/p95 from submit to graded.
To measure another checkout (a baseline), run its code with this script:
`python benchmarks/throughput.py --code /path/to/checkout`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def _submit_and_wait(engine, assignment: str, content: bytes, n: int) -> list:
    """Submit n copies at once and wait until every one is graded or failed; their rows."""
    from sqlalchemy import func, select

    from workers.db import session_for
    from workers.models import Submission
    from workers.service import create_submission, enqueue_submission

    ids = []
    with session_for(engine) as session:
        for _ in range(n):
            sub = create_submission(session, assignment=assignment, filename="solution.py",
                                    content=content)
            session.commit()
            enqueue_submission(engine, sub.id)
            ids.append(sub.id)
    done = Submission.state.in_(("graded", "failed"))
    while True:  # polled on the states alone: results are read once, at the end
        with session_for(engine) as session:
            left = session.scalar(select(func.count()).where(Submission.id.in_(ids), ~done))
        if not left:
            break
        time.sleep(0.2)
    with session_for(engine) as session:
        return session.scalars(select(Submission).where(Submission.id.in_(ids))).all()


def main(*, n: int, workers: int, assignment: str, broker: str | None, database: str | None,
         warm: int = 2, code: Path = ROOT) -> int:
    """Run the benchmark and print its figures."""
    tmp = Path(tempfile.mkdtemp(prefix="torchgrade-bench-"))
    procs: list[subprocess.Popen] = []
    if broker is None:
        port = _free_port()
        procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly",
                                       "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL))
        broker = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    database = database or f"sqlite:///{tmp / 'bench.sqlite'}"
    os.environ.update(TORCHGRADE_BROKER=broker, TORCHGRADE_DATABASE=database)
    from grader.assignment import find
    from workers.db import get_engine
    from workers.models import create_schema

    engine = get_engine(database)
    create_schema(engine)
    for i in range(workers):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "workers", "worker", "--queue", "cpu", "--concurrency", "1",
             "--hostname", f"bench{i}@{socket.gethostname()}", "--loglevel", "WARNING"],
            # Not run from the checkout: the grader never imports from its working
            # directory (grader/safe_path.py), so there --code would be skipped for the
            # installed package.
            cwd=tmp, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(code), *filter(None, [os.environ.get("PYTHONPATH")])])},
            stdout=(tmp / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True))
    time.sleep(6)  # workers import the engine and connect
    content = find(assignment).solution.read_bytes()
    try:
        if warm:
            _submit_and_wait(engine, assignment, content, warm * workers)
        start, cpu0 = time.time(), _busy_cpu_s()
        rows = _submit_and_wait(engine, assignment, content, n)
        wall, cpu = time.time() - start, _busy_cpu_s() - cpu0
    finally:
        # Workers first (each leads its own process group), then the broker they talk to.
        for p in reversed(procs):
            try:
                os.killpg(p.pid, 15)
            except (ProcessLookupError, PermissionError):
                p.terminate()
            p.wait(30)
        for log in sorted(tmp.glob("worker*.log")):  # what went wrong, if anything did
            said = [line for line in log.read_text().splitlines() if "ERROR" in line]
            if said:
                print(f"--- {log.name}:", *said[-20:], sep="\n")
        shutil.rmtree(tmp, ignore_errors=True)
    latencies = sorted((r.finished_at - r.created_at).total_seconds() for r in rows)
    scores = {r.score for r in rows}
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(f"{n} submissions of {assignment}, {workers} worker process(es), broker {broker.split(':')[0]}, "
          f"database {database.split(':')[0]}, code {code}, {warm * workers} warm-up submissions first")
    print(f"throughput: {n / wall * 60:.1f} submissions/min ({wall:.1f} s wall; the machine's "
          f"CPU {cpu / n * 1000:.0f} ms a submission, {cpu / wall:.2f} of {os.cpu_count()} CPUs busy)")
    job_cpu = [(r.result or {}).get("usage", {}).get("cpu_s") for r in rows]
    if all(isinstance(c, (int, float)) for c in job_cpu):  # code before issue 10 records none
        print(f"a job's own CPU (its cgroup's accounting): median "
              f"{statistics.median(job_cpu) * 1000:.0f} ms")
    print(f"submit -> graded: p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s; "
          f"states {sorted({r.state for r in rows})}, scores {sorted(scores)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--assignment", default="03_numpy_backprop")
    parser.add_argument("--broker")
    parser.add_argument("--database")
    parser.add_argument("--warm", type=int, default=2,
                        help="submissions per worker graded, uncounted, before the burst")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose code the workers (and this script) run")
    a = parser.parse_args()
    if a.code.resolve() != ROOT:
        sys.path.insert(0, str(a.code.resolve()))
    sys.exit(main(n=a.n, workers=a.workers, assignment=a.assignment, broker=a.broker,
                  database=a.database, warm=a.warm, code=a.code.resolve()))
