"""Which sandbox layers this machine offers, and which a grading mode requires."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

from grader.errors import SandboxUnavailable
from grader.sandbox import cgroups, seccomp

# The service grades for marks: it refuses to run without these.
REQUIRED_FOR_SERVICE = ("namespaces", "cgroups", "seccomp", "uid_drop")
# A probe that found a layer missing is measured again after this long: one slow run of
# bubblewrap (11 s once, under load) must not disable a worker process for its life.
REPROBE_AFTER_S = float(os.environ.get("TORCHGRADE_REPROBE_AFTER_S", 10.0))

WHAT_TO_DO = {
    "namespaces": "install bubblewrap (Debian: apt-get install bubblewrap)",
    "cgroups": "run the grader as root, or delegate a cgroup subtree with memory, pids and cpu",
    "seccomp": "install libseccomp2 and `pip install pyseccomp`",
    "uid_drop": "run the grader as root so the sandbox can switch to an unprivileged user",
}


@dataclass(frozen=True)
class Layers:
    """Each layer: True when it is in force for jobs started here."""

    namespaces: bool
    cgroups: bool
    seccomp: bool
    uid_drop: bool
    rlimits: bool = True
    cgroup_version: str | None = None

    def as_dict(self) -> dict[str, bool]:
        """Layer name to in-force flag (for results and the dashboard)."""
        data = asdict(self)
        data.pop("cgroup_version")
        return data

    def missing(self, required: tuple[str, ...] = REQUIRED_FOR_SERVICE) -> list[str]:
        """Required layers that are not in force."""
        return [name for name in required if not getattr(self, name)]

    def require(self, required: tuple[str, ...] = REQUIRED_FOR_SERVICE) -> None:
        """Raise SandboxUnavailable naming each missing layer and how to get it."""
        missing = self.missing(required)
        if missing:
            advice = "; ".join(f"{name}: {WHAT_TO_DO[name]}" for name in missing)
            raise SandboxUnavailable(f"refusing to grade without the sandbox layer(s) {advice}")

    def warnings(self) -> list[str]:
        """Plain words for each missing layer (shown by `grader check`)."""
        return [f"sandbox layer '{name}' is not available here, so your code runs without it "
                f"({WHAT_TO_DO[name]})" for name in self.missing()]


def bwrap_path() -> str | None:
    """bubblewrap's path if it is installed and can make namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    args = [path, "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "true"]
    if os.geteuid() != 0:
        args.insert(1, "--unshare-user")
    try:
        ok = subprocess.run(args, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return path if ok else None


class _Probe:
    """`probe()`: the layers measured once, or again after REPROBE_AFTER_S where one was missing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: Layers | None = None
        self._at = 0.0

    def __call__(self) -> Layers:
        """Which layers work here (TORCHGRADE_DISABLE_LAYERS, comma-separated names, turns
        layers off, to try the degraded path of `grader check`; it can only weaken `local`
        mode: the service then refuses to grade)."""
        with self._lock:
            found = self._found
            stale = time.monotonic() - self._at >= REPROBE_AFTER_S
            if found is None or (found.missing() and stale):
                found = self._found = _measure()
                self._at = time.monotonic()
            return found

    def cache_clear(self) -> None:
        """Forget the last measurement (the next call measures again)."""
        with self._lock:
            self._found = None


def _measure() -> Layers:
    off = {n.strip() for n in os.environ.get("TORCHGRADE_DISABLE_LAYERS", "").split(",")}
    version = None if "cgroups" in off else cgroups.detect()
    is_root = os.geteuid() == 0
    return Layers(
        namespaces="namespaces" not in off and bwrap_path() is not None,
        cgroups=version is not None,
        seccomp="seccomp" not in off and seccomp.available(),
        uid_drop="uid_drop" not in off and is_root and shutil.which("setpriv") is not None,
        cgroup_version=version,
    )


probe = _Probe()
