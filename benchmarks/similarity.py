"""Code similarity for a class: how long the ranking of every pair of N students takes.

    python benchmarks/similarity.py [--students 150] [--runs 5] [--seed 1]

Synthetic submissions to 03_numpy_backprop: two thirds are the reference solution with its
variables renamed at random and its functions shuffled (a fifth of those as notebooks with a
magic and a shell line), the rest unrelated code (the other assignments' solutions, renamed).
Prints the median time of the pure comparison (fingerprinting every file, then every pair)
with the per-process fingerprint cache empty and full, then the instructor's page end to end
through the app on a fresh SQLite database: the first request (every file fingerprinted) and
the next one (fingerprints from the cache; the pairs are ranked again each time).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import keyword
import random
import re
import statistics
import sys
import tempfile
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.assignment import load_assignment  # noqa: E402
from grader.notebooks import module_to_notebook  # noqa: E402
from web.services import similarity  # noqa: E402

SLUG = "03_numpy_backprop"
KEEP = {"np", "numpy", "torch", "nn", "F", "self", "super"}
PASSWORD = "Plum-Harbor-4271-kite"


def renamed(source: str, rng: random.Random, keep: set[str]) -> str:
    """The source with every local name (not a keyword, builtin, attribute or a graded function) renamed."""
    names, after_dot = set(), False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and not after_dot and not keyword.iskeyword(tok.string):
            names.add(tok.string)
        after_dot = tok.string == "."
    names -= set(dir(__builtins__)) | KEEP | keep
    new = {n: f"{rng.choice(['v', 'tmp', 'my', 'val', 'x'])}_{rng.randrange(10**6)}" for n in names}
    return re.sub(r"\b\w+\b", lambda m: new.get(m.group(), m.group()), source)


def shuffled(source: str, rng: random.Random) -> str:
    """The module's top-level statements in a random order after its imports."""
    tree = ast.parse(source)
    lines = source.splitlines()
    blocks = ["\n".join(lines[n.lineno - 1:n.end_lineno]) for n in tree.body]
    imports = [isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body]
    head = [b for b, imp in zip(blocks, imports, strict=True) if imp]
    rest = [b for b, imp in zip(blocks, imports, strict=True) if not imp]
    rng.shuffle(rest)
    return "\n\n\n".join(head + rest) + "\n"


def as_notebook(source: str) -> bytes:
    """The module as a notebook, with a line magic and a shell line in its first cell."""
    nb = module_to_notebook("# %%\n%matplotlib inline\n!pip list\n\n" + source)
    return json.dumps(nb).encode()


def submissions(n: int, seed: int) -> list[tuple[str, bytes]]:
    """N synthetic submissions: renamed, shuffled copies of the solution, and unrelated code."""
    rng = random.Random(seed)
    a = load_assignment(ROOT / "assignments" / SLUG)
    solution = a.solution.read_text()
    others = [p.read_text() for p in sorted((ROOT / "assignments").glob("*/solution.py"))
              if p.parent.name != SLUG]
    out = []
    for i in range(n):
        if i % 3 == 2:
            src = renamed(rng.choice(others), rng, set())
        else:
            src = shuffled(renamed(solution, rng, set(a.functions)), rng)
        out.append(("hw.ipynb", as_notebook(src)) if i % 5 == 0 else ("hw.py", src.encode()))
    return out


def pure(files: list[tuple[str, bytes]], runs: int) -> tuple[float, float, int]:
    """Median seconds to fingerprint every file and rank every pair, with the fingerprint cache empty
    and then full (every file seen before); the number of pairs above the floor."""
    a = load_assignment(ROOT / "assignments" / SLUG)
    cold, warm, found = [], [], 0
    for _ in range(runs):
        for times, clear in ((cold, True), (warm, False)):
            if clear:
                similarity.CACHE.items.clear()
            start = time.perf_counter()
            starter = similarity.starter_kgrams(a)
            docs = [similarity.document(i, str(i), nm, data, starter) for i, (nm, data) in enumerate(files)]
            found = len(similarity.rank(docs))
            times.append(time.perf_counter() - start)
    return statistics.median(cold), statistics.median(warm), found


def page(files: list[tuple[str, bytes]]) -> tuple[float, float, int]:
    """Seconds of the instructor's page: the first request, the second; its status."""
    from web import create_app, db
    from web.db import upgrade
    from web.services.users import create_user
    from workers.models import GRADED, Submission

    tmp = Path(tempfile.mkdtemp(prefix="tg-sim-bench-"))
    url = f"sqlite:///{tmp / 'web.sqlite'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "BROKER_URL": f"sqla+sqlite:///{tmp / 'broker.sqlite'}"})
    with app.app_context():
        s = db.session()
        create_user(s, username="prof", password=PASSWORD, role="instructor")
        for i, (name, data) in enumerate(files):
            u = create_user(s, username=f"student{i:03d}", password=PASSWORD, role="student")
            s.add(Submission(assignment=SLUG, owner=str(u.id), filename=name, content=data, state=GRADED,
                             queue="cpu", score=10.0, max_score=10.0))
        s.commit()
    client = app.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "prof", "password": PASSWORD, "csrf_token": token})
    similarity.CACHE.items.clear()  # the first request fingerprints every file
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        resp = client.get(f"/instructor/assignments/{SLUG}/similarity")
        timings.append(time.perf_counter() - start)
    return timings[0], timings[1], resp.status_code


def main() -> None:
    """Print the timings."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=150)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    files = submissions(args.students, args.seed)
    n = args.students
    cold, warm, found = pure(files, args.runs)
    print(f"{n} students, {n * (n - 1) // 2} pairs, {found} at or above the floor of {similarity.FLOOR:.0%}")
    print(f"comparison (fingerprint every file, rank every pair), median of {args.runs}: {cold:.3f} s; "
          f"with every file's fingerprints cached: {warm:.3f} s")
    first, second, status = page(files)
    print(f"instructor's page (HTTP {status}): first request {first:.3f} s, "
          f"the next (fingerprints cached) {second:.3f} s")


if __name__ == "__main__":
    main()
