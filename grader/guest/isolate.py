"""Inside the fork server: the system calls that make a forked process a sandboxed job.

bubblewrap makes the fork server's view of the file system once (read-only system and
Python folders, forbidden modules hidden). Each job forked from it then makes what is
its own, as bubblewrap would for a cold job: new pid, mount, network, ipc, uts and
cgroup namespaces, a fresh /proc, /tmp, /dev/shm and /job, its limits, its own uid
with no capabilities left, no new privileges, and the seccomp filter. Nothing here is
trusted to keep a secret: the fork server holds none.
"""

from __future__ import annotations

import ctypes
import os
import resource
import socket
import struct

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_REC, MS_PRIVATE = 32, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_KEEPCAPS = 1, 4, 8
PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 22, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL, SECCOMP_MODE_FILTER = 4, 2
CAP_LAST_CAP = 63  # PR_CAPBSET_DROP past the kernel's last capability fails with EINVAL
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong)


class SockFprog(ctypes.Structure):
    """struct sock_fprog: a seccomp filter's length and instructions."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """Move this process into new namespaces (pid: for its children)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2)."""
    _check(_libc.mount(_bytes(source), target.encode(), _bytes(fstype), flags, data.encode() or None),
           f"mount {target}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def prctl(option: int, arg: int = 0) -> None:
    """prctl(2) with one argument."""
    _check(_libc.prctl(option, arg, 0, 0, 0), f"prctl {option}")


def enter_namespaces() -> None:
    """New mount, network, ipc, uts and cgroup namespaces; a new pid namespace for children."""
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)
    try:
        unshare(CLONE_NEWCGROUP)  # after joining the job's cgroup: it is the job's root
    except OSError:
        pass  # a kernel without cgroup namespaces (bubblewrap's --unshare-cgroup-try)
    # Nothing mounted from here on reaches the fork server's namespace.
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def join_cgroup(procs_fds: list[int]) -> None:
    """Write this process into the job's cgroup(s) through cgroup.procs files opened for us."""
    pid = str(os.getpid()).encode()
    for fd in procs_fds:
        os.write(fd, pid)
        os.close(fd)


def _tmpfs(target: str, size: int, mode: str) -> None:
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")


def make_filesystem(job_dir: str, files: dict[str, bytes], tmp_bytes: int) -> None:
    """The job's own /proc, /tmp, /dev/shm and a read-only job_dir holding files (as pid 1)."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _tmpfs("/tmp", tmp_bytes, "1777")
    _tmpfs("/dev/shm", tmp_bytes, "1777")
    _tmpfs(job_dir, sum(len(d) for d in files.values()) + (1 << 20), "0755")
    for name, data in files.items():
        path = f"{job_dir}/{name}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
    mount(None, job_dir, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    socket.sethostname("sandbox")
    _loopback_up()


def _loopback_up() -> None:
    """Bring up `lo` in the job's network namespace, as bubblewrap does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        import fcntl

        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def set_limits(limits: dict[str, Any]) -> None:
    """The job's rlimits (the same as a cold job's, from the trusted side's numbers)."""
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), tuple(value))


def drop_privileges(uid: int | None) -> None:
    """Become uid with no capabilities in any set and no way to gain them back."""
    if uid is not None:
        for cap in range(CAP_LAST_CAP + 1):
            try:
                prctl(PR_CAPBSET_DROP, cap)
            except OSError:
                break  # past the kernel's last capability
        prctl(PR_SET_KEEPCAPS, 0)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to a user: every capability set is cleared
        try:
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        except OSError:
            pass
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def load_seccomp(bpf: bytes) -> None:
    """Install the seccomp filter (exported BPF: 8-byte instructions) on this process."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0),
           "seccomp")
