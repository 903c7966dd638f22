"""Each sandbox layer holds: proved from inside the real sandbox and from outside it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from grader.engine import LOCAL, SERVICE, grade
from grader.errors import SandboxUnavailable, StudentCodeError
from grader.proxy import Connection, StudentProxy
from grader.sandbox.layers import Layers, probe
from grader.sandbox.process import JOB_UIDS

INSPECT = """
import os, resource, socket

def facts():
    tmp_before = sorted(os.listdir("/tmp"))
    shm_before = sorted(os.listdir("/dev/shm"))
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    def writable(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            return True
        except OSError:
            return False
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        inet = "allowed"
    except OSError as exc:
        inet = exc.errno
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    userns = "allowed" if libc.unshare(0x10000000) == 0 else ctypes.get_errno()
    return {
        "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "cap_eff": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
        "seccomp": status["Seccomp"].strip(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "root": sorted(os.listdir("/")), "job": sorted(os.listdir("/job")),
        "usr_writable": writable("/usr/torchgrade-test"), "job_writable": writable("/job/x"),
        "tmp_writable": writable("/tmp/x"), "tmp_before": tmp_before,
        "shm_writable": writable("/dev/shm/x"), "shm_before": shm_before,
        "interfaces": sorted(line.split(":")[0].strip() for line in open("/proc/net/dev")
                             if ":" in line),
        "inet_socket": inet, "new_userns": userns,
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
        "hostname": socket.gethostname(),
    }

def worker_processes():
    # DataLoader workers and a multiprocessing pool, as the material writes them
    import multiprocessing
    import torch
    import torch.utils.data as Data
    data = Data.TensorDataset(torch.arange(10.0), torch.arange(10))
    batches = [b.tolist() for b, _ in Data.DataLoader(data, batch_size=4, num_workers=2)]
    with multiprocessing.Pool(2) as pool:
        squares = pool.map(abs, [-1, -2, -3])
    return batches, squares

def spin(seconds):
    import threading, time
    def burn():
        end = time.time() + seconds
        while time.time() < end:
            pass
    threads = [threading.Thread(target=burn) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return True
"""


@pytest.fixture(scope="module")
def inspect_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inspect") / "inspect.py"
    path.write_text(INSPECT)
    return path


@pytest.fixture(scope="module")
def facts(inspect_file, probe_assignment) -> dict:
    assert not probe().missing(), "these tests need every sandbox layer"
    conn = Connection(inspect_file, "module", probe_assignment.limits, probe())
    try:
        return StudentProxy(conn).facts()
    finally:
        conn.close()


def test_runs_as_an_unprivileged_uid_of_its_own_without_capabilities(facts):
    # A uid no host process has (not 65534: any host process running as nobody could read a
    # job's files through /proc/<pid>/root), the same gid, no groups.
    assert facts["uid"] in JOB_UIDS and facts["gid"] == facts["uid"] and facts["groups"] == []
    assert facts["cap_eff"] == "0000000000000000"
    assert facts["no_new_privs"] == "1"


def test_network_namespace_has_only_loopback_and_seccomp_refuses_inet(facts):
    assert facts["interfaces"] == ["lo"]
    assert facts["seccomp"] == "2"  # filter mode
    assert facts["inet_socket"] == 1  # EPERM from the filter


def test_no_nested_namespaces(facts):
    assert facts["new_userns"] == 1


def test_own_pid_namespace(facts):
    # bubblewrap's init and the job: the host's processes are invisible
    assert len(facts["pids"]) <= 4 and max(facts["pids"]) < 10


def test_only_the_submission_is_visible_and_the_system_is_read_only(facts):
    assert facts["job"] == ["submission.py"]
    assert "home" not in facts["root"] and "work" not in facts["root"]
    assert "etc" not in facts["root"], "no /etc at all: no passwd, no shadow"
    assert not facts["usr_writable"] and not facts["job_writable"]
    assert facts["tmp_writable"] and facts["tmp_before"] == []
    assert facts["hostname"] == "sandbox"  # its own UTS namespace


def _in_a_new_job(inspect_file, assignment, function: str):
    """Call one of INSPECT's functions in a sandbox of its own."""
    conn = Connection(inspect_file, "module", assignment.limits, probe())
    try:
        return getattr(StudentProxy(conn), function)()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def second_facts(inspect_file, probe_assignment, facts) -> dict:
    """facts() of a second job, after the first one wrote to /tmp and /dev/shm."""
    return _in_a_new_job(inspect_file, probe_assignment, "facts")


def test_private_tmp_is_fresh_per_job(second_facts):
    assert second_facts["tmp_before"] == [], "a file written by the first job leaked into the second"


def test_dev_shm_is_writable_and_private_per_job(facts, second_facts):
    """Issue 9 #5: /dev/shm is the job's own tmpfs (DataLoader workers pass tensors through it)."""
    assert facts["shm_writable"] and facts["shm_before"] == []
    assert second_facts["shm_before"] == [], "a file the first job left in /dev/shm leaked into the second"


def test_worker_processes_run_inside_the_sandbox(inspect_file, probe_assignment):
    """`DataLoader(..., num_workers=2)` and `multiprocessing.Pool` work within the pids limit."""
    batches, squares = _in_a_new_job(inspect_file, probe_assignment, "worker_processes")
    assert batches == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    assert squares == [1, 2, 3]


def test_file_size_rlimit(facts, probe_assignment):
    assert facts["fsize"] == probe_assignment.limits.file_size_mb << 20


def test_cpu_quota_holds_two_spinning_threads_to_one_cpu(inspect_file, probe_assignment):
    conn = Connection(inspect_file, "module", probe_assignment.limits, probe())
    try:
        StudentProxy(conn).spin(0.1)
        timing_before = len(conn.timings)
        StudentProxy(conn).spin(1.0)
        timing = conn.timings[timing_before]
    finally:
        conn.close()
    # two threads spinning for 1 s of wall time would use 2 CPU-seconds unthrottled;
    # the quota is cpus=1.0 (measured from outside, by the cgroup's accounting)
    assert timing.cpu_s < 1.35, timing


def test_wall_clock_kills_the_job(inspect_file, probe_assignment):
    limits = dataclasses.replace(probe_assignment.limits, call_timeout_s=1.0)
    conn = Connection(inspect_file, "module", limits, probe())
    try:
        started = time.monotonic()
        with pytest.raises(StudentCodeError, match="time limit"):
            StudentProxy(conn).spin(30)
        assert time.monotonic() - started < 5
        sandbox = conn.sandbox
        assert sandbox.cgroup is None or sandbox.cgroup.pids() == []
    finally:
        conn.close()


def test_service_refuses_without_a_required_layer(probe_assignment, write_submission):
    weak = dataclasses.replace(probe(), namespaces=False)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        weak.require()


def test_service_mode_refuses_when_layers_are_disabled(probe_assignment, write_submission,
                                                       monkeypatch):
    monkeypatch.setenv("TORCHGRADE_DISABLE_LAYERS", "namespaces,seccomp")
    probe.cache_clear()
    try:
        sub = write_submission("def answer(x):\n    return 2 * x\n")
        with pytest.raises(SandboxUnavailable):
            grade(sub, probe_assignment, mode=SERVICE)
        # `grader check` (local mode) degrades and says so plainly
        result = grade(sub, probe_assignment, mode=LOCAL, suites=("public",))
        assert result.score == 1
        assert any("'namespaces' is not available" in m for m in result.messages)
        assert result.sandbox["namespaces"] is False
    finally:
        monkeypatch.delenv("TORCHGRADE_DISABLE_LAYERS")
        probe.cache_clear()


def test_layers_report(layers: Layers):
    assert layers.as_dict()["rlimits"] is True
    assert set(layers.as_dict()) == {"namespaces", "cgroups", "seccomp", "uid_drop", "rlimits"}
