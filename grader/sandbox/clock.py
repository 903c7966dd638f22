"""The job's own clock: the time a job ran or slept, not the time it waited for a CPU.

Limits are on the student's work, so a call's time is its wall time less the time the
job was ready to run and got no CPU because others held them. The kernel says how long
that was: the run delay of each of the job's tasks (`/proc/<tid>/schedstat`, second
field) and the job cgroup's `cpu.pressure` (`full`: every runnable task waiting). Each
sample takes the larger of the two for its interval. Pressure alone under-counts here
(per-CPU states are averaged when a task moves between CPUs: 8.3 s against a 9.7 s run
delay, measured), and the run delay alone misses tasks that ended between samples.
Time the cgroup was frozen, and time this process itself was stopped, are not the job's
either. Sleeping counts: a job blocked in `time.sleep` or on a lock is using its time.

Two guards keep the stall honest: a job is charged at least its CPU time over its CPU
share (its threads queueing behind each other, or its own quota, earn it nothing), and
a `Watch` has a wall-clock backstop (a few times the limit) past which the machine, not
the student, is at fault.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.kernel_files import KernelFiles

# Which kernel accounting the stall is read from (tests narrow it to check each alone).
STALL_SOURCES: tuple[str, ...] = ("pressure", "schedstat")
SAMPLE_EVERY_S = 0.05  # at most this often; a frame read in many chunks reuses the sample
# A "forced" sample (a call's start and end) is skipped when the last one is under this
# old: a call is measured from its start sample's moment to now, and the stall is what
# the samples saw, so the time since the last sample counts as the job's own. A job is
# charged at most this much too much per call (a quick call's two samples were a third
# of the trusted side's CPU per call), never too little.
MARK_FRESH_S = 0.002
MAX_WAIT_S = 0.5  # between samples while waiting on a job
# How long a call's end waits for the job's tasks to leave their CPUs (`JobClock.settle`),
# and after how many waits in a row that ran out the job is taken to keep a task busy.
SETTLE_MAX_S = 0.005
SETTLE_GIVE_UP_AFTER = 3
LATE_S = 0.25  # a wait that overran by more than this: this process was stopped or starved
BACKSTOP_FACTOR = 3.0
BACKSTOP_EXTRA_S = 5.0


def backstop_s(budget_s: float) -> float:
    """Wall seconds after which a budget of the job's own seconds is the machine's failure."""
    return BACKSTOP_FACTOR * budget_s + BACKSTOP_EXTRA_S


@dataclass(frozen=True)
class Mark:
    """The clock's readings at one moment (the start of a call)."""

    wall: float
    stall: float
    cpu: float


def _run_delay_s(tid: int, files: KernelFiles) -> float | None:
    try:
        data = files.read(f"/proc/{tid}/schedstat")
        return int(data.split()[1]) / 1e9 if data else None
    except (ValueError, IndexError):
        return None


def _descendant_tasks(pid: int) -> list[int]:
    """Thread ids of pid and every process below it (where there is no job cgroup)."""
    found, todo = [], [pid]
    while todo and len(found) < 4096:
        proc = todo.pop()
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{proc}/task")]
        except (OSError, ValueError):
            continue
        found += tids
        for tid in tids:
            try:
                todo += [int(c) for c in Path(f"/proc/{proc}/task/{tid}/children").read_text().split()]
            except (OSError, ValueError):
                pass
    return found


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its reaped children (where there is no job cgroup)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class JobClock:
    """Accumulates the time one job spent waiting for a CPU (or frozen), from the kernel."""

    def __init__(self, pid: int, cgroup: JobCgroup | None, cpus: float) -> None:
        self.pid = pid
        self.cgroup = cgroup
        self.cpus = max(cpus, 0.01)
        self.stall = 0.0
        self._late = 0.0
        self._files = KernelFiles()  # each task's schedstat, kept open between samples
        self._state_files = KernelFiles()  # each task's stat, for its scheduler state
        self._unsettled = 0  # settle() waits in a row that ran out
        self._at = time.monotonic()
        self._psi = self._pressure()
        self._delays = self._run_delays()
        self._cpu = self._read_cpu()

    def _pressure(self) -> float | None:
        if self.cgroup is None or "pressure" not in STALL_SOURCES:
            return None
        return self.cgroup.pressure_full_s()

    def _run_delays(self) -> dict[int, float]:
        if "schedstat" not in STALL_SOURCES:
            return {}
        tids = self.cgroup.tasks() if self.cgroup is not None else _descendant_tasks(self.pid)
        delays = {}
        for tid in tids[:4096]:
            delay = _run_delay_s(tid, self._files)
            if delay is not None:
                delays[tid] = delay
        if len(self._files) > len(delays):
            self._files.keep_only({f"/proc/{tid}/schedstat" for tid in delays})
        return delays

    def close(self) -> None:
        """Close the files the clock keeps open (it reads nothing more)."""
        self._files.close()
        self._state_files.close()

    def _task_ids(self) -> list[int]:
        if self._delays:
            return list(self._delays)
        return self.cgroup.tasks() if self.cgroup is not None else _descendant_tasks(self.pid)

    def _running(self, tid: int) -> bool:
        data = self._state_files.read(f"/proc/{tid}/stat")
        return bool(data) and data.rpartition(b")")[2][:3] == b" R "

    def settle(self) -> bool:
        """Wait (at most SETTLE_MAX_S) until none of the job's tasks is on a CPU; False if one
        still is. The kernel charges a running task's CPU time to its cgroup only at a tick
        or when it leaves the CPU: a job that answered and went on working for a moment
        before it blocked had none of a short call charged yet (measured: a 3 ms call read
        as 0 ms in most tries), and timing compares calls of a few milliseconds."""
        if self._unsettled >= SETTLE_GIVE_UP_AFTER:
            return False  # a task of the job never rests: waiting would only cost each call
        tids = self._task_ids()
        if len(self._state_files) > len(tids):
            self._state_files.keep_only({f"/proc/{tid}/stat" for tid in tids})
        end = time.monotonic() + SETTLE_MAX_S
        while True:
            tids = [tid for tid in tids if self._running(tid)]
            if not tids:
                self._unsettled = 0
                return True
            if time.monotonic() >= end:
                self._unsettled += 1
                return False
            os.sched_yield()

    def _read_cpu(self) -> float:
        return self.cgroup.cpu_s() if self.cgroup is not None else proc_cpu_s(self.pid)

    def note_wait(self, asked_s: float, took_s: float) -> None:
        """A wait of ours overran: time this process was stopped is not the job's."""
        if took_s - asked_s > LATE_S:
            self._late = max(self._late, took_s - asked_s)

    def sample(self, force: bool = False) -> None:
        """Read the kernel's counters and add this interval's stall (rate-limited; `force`:
        unless the last sample is under MARK_FRESH_S old)."""
        now = time.monotonic()
        gap = now - self._at
        if gap < (MARK_FRESH_S if force else SAMPLE_EVERY_S):
            return
        stall = self._late
        psi = self._pressure()
        if psi is not None and self._psi is not None:
            stall = max(stall, psi - self._psi)
        delays = self._run_delays()
        if delays:
            # A task first seen now was born since the last sample: its whole delay is new.
            stall = max(stall, max(d - self._delays.get(t, 0.0) for t, d in delays.items()))
        if self.cgroup is not None and self.cgroup.frozen():
            stall = gap
        self.stall += min(max(stall, 0.0), gap)
        self._at, self._psi, self._delays, self._late = now, psi, delays, 0.0
        self._cpu = self._read_cpu()

    def mark(self) -> Mark:
        """The readings now (or from a sample under MARK_FRESH_S old), to measure a call from."""
        self.sample(force=True)
        return Mark(self._at, self.stall, self._cpu)

    def counted_s(self, since: Mark, *, force: bool = False) -> float:
        """Seconds the job ran or slept since `since`: wall time less its stall, and never
        less than its CPU time over its CPU share (`force`: sample now, to end a call,
        unless the last sample is under MARK_FRESH_S old)."""
        self.sample(force)
        wall = time.monotonic() - since.wall  # the stall is counted up to the last sample only
        own = wall - (self.stall - since.stall)
        return max(own, min((self._cpu - since.cpu) / self.cpus, wall))


class Watch:
    """One call's budget on the job's clock, and the wall-clock backstop behind it."""

    def __init__(self, clock: JobClock, budget_s: float, since: Mark | None = None) -> None:
        self.clock = clock
        self.budget_s = budget_s
        self.since = since or clock.mark()
        self.backstop_s = backstop_s(budget_s)

    def counted_s(self, *, force: bool = False) -> float:
        """The job's seconds since the call began (`force`: read the kernel now)."""
        return self.clock.counted_s(self.since, force=force)

    def wall_s(self) -> float:
        """Wall seconds since the call began."""
        return time.monotonic() - self.since.wall

    def allow(self, more_s: float) -> None:
        """Give the job at least `more_s` more of its own seconds (to finish a begun frame)."""
        self.budget_s = max(self.budget_s, self.counted_s() + more_s)

    def over(self) -> str:
        """'' while within bounds, 'timeout' past the budget, 'backstop' past the wall backstop."""
        if self.counted_s() >= self.budget_s:
            return "timeout"
        return "backstop" if self.wall_s() >= self.backstop_s else ""

    def wait_s(self) -> float:
        """How long to wait before the job could be past a bound (the clock runs at most
        as fast as the wall), capped so the kernel is sampled regularly."""
        left = min(self.budget_s - self.counted_s(), self.backstop_s - self.wall_s())
        return max(min(left, MAX_WAIT_S), 0.0)
