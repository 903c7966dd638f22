"""Throughput: N submissions of a real assignment through the broker to K workers on this machine.

    python benchmarks/throughput.py --n 60 --workers 2 [--assignment 03_numpy_backprop]
        [--broker redis://...] [--database postgresql://...]

Without --broker it starts its own redis-server on a free port; without --database it uses a
fresh SQLite file. Prints submissions per minute and p50/p95 from submit to graded.
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


def main(*, n: int, workers: int, assignment: str, broker: str | None, database: str | None) -> int:
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
    from sqlalchemy import select

    from grader.assignment import find
    from workers.db import get_engine, session_for
    from workers.models import Submission, create_schema
    from workers.service import create_submission, enqueue_submission

    engine = get_engine(database)
    create_schema(engine)
    for i in range(workers):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "workers", "worker", "--queue", "cpu", "--concurrency", "1",
             "--hostname", f"bench{i}@{socket.gethostname()}", "--loglevel", "WARNING"],
            cwd=ROOT, stdout=(tmp / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True))
    time.sleep(6)  # workers import the engine and connect
    content = find(assignment).solution.read_bytes()
    try:
        start = time.time()
        ids = []
        with session_for(engine) as session:
            for _ in range(n):
                sub = create_submission(session, assignment=assignment, filename="solution.py",
                                        content=content)
                session.commit()
                enqueue_submission(engine, sub.id)
                ids.append(sub.id)
        while True:
            with session_for(engine) as session:
                rows = session.scalars(select(Submission).where(Submission.id.in_(ids))).all()
            if all(r.state in ("graded", "failed") for r in rows):
                break
            time.sleep(0.2)
        wall = time.time() - start
    finally:
        for p in procs:  # workers lead their own process groups; redis-server is a plain child
            try:
                os.killpg(p.pid, 15)
            except (ProcessLookupError, PermissionError):
                p.terminate()
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    latencies = sorted((r.finished_at - r.created_at).total_seconds() for r in rows)
    scores = {r.score for r in rows}
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(f"{n} submissions of {assignment}, {workers} worker process(es), broker {broker.split(':')[0]}, "
          f"database {database.split(':')[0]}")
    print(f"throughput: {n / wall * 60:.1f} submissions/min ({wall:.1f} s wall)")
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
    a = parser.parse_args()
    sys.exit(main(n=a.n, workers=a.workers, assignment=a.assignment, broker=a.broker, database=a.database))
