"""Memory of a grading process with its zygote, and of each job, warm against cold, in one run.

    python benchmarks/memory.py [--runs 5] [SLUG ...]

This process stands for a worker's pool process: it imports the engine, warms the zygote
for each assignment (engine.warm_up, as workers/celery_app does at worker_process_init)
and grades the reference solution as a module and as a notebook --runs times, warm
(forked from the zygote) and then cold (TORCHGRADE_WARM=0: a fresh interpreter per job).

Printed per process: RSS, PSS (shared pages divided among the processes that map them)
and USS (pages no other process maps), from /proc/PID/smaps_rollup. Per job: the job
cgroup's memory peak (kernel accounting of what the job itself charged: pages it shares
with the zygote are charged to the zygote), and the largest USS/PSS of the job's
processes sampled every 20 ms while it ran. Needs the cgroup layer (root, or delegated).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import nbformat

from grader.assignment import find
from grader.engine import grade, warm_up
from grader.notebooks import module_to_notebook
from grader.sandbox import zygote

MIB = 1024 * 1024


def rollup(pid: int) -> dict[str, int]:
    """RSS, PSS and USS of one process, in bytes (0 if it is gone)."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {"rss": 0, "pss": 0, "uss": 0}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0), "uss": uss}


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below pid."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class JobSampler(threading.Thread):
    """Samples the largest USS and PSS of the processes below `roots` that are not `skip`."""

    def __init__(self, roots: list[int], skip: set[int]) -> None:
        super().__init__(daemon=True)
        self.roots, self.skip = roots, skip
        self.uss = self.pss = 0
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until done is set."""
        while not self.done.wait(0.02):
            pids = [p for root in self.roots for p in descendants(root) if p not in self.skip]
            sizes = [rollup(p) for p in pids]
            self.uss = max(self.uss, sum(s["uss"] for s in sizes))
            self.pss = max(self.pss, sum(s["pss"] for s in sizes))


def server_processes() -> list[int]:
    """This process's zygotes: bubblewrap, the server and what bubblewrap keeps around it."""
    pids: list[int] = []
    for z in zygote.running():
        pids.append(z.proc.pid)
        pids.extend(descendants(z.proc.pid))
    return pids


def grade_once(path: Path, assignment, *, roots: list[int], skip: set[int]):
    """One grading: (cgroup peak, sampled USS, sampled PSS) in bytes."""
    sampler = JobSampler(roots, skip)
    sampler.start()
    result = grade(path, assignment, mode="service", seed=1)
    sampler.done.set()
    sampler.join()
    assert result.score == result.max_score, result.messages
    return result.usage["memory_peak_mb"] * MIB, sampler.uss, sampler.pss


def fmt(n: float) -> str:
    """Bytes as MiB."""
    return f"{n / MIB:7.1f}"


def main() -> int:
    """Print the process table and the per-job table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*", default=["02_autograd", "03_numpy_backprop", "05_nn_modules"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    assignments = [find(s) for s in args.slugs]
    before = rollup(os.getpid())
    warm_up(assignments)
    tmp = Path(tempfile.mkdtemp())
    subs = []
    for a in assignments:
        module = tmp / f"{a.slug}.py"
        module.write_text(a.solution.read_text())
        notebook = tmp / f"{a.slug}.ipynb"
        nbformat.write(module_to_notebook(module.read_text()), str(notebook))
        subs += [(a, "module", module), (a, "notebook", notebook)]
        grade(module, a, mode="service", seed=1)  # the zygote is ready; this process has graded
    me = rollup(os.getpid())
    servers = server_processes()
    print("process                                   RSS MiB  PSS MiB  USS MiB")
    print(f"grading process, engine imported only   {fmt(before['rss'])}  {fmt(before['pss'])}  "
          f"{fmt(before['uss'])}")
    print(f"grading process, after warm-up + grades {fmt(me['rss'])}  {fmt(me['pss'])}  "
          f"{fmt(me['uss'])}")
    total = {"rss": 0, "pss": 0, "uss": 0}
    for pid in servers:
        size = rollup(pid)
        for k in total:
            total[k] += size[k]
    print(f"its zygote(s): {len(zygote.running())}, {len(servers)} processes       "
          f"{fmt(total['rss'])}  {fmt(total['pss'])}  {fmt(total['uss'])}")
    print(f"worker total (grading process + zygotes) {fmt(me['rss'] + total['rss'])}  "
          f"{fmt(me['pss'] + total['pss'])}  {fmt(me['uss'] + total['uss'])}")
    print()
    rows = []
    for a, kind, path in subs:
        zygotes = [z.proc.pid for z in zygote.running()]
        warm = [grade_once(path, a, roots=zygotes, skip=set(servers)) for _ in range(args.runs)]
        os.environ[zygote.WARM_ENV] = "0"
        try:
            cold = [grade_once(path, a, roots=[os.getpid()], skip=set(servers))
                    for _ in range(args.runs)]
        finally:
            del os.environ[zygote.WARM_ENV]
        rows.append((a.slug, kind, warm, cold))
    print(f"per job, medians of {args.runs}      warm: cgroup peak  USS     PSS   | cold: cgroup peak"
          "  USS     PSS   | peak ratio")
    for slug, kind, warm, cold in rows:
        w = [statistics.median(x[i] for x in warm) for i in range(3)]
        c = [statistics.median(x[i] for x in cold) for i in range(3)]
        print(f"{slug:16} {kind:9}        {fmt(w[0])} {fmt(w[1])} {fmt(w[2])} |       {fmt(c[0])} "
              f"{fmt(c[1])} {fmt(c[2])} | {w[0] / c[0]:.2f}" if c[0] else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
