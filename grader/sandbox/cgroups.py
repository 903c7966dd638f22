"""A cgroup per sandboxed job: memory, processes and CPU limits, kill-all, and accounting.

Both layouts are supported: cgroup v2 with controllers (production nodes), and the
v1 controllers this build machine has, where the controller-less v2 mount beside
them still offers `cgroup.kill`. The kernel's own counters tell what happened to a
job (out of memory, process limit); nothing the job printed is believed.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.kernel_files import KernelFiles

ROOT = Path("/sys/fs/cgroup")
PARENT = "torchgrade"


@dataclass
class Usage:
    """What the kernel accounted for one job."""

    cpu_s: float = 0.0
    memory_peak_bytes: int = 0
    oom_kills: int = 0
    pids_limit_hits: int = 0


def job_prefix(pid: int | None = None) -> str:
    """The name every job cgroup (and job folder) of a process starts with."""
    return f"job-{os.getpid() if pid is None else pid}-"


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _v2_has_controllers() -> bool:
    try:
        have = set((ROOT / "cgroup.controllers").read_text().split())
    except OSError:
        return False
    return {"memory", "pids", "cpu"} <= have


def _v1_available() -> bool:
    return all((ROOT / c / "cgroup.procs").exists() for c in ("memory", "pids", "cpu"))


def detect() -> str | None:
    """'v2', 'v1' or None when this process cannot make job cgroups."""
    if os.geteuid() != 0 and not os.access(ROOT, os.W_OK):
        return None
    if _v2_has_controllers():
        return "v2"
    if _v1_available():
        return "v1"
    return None


class JobCgroup:
    """One job's cgroup(s); create with `JobCgroup.create`, always `destroy()` after."""

    def __init__(self, version: str, dirs: dict[str, Path], kill_dir: Path | None) -> None:
        self.version = version
        self.dirs = dirs
        self.kill_dir = kill_dir
        self._files = KernelFiles()  # the counters the job's clock samples at every call

    def _read(self, path: str) -> str:
        data = self._files.read(path)
        return "" if data is None else data.decode("ascii", "replace")

    def _int(self, path: str) -> int:
        try:
            return int(self._read(path).split()[0])
        except (ValueError, IndexError):
            return 0

    def _key(self, path: str, key: str) -> int:
        for line in self._read(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    @classmethod
    def create(cls, version: str, *, memory_bytes: int, pids: int, cpus: float) -> JobCgroup:
        """Make the job's cgroup(s) with the limits set."""
        name = f"{job_prefix()}{uuid.uuid4().hex[:12]}"
        if version == "v2":
            parent = ROOT / PARENT
            parent.mkdir(exist_ok=True)
            for where in (ROOT, parent):
                try:
                    _write(where / "cgroup.subtree_control", "+memory +pids +cpu")
                except OSError:
                    pass  # already enabled, or delegated to us with them on
            job = parent / name
            job.mkdir()
            _write(job / "memory.max", str(memory_bytes))
            _write(job / "memory.swap.max", "0")
            _write(job / "pids.max", str(pids))
            _write(job / "cpu.max", f"{int(cpus * 100000)} 100000")
            return cls("v2", {"unified": job}, job)
        dirs = {}
        for controller in ("memory", "pids", "cpu", "cpuacct"):
            base = ROOT / controller
            if not (base / "cgroup.procs").exists():
                continue
            (base / PARENT).mkdir(exist_ok=True)
            dirs[controller] = base / PARENT / name
            dirs[controller].mkdir()
        mem = dirs["memory"]
        _write(mem / "memory.limit_in_bytes", str(memory_bytes))
        if (mem / "memory.memsw.limit_in_bytes").exists():
            _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
        _write(dirs["pids"] / "pids.max", str(pids))
        _write(dirs["cpu"] / "cpu.cfs_period_us", "100000")
        _write(dirs["cpu"] / "cpu.cfs_quota_us", str(int(cpus * 100000)))
        kill_dir = None
        unified = ROOT / "unified"
        if (unified / "cgroup.procs").exists():
            (unified / PARENT).mkdir(exist_ok=True)
            kill_dir = unified / PARENT / name
            kill_dir.mkdir()
            dirs["unified"] = kill_dir
        return cls("v1", dirs, kill_dir)

    def procs_files(self) -> list[str]:
        """The cgroup.procs files a new process writes its pid into (in preexec)."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> list[int]:
        """Processes still in the job."""
        d = self.dirs.get("pids") or self.dirs.get("unified")
        try:
            return [int(p) for p in (d / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """Kill every process of the job, background ones included."""
        if self.kill_dir is not None and (self.kill_dir / "cgroup.kill").exists():
            try:
                _write(self.kill_dir / "cgroup.kill", "1")
            except OSError:
                pass
        for attempt in range(60):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.001 if attempt < 10 else 0.01)  # most jobs are gone within 2 ms

    def tasks(self) -> list[int]:
        """Thread ids of every process still in the job (for their scheduler statistics)."""
        if self.version == "v2":
            path = f"{self.dirs['unified']}/cgroup.threads"
        else:
            path = f"{self.dirs.get('pids') or self.dirs['memory']}/tasks"
        try:  # opened afresh each time: a v1 cgroup keeps an open file's pid list for a second
            with open(path, "rb") as f:
                return [int(t) for t in f.read().split()]
        except (OSError, ValueError):
            return []

    def cpu_s(self) -> float:
        """CPU seconds the job has used so far (one file read: this is sampled often)."""
        if self.version == "v1" and "cpuacct" in self.dirs:
            return self._int(f"{self.dirs['cpuacct']}/cpuacct.usage") / 1e9
        d = self.dirs.get("unified")
        return self._key(f"{d}/cpu.stat", "usage_usec") / 1e6 if d is not None else 0.0

    def pressure_full_s(self) -> float | None:
        """Seconds in which every runnable task of the job waited for a CPU (cpu.pressure
        `full`), None where the kernel keeps no pressure files for the job's cgroup.

        On v1 machines the controller-less cgroup2 mount beside the controllers keeps them
        too: pressure is accounted by the default hierarchy, controllers or not.
        """
        d = self.dirs.get("unified")
        if d is None:
            return None
        for line in self._read(f"{d}/cpu.pressure").splitlines():
            if line.startswith("full "):
                try:
                    return int(line.rpartition("total=")[2]) / 1e6
                except ValueError:
                    return None
        return None

    def frozen(self) -> bool:
        """Whether the job's cgroup (or one above it) is frozen: only the host can do that."""
        d = self.dirs.get("unified")
        return d is not None and self._key(f"{d}/cgroup.events", "frozen") == 1

    def usage(self) -> Usage:
        """The kernel's accounting for the job so far."""
        if self.version == "v2":
            d = self.dirs["unified"]
            return Usage(cpu_s=self.cpu_s(), memory_peak_bytes=self._int(f"{d}/memory.peak"),
                         oom_kills=self._key(f"{d}/memory.events", "oom_kill"),
                         pids_limit_hits=self._key(f"{d}/pids.events", "max"))
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        return Usage(cpu_s=self.cpu_s(),
                     memory_peak_bytes=self._int(f"{memory}/memory.max_usage_in_bytes"),
                     oom_kills=self._key(f"{memory}/memory.oom_control", "oom_kill"),
                     pids_limit_hits=self._key(f"{pids}/pids.events", "max"))

    def destroy(self) -> None:
        """Kill what is left and remove the cgroup directories."""
        self._files.close()
        self.kill()
        for d in self.dirs.values():
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
