"""What a process's gradings left behind: job cgroups, job folders, child processes.

A grading that ends (however it ends) leaves none of these; the hostile tests and
`grader layers` ask here. Names carry the creating process's pid (`job-<pid>-...`),
so one process's leftovers are told apart from another's running jobs.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.sandbox import cgroups


def _cgroup_dirs(prefix: str) -> list[str]:
    # Only where JobCgroup makes them (ROOT/torchgrade, ROOT/<hierarchy>/torchgrade): a
    # recursive glob walked every cgroup on the machine and failed when one went away.
    found = []
    try:
        parents = [cgroups.ROOT / cgroups.PARENT] + [d / cgroups.PARENT for d in cgroups.ROOT.iterdir()]
    except OSError:
        return []
    for parent in parents:
        try:
            found += [str(d) for d in parent.glob(prefix + "*") if d.is_dir()]
        except OSError:  # not there, or went away while read
            pass
    return found


def _job_dirs(prefix: str) -> list[str]:
    from grader.sandbox.process import jobs_root

    root = jobs_root(create=False)
    if root is None or not root.is_dir():
        return []
    return [str(d) for d in root.glob(prefix + "*")]


def _children(pid: int) -> list[str]:
    from grader.sandbox.zygote import server_pids

    found = []
    servers = server_pids() if pid == os.getpid() else set()  # warm zygotes stay, by design
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in servers:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.rpartition(")")
        fields = rest.split()
        if len(fields) > 2 and int(fields[1]) == pid:
            found.append(f"process {entry.name} ({name.partition('(')[2]}, state {fields[0]})")
    return found


def leftovers(pid: int | None = None, *, children: bool = True) -> list[str]:
    """Job cgroups, job folders and (optionally) child processes that the process left."""
    pid = os.getpid() if pid is None else pid
    prefix = cgroups.job_prefix(pid)
    found = _cgroup_dirs(prefix) + _job_dirs(prefix)
    return found + (_children(pid) if children else [])


def leftovers_after(grace_s: float = 2.5, pid: int | None = None,
                    ignore: frozenset[str] = frozenset()) -> list[str]:
    """What is still left once a grace has passed (the kernel reaps a killed job quickly);
    `ignore` holds what was there before (a test's own server, say)."""
    import time

    deadline = time.monotonic() + grace_s
    while True:
        found = [item for item in leftovers(pid) if item not in ignore]
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)
