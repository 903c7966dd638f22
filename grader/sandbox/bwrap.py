"""The bubblewrap command line: what the sandboxed job can see and do."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import functools
import glob
import importlib.util
import os
import sys
from pathlib import Path

SYSTEM_LINKS = (("usr/lib", "/lib"), ("usr/lib64", "/lib64"), ("usr/bin", "/bin"),
                ("usr/sbin", "/sbin"))
JOB_DIR = "/job"
# Where a Python installation keeps importable code, under each root the sandbox sees.
_PY_DIRS = ("lib*/python3*", "lib*/python3*/lib-dynload", "lib*/python3*/site-packages",
            "lib*/python3*/dist-packages", "lib/python3/dist-packages")
STUB = "raise ModuleNotFoundError({message!r}, name={name!r})\n"


@dataclasses.dataclass(frozen=True)
class Hidden:
    """A path the job sees replaced: a folder by an empty one, a file by an empty file.

    `stub` is Python put in its place (a folder's `__init__.py`, or the module itself),
    so that an import by any route fails with the manifest's reason.
    """

    path: str
    is_dir: bool
    stub: str | None = None


def data_fd(data: bytes) -> int:
    """A sealed in-memory file holding data, at offset 0, for bubblewrap to copy in."""
    fd = os.memfd_create("torchgrade", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _pth_dirs(site: str) -> list[str]:
    """Folders a .pth file in site adds (the job runs with -S, but `site.addsitedir` is there)."""
    found = []
    for pth in glob.glob(os.path.join(glob.escape(site), "*.pth")):
        try:
            lines = Path(pth).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")):
                found.append(os.path.join(site, line))
    return found


def _search_dirs(roots: tuple[str, ...]) -> list[str]:
    """Every folder inside the sandbox's view that Python could import a top-level name from."""
    dirs = [p for p in sys.path if os.path.isabs(p)]
    for root in sorted({"/usr", "/usr/local", *roots}):
        for pattern in _PY_DIRS:
            dirs += glob.glob(os.path.join(glob.escape(root), pattern))
    dirs += [d for site in list(dirs) for d in _pth_dirs(site)]
    real = dict.fromkeys(os.path.realpath(d) for d in dirs)
    return [d for d in real if _within(d, roots) and os.path.isdir(d)]


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _module_entry(folder: str, entry: str, name: str, message: str) -> Hidden | None:
    """The entry hidden when it provides `name`: a package, a module, an extension, its libs."""
    if not entry.startswith(name):
        return None
    path = os.path.join(folder, entry)
    stub = STUB.format(message=message, name=name)
    if entry == name and os.path.isdir(path):
        return Hidden(path, True, stub)
    if entry == name + ".py":
        return Hidden(path, False, stub)
    if entry == name + ".libs" or (entry.startswith(name + ".") and entry.endswith((".so", ".pyc"))):
        return Hidden(path, os.path.isdir(path))
    if entry.startswith(name + "-") and entry.endswith(".egg-info") and os.path.isfile(path):
        return Hidden(path, False)  # a distutils install's metadata file (no RECORD to read)
    return None


def _record(dist_info: str) -> list[str]:
    """The paths a wheel installed (RECORD rows are path,hash,size; csv only for quoted ones)."""
    try:
        lines = Path(dist_info, "RECORD").read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [next(csv.reader([line]))[0] if line.startswith('"') else line.rsplit(",", 2)[0]
            for line in lines if line]


def _top_level(dist_info: str) -> set[str] | None:
    try:
        return set(Path(dist_info, "top_level.txt").read_text().split())
    except OSError:
        return None


def _provides(folder: str, entry: str, names: list[str]) -> tuple[str, list[str]] | None:
    """(the forbidden name, its RECORD) when the distribution at entry provides one, else None."""
    dist = entry.rpartition(".")[0].partition("-")[0].lower().replace(".", "_")
    path = os.path.join(folder, entry)
    tops = _top_level(path)
    for name in names:
        if name in (tops or ()) or dist == name.lower() or dist.startswith(name.lower() + "_"):
            files = _record(path)
            if name in (tops or {f.split("/")[0].removesuffix(".py") for f in files}):
                return name, files
    return None


def _shared(folder: str, top: str, files: list[str]) -> bool:
    """Whether another distribution put files in folder/top too (a namespace like nvidia/)."""
    mine = {f.split("/")[1] for f in files if f.startswith(top + "/")}
    return bool(set(_listdir(os.path.join(folder, top))) - mine - {"__pycache__"})


def _distribution(folder: str, entry: str, name: str, reason: str, files: list[str],
                  roots: tuple[str, ...]) -> list[Hidden]:
    """The dist-info folder and everything else its RECORD installed (torch/lib, functorch)."""
    found = [Hidden(os.path.join(folder, entry), os.path.isdir(os.path.join(folder, entry)))]
    for top in dict.fromkeys(f.split("/")[0] for f in files):
        path = os.path.join(folder, top)
        if top in (entry, "..", "__pycache__", name, name + ".py") or not os.path.lexists(path):
            continue
        module = top.removesuffix(".py")
        message = f"{module} (installed with {name}) is not available in this sandbox: {reason}"
        stub = STUB.format(message=message, name=module) if module.isidentifier() else None
        if os.path.isdir(path) and not _shared(folder, top, files):
            found.append(Hidden(path, True, stub))
        elif os.path.isfile(path):
            found.append(Hidden(path, False, stub if top.endswith(".py") else None))
    for f in files:  # scripts and data outside the site folder (bin/torchrun)
        path = os.path.normpath(os.path.join(folder, f)) if f.startswith("../") else ""
        if path and _within(path, roots) and os.path.isfile(path):
            found.append(Hidden(path, False))
    return found


def _spec_paths(name: str, message: str, roots: tuple[str, ...]) -> list[Hidden]:
    """Where this process's own import system finds name (an editable or custom finder)."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # a finder of this process that refuses or breaks: the scan still holds
        return []
    if spec is None:
        return []
    stub = STUB.format(message=message, name=name)
    found = [Hidden(os.path.realpath(d), True, stub) for d in spec.submodule_search_locations or ()]
    if spec.origin and os.path.isfile(spec.origin) and not found:
        found.append(Hidden(os.path.realpath(spec.origin), False,
                            stub if spec.origin.endswith(".py") else None))
    return [h for h in found if _within(h.path, roots)]


def _hidden_in(folder: str, forbidden: dict[str, str], roots: tuple[str, ...]) -> list[Hidden]:
    """What provides a forbidden name in one folder (one listing, each dist-info read once)."""
    found = []
    for entry in _listdir(folder):
        for name, reason in forbidden.items():
            hidden = _module_entry(folder, entry, name, _message(name, reason))
            if hidden is not None:
                found.append(hidden)
        if entry.endswith((".dist-info", ".egg-info")):
            provided = _provides(folder, entry, list(forbidden))
            if provided is not None:
                name, files = provided
                found += _distribution(folder, entry, name, forbidden[name], files, roots)
    return found


def _message(name: str, reason: str) -> str:
    return f"{name} is not available in this sandbox: {reason}"


@functools.cache
def hidden_paths(forbidden: tuple[tuple[str, str], ...], roots: tuple[str, ...]) -> tuple[Hidden, ...]:
    """What to mount over so that no forbidden top-level module is in the job's file system.

    Scans every folder the job could import from (the interpreter's and the system's
    Python folders, .pth additions, this process's own finders) for each name's package,
    module, extension, bundled libraries and distribution. Once per process per set: the
    scan costs tens of milliseconds, a job's start must not.
    """
    # The standard library stays: the interpreter and the guest need it, and its frozen and
    # built-in modules have no file to hide. The guest's import blocker still refuses those.
    forbidden = tuple((n, r) for n, r in forbidden if n not in sys.stdlib_module_names)
    if not forbidden:
        return ()
    found: dict[str, Hidden] = {}
    hidden = [h for name, reason in forbidden for h in _spec_paths(name, _message(name, reason), roots)]
    for folder in _search_dirs(roots):
        hidden += _hidden_in(folder, dict(forbidden), roots)
    for h in hidden:
        # Mounted where a link leads (bubblewrap follows it); a link out of the sandbox's view
        # dangles there already.
        real = os.path.realpath(h.path)
        if _within(real, roots):
            found.setdefault(real, dataclasses.replace(h, path=real))
    # A path under a hidden folder is gone with it (and could not be mounted on).
    dirs = [p + "/" for p, h in found.items() if h.is_dir]
    return tuple(h for p, h in sorted(found.items()) if not any(p.startswith(d) for d in dirs))


def hide_argv(hidden: tuple[Hidden, ...]) -> tuple[list[str], list[int]]:
    """The mounts that put each hidden path out of reach, and the fds bubblewrap reads for them."""
    argv: list[str] = []
    fds: list[int] = []
    for h in hidden:
        if h.is_dir:
            # Read-only to the job user (root owns it); the size bounds a user namespace's writes.
            argv += ["--perms", "0755", "--size", str(1 << 20), "--tmpfs", h.path]
        if h.stub is not None or not h.is_dir:
            fds.append(data_fd((h.stub or "").encode()))
            target = h.path + "/__init__.py" if h.is_dir else h.path
            argv += ["--perms", "0444", "--ro-bind-data", str(fds[-1]), target]
    return argv, fds


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


def bwrap_argv(*, job_files: dict[str, int], guest_dir: Path, env: dict[str, str], tmp_mb: int,
               seccomp_fd: int | None, gpu: bool, python_dirs: list[str], drop_to: int | None,
               hide: list[str] | None = None, fork_server: tuple[str, ...] = ()) -> list[str]:
    """The argv prefix that runs a command inside the sandbox as the job user.

    job_files maps a file name under /job to an fd bubblewrap copies it from: no host
    folder holds the job's files, and no host path of the job is on the command line.
    hide is `hide_argv`'s mounts (after the Python folders they cover are bound).
    fork_server, for a zygote (grader.sandbox.zygote), names the capabilities it keeps
    as root: it shares this process's pid and cgroup namespaces (each job it forks
    makes its own), and it ends when its control socket closes, not with a thread.
    """
    argv = ["bwrap", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--hostname", "sandbox"]
    if not fork_server:
        argv += ["--unshare-pid", "--unshare-cgroup-try", "--die-with-parent"]
    argv += ["--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
    for target, link in SYSTEM_LINKS:
        if Path(link).is_symlink() or Path(link).exists():
            argv += ["--symlink", target, link]
    # The private /tmp first, so that an interpreter under /tmp can still be bound on it.
    argv += ["--size", str(tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/usr", "/tmp"}
    for d in python_dirs:
        argv += _dirs_for(d + "/x", made) + ["--ro-bind", d, d]
    argv += hide or []
    guest_target = "/opt/torchgrade/grader/guest"
    argv += _dirs_for(guest_target + "/x", made) + ["--ro-bind", str(guest_dir), guest_target]
    # /job: the job's files, copied by bubblewrap into a tmpfs of its own, then read-only.
    argv += ["--perms", "0755", "--size", str(1 << 20), "--tmpfs", JOB_DIR]
    for name, fd in job_files.items():
        argv += ["--perms", "0444", "--ro-bind-data", str(fd), f"{JOB_DIR}/{name}"]
    argv += ["--remount-ro", JOB_DIR, "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
    # A private /dev/shm (charged to the job's memory cgroup like /tmp): DataLoader workers
    # and multiprocessing pass tensors and locks through it.
    argv += ["--size", str(tmp_mb << 20), "--perms", "1777", "--tmpfs", "/dev/shm"]
    if gpu:
        for node in sorted(glob.glob("/dev/nvidia*")):
            argv += ["--dev-bind", node, node]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if fork_server:
        return argv + ["--cap-drop", "ALL", *(a for cap in fork_server for a in ("--cap-add", cap)), "--"]
    if drop_to is None:
        # Not root: bubblewrap makes a user namespace, and the job may not make another.
        argv[1:1] = ["--unshare-user", "--disable-userns"]
        return argv + ["--"]
    argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
    # Drop to the unprivileged job user after the mounts are made, before Python starts.
    return argv + ["setpriv", f"--reuid={drop_to}", f"--regid={drop_to}", "--clear-groups",
                   "--no-new-privs", "--inh-caps=-all"]


def hidden_for(forbidden: dict[str, str], roots: tuple[str, ...]) -> tuple[Hidden, ...]:
    """`hidden_paths` for a manifest's table, scanned again when a path it found went away.

    A package removed or upgraded while the worker runs would otherwise leave a mount
    point that no longer exists, and bubblewrap would refuse every job.
    """
    key = (tuple(sorted(forbidden.items())), roots)
    hidden = hidden_paths(*key)
    if not all(os.path.lexists(h.path) for h in hidden):
        hidden_paths.cache_clear()
        hidden = hidden_paths(*key)
    return hidden
