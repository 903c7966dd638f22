"""Grading cost against a bare `python` run of the same student code, in one session.

For each assignment: the reference solution as a module and as a notebook is graded
through the engine in this (already running) process, sandbox start included, and
the same code is run bare: a fresh `python` that imports the module and makes the
very calls the tests made (recorded once, replayed by benchmarks/replay.py), and
for the notebook a plain nbclient execution with no sandbox, no calls and no tests. Medians of
--runs runs, interleaved so that machine noise falls on both sides; the ratio is
what to read, not the absolute times.

    python benchmarks/engine_overhead.py [--runs 7] [SLUG ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.assignment import find
from grader.engine import grade
from grader.guest.wire import encode_frame
from grader.notebooks import module_to_notebook

REPLAY = Path(__file__).with_name("replay.py")


def record_calls(path: Path, assignment) -> Path:
    """Grade once, recording every call the tests make into the student's code."""
    recorded: list = []
    grade(path, assignment, mode="service", seed=1, recorder=recorded)
    frames = path.with_suffix(".frames")
    frames.write_bytes(b"".join(encode_frame(message) for message in recorded))
    return frames


def bare_module(path: Path, frames: Path) -> float:
    """Wall time of a fresh `python` that imports the module and makes the same calls."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPLAY), str(path), str(frames)], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def bare_notebook(path: Path, frames: Path | None = None) -> float:
    """Wall time of executing the notebook with nbclient, no sandbox, no tests."""
    code = ("import nbformat, sys; from nbclient import NotebookClient; "
            "nb = nbformat.read(sys.argv[1], as_version=4); NotebookClient(nb).execute()")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)
    return time.perf_counter() - start


def engine(path: Path, assignment) -> float:
    """Wall time of grading path with every test, in this process."""
    start = time.perf_counter()
    result = grade(path, assignment, mode="service", seed=1)
    elapsed = time.perf_counter() - start
    assert result.score == result.max_score, result.messages
    return elapsed


def measure(slug: str, runs: int) -> list[tuple[str, float, float]]:
    """(what, bare median, engine median) for the module and the notebook."""
    assignment = find(slug)
    tmp = Path(tempfile.mkdtemp())
    module = tmp / "submission.py"
    module.write_text(assignment.solution.read_text())
    notebook = tmp / "submission.ipynb"
    nbformat.write(module_to_notebook(module.read_text()), str(notebook))
    frames = record_calls(module, assignment)  # also warms this process, as a worker is
    rows = []
    for what, path, bare in (("module", module, bare_module), ("notebook", notebook, bare_notebook)):
        bare_times, engine_times = [], []
        for _ in range(runs):
            bare_times.append(bare(path, frames))
            engine_times.append(engine(path, assignment))
        rows.append((what, statistics.median(bare_times), statistics.median(engine_times)))
    return rows


def main() -> int:
    """Print a table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*", default=["01_tensors", "03_numpy_backprop"])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{'assignment':22} {'kind':9} {'bare s':>8} {'engine s':>9} {'ratio':>6}")
    for slug in args.slugs:
        for what, bare_s, engine_s in measure(slug, args.runs):
            print(f"{slug:22} {what:9} {bare_s:8.3f} {engine_s:9.3f} {engine_s / bare_s:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
