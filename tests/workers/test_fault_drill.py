"""scripts/fault_drill.py, small: real workers, its own Redis and PostgreSQL, faults mid-burst.

200 submissions of the tiny fixture assignment (180 right, 20 known-wrong), two worker nodes, and
four faults early in the burst, while most of it still waits: duplicate deliveries, a worker
node killed with kill -9 (its lease expires and another node's sweeper requeues it), Redis
killed and restarted empty (its waiting messages are lost: the sweepers resend them from the
database), PostgreSQL stopped for a few seconds. Nothing may be lost,
nothing graded twice, every score right, and nothing the drill started may outlive it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "scripts" / "fault_drill.py"
FAULTS = ["dup", "kill", "redis", "postgres"]
# The tiny assignment grades in a fraction of a second (about 10 a second on two nodes): 40
# drained before the third fault fired (Redis found nothing waiting), and with Redis first the
# resent backlog drained before the last two. 200 keep work waiting through every fault.
N = 200
N_WRONG = round(0.1 * N)  # the drill's --wrong-frac

pytestmark = pytest.mark.slow


def _cmdlines() -> list[str]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    """One small drill run, shared by the assertions below."""
    out = tmp_path_factory.mktemp("drill") / "drill.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHGRADE_")}
    proc = subprocess.run(
        [sys.executable, str(DRILL), "--n", str(N), "--workers", "2", "--faults", ",".join(FAULTS),
         "--at", "0.05,0.1,0.2,0.3", "--fault-gap-s", "1", "--pg-down-s", "5", "--settle-s", "3",
         "--drain-timeout-s", "150", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    said = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert out.exists(), f"the drill wrote no JSON: {said}"
    return proc, json.loads(out.read_text())


def test_drill_loses_nothing_and_grades_each_once(drill):
    proc, report = drill
    said = f"\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert report["submissions"] == N
    assert report["lost"] == 0, f"lost: {report['lost_detail']}{said}"
    assert report["graded_twice"] == 0, f"graded twice: {report['graded_twice_detail']}{said}"
    assert report["wrong_score"] == 0, f"wrong scores: {report['wrong_score_detail']}{said}"
    assert report["graded"] == N and report["failed"] == 0, report["failed_reasons"]
    assert report["drained"] and report["ok"], said
    assert proc.returncode == 0, said
    kinds = report["by_kind"]
    assert kinds["solution"]["n"] == N - N_WRONG and kinds["solution"]["right"] == N - N_WRONG
    assert sum(k["right"] for k in kinds.values()) == N
    assert report["deliveries"]["total"] >= N + 2  # at least the duplicates sent at submit time


def test_every_fault_fired_and_was_recovered_from(drill):
    proc, report = drill
    assert [f["kind"] for f in report["faults"]] == FAULTS, (report["faults_not_fired"], proc.stderr[-3000:])
    for fault in report["faults"]:
        assert fault["next_graded_s"] is not None, fault
        if fault["victims"]:
            assert fault["victims_final_s"] is not None, fault
    faults = {f["kind"]: f for f in report["faults"]}
    assert faults["kill"]["processes_killed"] >= 2 and faults["kill"]["replacement_ready_s"] > 0
    # Redis went while work waited in it: those messages were lost, and still all was graded.
    assert faults["redis"]["messages_in_queue"] > 0 and faults["redis"]["victims"]
    assert report["workers_started"] == 3


def test_worker_logs_are_counted(drill):
    _, report = drill
    logs = report["logs"]
    assert logs["lines"] > 0 and logs["by_level"].get("INFO", 0) > 0
    assert len(logs["per_worker"]) == 3
    # Redis and PostgreSQL went away: the workers said so, and the drill counted it.
    assert logs["warnings_and_errors"] > 0 and logs["top_repeated"]


def test_nothing_outlives_the_drill(drill):
    _, report = drill
    folder = report["config"]["folder"]
    assert not Path(folder).exists(), f"{folder} was left behind"
    left = [c for c in _cmdlines() if folder in c
            or any(h in c for h in report["config"]["hostnames"])]
    assert not left, f"processes left behind: {left}"
