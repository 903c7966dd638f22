"""Hostile system calls: the seccomp filter reads each argument as the kernel does.

The kernel reads socket's and socketpair's family and personality's persona as 32-bit
ints, and clone's flags through lower_32_bits(), so a filter that compares all 64 bits
lets `socket(AF_INET | 1 << 32, ...)` through. Each case makes its calls through a raw
syscall with c_long arguments, as a hostile student would, in the real sandbox.

The filter answers EPERM; any other answer came from the kernel, so the call got past the
filter. Where the kernel itself would refuse a call for want of a privilege (AF_PACKET,
new namespaces), the case also makes it with an argument that the kernel refuses with
EINVAL before any privilege check, so that a call let through shows as EINVAL.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from pathlib import Path

import nbformat
import pytest

from grader.notebooks import module_to_notebook
from grader.proxy import Connection, StudentProxy
from grader.sandbox import seccomp
from grader.sandbox.layers import probe

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

DEADLINE_S = 30
HIGHS = {"1<<32": 1 << 32, "0xdead<<32": 0xDEAD << 32}
FAMILIES = {"inet": (socket.AF_INET, socket.SOCK_STREAM), "inet6": (socket.AF_INET6, socket.SOCK_STREAM),
            "netlink": (socket.AF_NETLINK, socket.SOCK_RAW), "packet": (socket.AF_PACKET, socket.SOCK_RAW),
            "vsock": (getattr(socket, "AF_VSOCK", 40), socket.SOCK_STREAM)}
# A type flag the kernel refuses (EINVAL) before it looks at the family or a privilege.
BAD_TYPE = socket.SOCK_STREAM | 0x10
PERSONALITY_FLAGS = {"read_implies_exec": 0x0400000, "addr_no_randomize": 0x0040000,
                     "mmap_page_zero": 0x0100000, "addr_compat_layout": 0x0200000}
CLONE_NEW = {"newns": 0x00020000, "newcgroup": 0x02000000, "newuts": 0x04000000, "newipc": 0x08000000,
             "newuser": 0x10000000, "newpid": 0x20000000, "newnet": 0x40000000}
# CLONE_THREAD without CLONE_SIGHAND: the kernel answers EINVAL before it makes anything.
CLONE_THREAD = 0x00010000

HONEST = """
def answer(x):
    return x * 2
def echo(value):
    return value
"""

# PAIR stands for the address of an int[2] (socketpair's result).
ATTACK = HONEST + """
import ctypes, errno

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_pair = (ctypes.c_int * 2)(-1, -1)
CALLS = {calls!r}

def _attempt(number, *args):
    args = [ctypes.addressof(_pair) if arg == "PAIR" else arg for arg in args]
    ctypes.set_errno(0)
    if _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(arg) for arg in args)) >= 0:
        return "done"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def attempts():
    return [_attempt(*call) for call in CALLS]

def run():
    return "ok" if any(seen != "EPERM" for seen in attempts()) else "refused"
"""


@pytest.fixture(scope="module")
def require_full_sandbox():
    missing = probe().missing()
    assert not missing, f"these tests need every sandbox layer; missing {missing}"


def _nr(name: str) -> int:
    import pyseccomp  # here, so that a machine without it fails on require_full_sandbox's message

    return pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)


def _call(path: Path, assignment, function: str, kind: str = "module"):
    """Call one function of the submission in the real sandbox and return what came back."""
    conn = Connection(path, kind, assignment.limits, probe())
    try:
        return StudentProxy(conn).__getattr__(function)()
    finally:
        conn.close()


def _socket_cases() -> list:
    cases = []
    for family_name, (family, kind) in FAMILIES.items():
        for high_name, high in HIGHS.items():
            socket_calls = [("socket", family | high, kind, 0), ("socket", family | high, BAD_TYPE, 0)]
            pair_calls = [("socketpair", family | high, socket.SOCK_STREAM, 0, "PAIR"),
                          ("socketpair", family | high, BAD_TYPE, 0, "PAIR")]
            cases.append(pytest.param(socket_calls, id=f"socket-{family_name}-{high_name}"))
            cases.append(pytest.param(pair_calls, id=f"socketpair-{family_name}-{high_name}"))
    return cases


def _personality_cases() -> list:
    return [pytest.param([("personality", flag | high)], id=f"personality-{name}-{high_name}")
            for name, flag in PERSONALITY_FLAGS.items()
            for high_name, high in {"low": 0, **HIGHS}.items()]


def _clone_cases() -> list:
    return [pytest.param([("clone", flag | CLONE_THREAD | high, 0, 0, 0, 0)], id=f"clone-{name}-{high_name}")
            for name, flag in CLONE_NEW.items()
            for high_name, high in {"low": 0, **HIGHS}.items()]


def _attack(calls: list) -> str:
    plain = [(_nr(name), *(arg if arg == "PAIR" else int(arg) for arg in args)) for name, *args in calls]
    return ATTACK.format(calls=plain)


@pytest.mark.parametrize("calls", _socket_cases() + _personality_cases() + _clone_cases())
def test_refused_call_is_refused_whatever_its_high_bits(calls, probe_assignment, write_submission,
                                                        grade_hostile):
    sub = write_submission(_attack(calls))
    result = grade_hostile(sub, probe_assignment, deadline_s=DEADLINE_S)
    run = next(t for t in result.tests if t.name.startswith("run"))
    seen = _call(sub, probe_assignment, "attempts")
    assert result.score == 2 and not run.passed, f"a call got past the filter; the calls saw {seen}"
    assert seen == ["EPERM"] * len(calls)


def test_the_attacks_are_real_without_the_filter():
    """Outside the sandbox the same raw calls do reach the kernel (so EPERM above is the filter's)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(_nr("socket")), ctypes.c_long(socket.AF_INET | 1 << 32),
                      ctypes.c_long(socket.SOCK_STREAM), ctypes.c_long(0))
    assert fd >= 0, os.strerror(ctypes.get_errno())
    with socket.socket(fileno=fd) as made:
        assert made.family == socket.AF_INET  # the kernel read the low 32 bits
    flags = CLONE_NEW["newnet"] | CLONE_THREAD | 1 << 32
    bad = libc.syscall(ctypes.c_long(_nr("clone")), ctypes.c_long(flags), *(ctypes.c_long(0),) * 4)
    assert (bad, ctypes.get_errno()) == (-1, errno.EINVAL)


HONEST_USE = HONEST + """
import ctypes, multiprocessing, os, socket, threading
import torch  # imported before the fork, used after it (libgomp is not fork-safe)

def _square(conn, x):
    conn.send(x * x)

def _checks():
    a, b = socket.socketpair(socket.AF_UNIX)
    a.sendall(b"x")
    yield "unix socketpair", b.recv(1) == b"x"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(b"\\0torchgrade-honest-" + str(os.getpid()).encode())
        yield "unix socket", True
    box = []
    thread = threading.Thread(target=box.append, args=(1,))
    thread.start()
    thread.join()
    yield "thread", box == [1]
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    yield "fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
    parent, child = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(target=_square, args=(child, 3))
    worker.start()
    worker.join()
    yield "multiprocessing", parent.recv() == 9 and worker.exitcode == 0
    libc = ctypes.CDLL(None, use_errno=True)
    yield "personality query", libc.personality(0xFFFFFFFF) == 0  # reads, changes nothing
    yield "personality linux", libc.personality(0) == 0
    torch.set_num_threads(2)
    yield "torch", float(torch.ones(64, 64).matmul(torch.ones(64, 64)).sum()) == 64.0 ** 3

def run():
    failed = []
    try:
        for name, ok in _checks():
            if not ok:
                failed.append(name)
    except OSError as exc:
        failed.append(repr(exc))
    return "ok" if not failed else "failed: " + ", ".join(failed)
"""


def test_honest_unix_sockets_threads_fork_and_torch_still_work(probe_assignment, write_submission,
                                                               grade_hostile):
    sub = write_submission(HONEST_USE)
    result = grade_hostile(sub, probe_assignment, deadline_s=DEADLINE_S)
    assert result.score == 3, _call(sub, probe_assignment, "run")


def test_notebook_jobs_refuse_network_families_with_high_bits(probe_assignment, tmp_path, grade_hostile):
    calls = [("socket", socket.AF_INET | 1 << 32, socket.SOCK_STREAM, 0),
             ("socket", getattr(socket, "AF_VSOCK", 40) | 1 << 32, socket.SOCK_STREAM, 0),
             ("socket", socket.AF_PACKET | 1 << 32, BAD_TYPE, 0),
             ("personality", PERSONALITY_FLAGS["read_implies_exec"] | 1 << 32)]
    # The notebook filter allows netlink (ZeroMQ lists interfaces through it); the rest holds.
    path = tmp_path / "work.ipynb"
    nbformat.write(module_to_notebook(_attack(calls)), str(path))
    result = grade_hostile(path, probe_assignment, deadline_s=DEADLINE_S)
    seen = _call(path, probe_assignment, "attempts", kind="notebook")
    assert result.score == 2, f"a call got past the notebook filter; the calls saw {seen}"
    assert seen == ["EPERM"] * len(calls)


def test_the_filter_stays_small():
    """The exported BPF is well under the kernel's 4096-instruction limit."""
    for allow_netlink in (False, True):
        fd = seccomp.bpf_fd(allow_netlink=allow_netlink)
        try:
            assert os.fstat(fd).st_size // 8 < 1024
        finally:
            os.close(fd)
