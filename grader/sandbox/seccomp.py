"""The seccomp filter: no network sockets, no tracing, no new namespaces, no mounts, no weakening personality.

Exported as BPF and handed to bubblewrap (`--seccomp FD`), or loaded by a job forked
from the zygote (grader.guest.isolate). Torch, threads and multiprocessing keep
working; unix sockets stay allowed.

Every argument test reads only the low 32 bits, as the kernel does: socket's and
socketpair's family and personality's persona are ints, and clone takes its flags
through lower_32_bits(). A test on all 64 bits let `socket(AF_INET | 1 << 32, ...)`,
made through a raw syscall, past the filter.
"""

from __future__ import annotations

import errno
import os
import socket

# clone flags that would make a new namespace
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000)
REFUSED_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET,
                    getattr(socket, "AF_VSOCK", 40))
# personality flags that weaken the process: readable memory executable, no address space
# randomisation, a mappable page zero, the legacy mmap layout
WEAKENING_PERSONALITY = (0x0400000, 0x0040000, 0x0100000, 0x0200000)
LOW_32 = 0xFFFFFFFF
REFUSED_CALLS = ("ptrace", "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register",
                 "keyctl", "add_key", "request_key", "mount", "umount2", "pivot_root",
                 "unshare", "setns", "clone3", "open_by_handle_at", "perf_event_open",
                 "kexec_load", "init_module", "finit_module", "delete_module", "userfaultfd",
                 "mount_setattr", "fsopen", "fsmount", "move_mount", "open_tree")


def available() -> bool:
    """Whether libseccomp can be reached from Python here."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def bpf_fd(*, allow_netlink: bool = False) -> int:
    """A readable fd holding the filter as BPF, positioned at its start.

    allow_netlink was for notebook jobs when they ran a ZeroMQ kernel (which lists
    network interfaces through netlink); notebooks now run in-process, and every job gets
    the strict filter.
    """
    import pyseccomp as sc

    f = sc.SyscallFilter(defaction=sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for family in REFUSED_FAMILIES:
        if allow_netlink and family == socket.AF_NETLINK:
            continue
        # MASKED_EQ leaves the high word out of the test (libseccomp masks it with 0)
        f.add_rule(deny, "socket", sc.Arg(0, sc.MASKED_EQ, LOW_32, family))
        f.add_rule(deny, "socketpair", sc.Arg(0, sc.MASKED_EQ, LOW_32, family))
    _refuse_weakening_personality(f, deny)
    for name in REFUSED_CALLS:
        # clone3 passes its flags in memory that seccomp cannot read: refuse it so glibc
        # falls back to clone, whose flags we can check.
        action = sc.ERRNO(errno.ENOSYS) if name == "clone3" else deny
        try:
            f.add_rule(action, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a call this kernel or architecture does not have
    for flag in CLONE_NEW_FLAGS:
        # a 32-bit mask: the high word is not tested, and the kernel ignores it too
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    fd = os.memfd_create("torchgrade-seccomp", 0)
    with os.fdopen(os.dup(fd), "wb") as out:
        f.export_bpf(out)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _refuse_weakening_personality(f, deny) -> None:
    # Refuse a weakening flag unless the persona is 0xffffffff, which only reads the
    # current one. libseccomp cannot put two tests on one argument, so "flag set and
    # not 0xffffffff" is written as "flag set and some other bit clear", one rule for
    # each other bit of the 32 the kernel reads.
    import pyseccomp as sc

    for flag in WEAKENING_PERSONALITY:
        for bit in range(32):
            if not flag & 1 << bit:
                f.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, flag | 1 << bit, flag))
