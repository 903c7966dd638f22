"""What a student waits for: `grader check` of a torch notebook, first and later, on this machine.

    python benchmarks/check_latency.py [--runs 5] [SLUG ...]

For each assignment (default 02_autograd and 05_nn_modules) the handout is released
(`grader release`), the reference solution is written into it as a notebook, and
`grader check` is run on it as a student would run it, from the handout folder:
the first check of a session (it starts the user's warm server, grader.cli_server),
then --runs more through that server, and --runs with `--no-server` (a fresh process
that imports the engine and starts its own sandbox, as every check did before the
server). The server is a private one (its own XDG_RUNTIME_DIR), so no server already
running is measured, and it is stopped at the end. Prints wall seconds: the first,
the median through the server, the median without it.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.assignment import find
from grader.notebooks import module_to_notebook


def check(work: Path, *extra: str, env: dict[str, str]) -> float:
    """Wall seconds of one `grader check`; it must pass."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", work.name, *extra],
                          cwd=work.parent, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"grader check failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def _stop_servers(runtime: Path) -> None:
    """End the servers whose sockets are under runtime (the private ones of this run)."""
    out = subprocess.run(["pgrep", "-f", f"grader.cli_server {runtime}"], capture_output=True,
                         text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> int:
    """Release, check, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*", default=["02_autograd", "05_nn_modules"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="torchgrade-check-"))
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    rows = []
    try:
        for slug in args.slugs:
            assignment = find(slug)
            handout = tmp / "handout"
            subprocess.run([sys.executable, "-m", "grader.cli", "release", slug, str(handout)],
                           check=True, capture_output=True)
            work = handout / slug / "my_work.ipynb"
            nbformat.write(module_to_notebook(assignment.solution.read_text()), str(work))
            first = check(work, env=env)
            warm = [check(work, env=env) for _ in range(args.runs)]
            cold = [check(work, "--no-server", env=env) for _ in range(args.runs)]
            rows.append((slug, first, statistics.median(warm), statistics.median(cold)))
    finally:
        _stop_servers(runtime)
    print(f"grader check of the reference as a notebook, medians of {args.runs}")
    print(f"{'assignment':16} {'first':>8} {'server':>8} {'--no-server':>12}")
    for slug, first, warm, cold in rows:
        print(f"{slug:16} {first:7.2f}s {warm:7.2f}s {cold:11.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
