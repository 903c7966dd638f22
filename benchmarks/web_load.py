"""Web load: concurrent uploads and gradebook views against `python -m web serve` on loopback.

    python benchmarks/web_load.py [--students 500] [--assignments 9] [--uploads 400]
        [--concurrency 16] [--gradebook-requests 60] [--database postgresql://...]

Builds a course of N copies of the NumPy assignment, seeds the database with the students,
three graded submissions each per assignment and an API token each, starts the service
(gunicorn, no embedded worker so grading does not compete for the CPU being measured), then
prints p50/p99 latency of the upload endpoint (POST /api/v1/submissions) and of the
instructor's gradebook page. SQLite under a temporary folder unless --database is given.
"""

from __future__ import annotations

import argparse
import hashlib
import http.cookiejar
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCE = "03_numpy_backprop"
ADMIN_PASSWORD = "bench-admin-password"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_course(root: Path, n: int) -> None:
    """n assignments, each a copy of the NumPy one (cheap, and the gradebook only needs slugs)."""
    for i in range(1, n + 1):
        shutil.copytree(ROOT / "assignments" / SOURCE, root / f"hw{i:02d}_{SOURCE}")


def seed(url: str, students: int, slugs: list[str], per_cell: int) -> list[str]:
    """Students, graded submissions and API tokens straight into the database; the tokens."""
    from sqlalchemy import insert

    from web.db import upgrade
    from web.models import ApiToken, User
    from web.services.users import hash_password
    from workers.db import make_engine
    from workers.models import Submission

    upgrade(url)
    engine = make_engine(url)
    pw = hash_password("student-password")  # one hash for all: argon2 is slow on purpose
    now = datetime.now(UTC)
    tokens = [f"tg_bench_{i}_{uuid.uuid4().hex}" for i in range(students)]
    content = (ROOT / "assignments" / SOURCE / "solution.py").read_bytes()
    with engine.begin() as conn:
        conn.execute(insert(User), [dict(username=f"student{i:04d}", name=f"Student {i}", email="",
                                         role="student", password_hash=pw, active=True, created_at=now)
                                    for i in range(students)])
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM users ORDER BY id")]
        conn.execute(insert(ApiToken), [dict(user_id=uid, name="bench", prefix=t[:10], created_at=now,
                                             token_hash=hashlib.sha256(t.encode()).hexdigest())
                                        for uid, t in zip(ids, tokens, strict=True)])
        rng = random.Random(0)
        rows = []
        for uid in ids:
            for slug in slugs:
                for k in range(per_cell):
                    score = float(rng.randint(0, 10))
                    at = now - timedelta(hours=rng.randint(1, 500))
                    result = dict(assignment=slug, status="graded", score=score, max_score=10.0, seed=k,
                                  tests=[dict(name="forward", points=min(score, 1.0), max_points=1.0,
                                              passed=score > 0, visibility="visible", message="",
                                              suite="public")],
                                  messages=[], sandbox={}, log="", executed_notebook=None,
                                  suite_version="bench", duration_s=1.0)
                    rows.append(dict(assignment=slug, owner=str(uid), filename="solution.py", content=content,
                                     state="graded", queue="cpu", attempts=1, deliveries=1, score=score,
                                     max_score=10.0, result=result, suite_version="bench", seed=k,
                                     created_at=at, finished_at=at))
            if len(rows) > 5000:
                conn.execute(insert(Submission), rows)
                rows = []
        if rows:
            conn.execute(insert(Submission), rows)
    engine.dispose()
    return tokens


def multipart(slug: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body with the assignment field and the file."""
    b = uuid.uuid4().hex
    body = (f'--{b}\r\nContent-Disposition: form-data; name="assignment"\r\n\r\n{slug}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="solution.py"\r\n'
            "Content-Type: text/x-python\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def timed(fn) -> float:  # noqa: ANN001
    """Seconds fn() took."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def upload_once(base: str, token: str, slug: str, data: bytes) -> None:
    """One upload through the API; raises on anything but 201."""
    body, ctype = multipart(slug, data)
    req = urllib.request.Request(base + "/api/v1/submissions", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 201, resp.status
        json.loads(resp.read())


def instructor_opener(base: str) -> urllib.request.OpenerDirector:
    """A logged-in instructor session."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    opener.open(base + "/login", data=urllib.parse.urlencode(
        {"csrf_token": token, "username": "admin", "password": ADMIN_PASSWORD}).encode()).read()
    return opener


def percentiles(xs: list[float]) -> str:
    """p50 and p99 in milliseconds."""
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]
    return f"p50 {1000 * statistics.median(xs):7.1f} ms   p99 {1000 * p99:7.1f} ms   (n={len(xs)})"


def main() -> int:
    """Seed, serve, load, report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=500)
    ap.add_argument("--assignments", type=int, default=9)
    ap.add_argument("--per-cell", type=int, default=3, help="graded submissions per student and assignment")
    ap.add_argument("--uploads", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--gradebook-requests", type=int, default=60)
    ap.add_argument("--gradebook-concurrency", type=int, default=4)
    ap.add_argument("--gunicorn-workers", type=int, default=2)
    ap.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temporary folder); on "
                    "PostgreSQL a fresh schema is made and dropped")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="torchgrade-web-load-"))
    course = tmp / "assignments"
    make_course(course, args.assignments)
    url = args.database or f"sqlite:///{tmp / 'instance' / 'torchgrade.sqlite'}"
    schema = None
    if url.startswith("postgresql"):  # a schema of its own, dropped afterwards
        from sqlalchemy import create_engine, text

        schema = f"tgbench_{uuid.uuid4().hex[:8]}"
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin_url, url = url, f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    env = dict(os.environ, TORCHGRADE_ASSIGNMENTS=str(course), TORCHGRADE_INSTANCE=str(tmp / "instance"),
               DATABASE_URL=url, BROKER_URL=f"sqla+sqlite:///{tmp / 'instance' / 'broker.sqlite'}",
               TORCHGRADE_ADMIN_PASSWORD=ADMIN_PASSWORD, TORCHGRADE_SUBMISSIONS_PER_HOUR="0",
               PYTHONPATH=str(ROOT))
    os.environ.update(TORCHGRADE_ASSIGNMENTS=str(course))
    t0 = time.perf_counter()
    (tmp / "instance").mkdir(exist_ok=True)
    tokens = seed(url, args.students, sorted(p.name for p in course.iterdir()), args.per_cell)
    n_subs = args.students * args.assignments * args.per_cell
    print(f"seeded {args.students} students x {args.assignments} assignments, {n_subs} graded submissions "
          f"in {time.perf_counter() - t0:.1f} s ({url.split('://')[0]})")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp / "service.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "web", "serve", "--port", str(port), "--no-worker",
                             "--workers", str(args.gunicorn_workers), "--threads", "4"],
                            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/login", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log_text = (tmp / "service.log").read_text()
                    raise SystemExit("the service did not start:\n" + log_text) from None
                time.sleep(0.2)
        slugs = sorted(p.name for p in course.iterdir())
        data = (ROOT / "assignments" / SOURCE / "solution.py").read_bytes()
        lock = threading.Lock()
        counter = iter(range(args.uploads))

        def one_upload(_: int) -> float:
            with lock:
                i = next(counter)
            return timed(lambda: upload_once(base, tokens[i % len(tokens)], slugs[i % len(slugs)], data))

        upload_once(base, tokens[0], slugs[0], data)  # warm-up
        t = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            up = list(pool.map(one_upload, range(args.uploads)))
        up_wall = time.perf_counter() - t
        openers = [instructor_opener(base) for _ in range(args.gradebook_concurrency)]
        page = openers[0].open(base + "/instructor/").read().decode()
        assert page.count('<a class="student"') == args.students, "the gradebook does not list every student"

        def one_gradebook(i: int) -> float:
            return timed(lambda: openers[i % len(openers)].open(base + "/instructor/").read())

        t = time.perf_counter()
        with ThreadPoolExecutor(args.gradebook_concurrency) as pool:
            gb = list(pool.map(one_gradebook, range(args.gradebook_requests)))
        gb_wall = time.perf_counter() - t
        print(f"upload   POST /api/v1/submissions  concurrency {args.concurrency:2d}: {percentiles(up)}  "
              f"{args.uploads / up_wall:6.1f} uploads/s")
        print(f"gradebook GET /instructor/ ({args.students}x{args.assignments}) concurrency "
              f"{args.gradebook_concurrency:2d}: {percentiles(gb)}  "
              f"{args.gradebook_requests / gb_wall:6.1f} pages/s")
    except Exception:
        print((tmp / "service.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if schema:
            with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
