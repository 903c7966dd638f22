"""The bubblewrap command line: what the sandboxed job can see and do."""

from __future__ import annotations

import glob
from pathlib import Path

SYSTEM_LINKS = (("usr/lib", "/lib"), ("usr/lib64", "/lib64"), ("usr/bin", "/bin"),
                ("usr/sbin", "/sbin"))


def _dirs_for(path: str, made: set[str]) -> list[str]:
    # bwrap makes missing parents with mode 0700, which the unprivileged job user cannot
    # cross (this machine's Python lives under /root): make them 0755 first.
    args: list[str] = []
    parts = Path(path).parts[1:-1]
    current = ""
    for part in parts:
        current += "/" + part
        if current not in made:
            made.add(current)
            args += ["--perms", "0755", "--dir", current]
    return args


def bwrap_argv(*, job_dir: Path, guest_dir: Path, env: dict[str, str], tmp_mb: int,
               seccomp_fd: int | None, gpu: bool, python_dirs: list[str],
               drop_to: int | None) -> list[str]:
    """The argv prefix that runs a command inside the sandbox as the job user."""
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent", "--new-session",
            "--clearenv",
            "--ro-bind", "/usr", "/usr"]
    for target, link in SYSTEM_LINKS:
        if Path(link).is_symlink() or Path(link).exists():
            argv += ["--symlink", target, link]
    # The private /tmp first, so that an interpreter under /tmp can still be bound on it.
    argv += ["--size", str(tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/usr", "/tmp"}
    for d in python_dirs:
        argv += _dirs_for(d + "/x", made) + ["--ro-bind", d, d]
    guest_target = "/opt/torchgrade/grader/guest"
    argv += _dirs_for(guest_target + "/x", made) + [
        "--ro-bind", str(guest_dir), guest_target, "--ro-bind", str(job_dir), "/job",
        "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
    if gpu:
        for node in sorted(glob.glob("/dev/nvidia*")):
            argv += ["--dev-bind", node, node]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if drop_to is None:
        # Not root: bubblewrap makes a user namespace, and the job may not make another.
        argv[1:1] = ["--unshare-user", "--disable-userns"]
        return argv + ["--"]
    argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
    # Drop to the unprivileged job user after the mounts are made, before Python starts.
    return argv + ["setpriv", f"--reuid={drop_to}", f"--regid={drop_to}", "--clear-groups",
                   "--no-new-privs", "--inh-caps=-all"]
