"""GPU discovery and one GPU per pool child, held by a lock file for the child's lifetime."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_held: list[int] = []  # keeps the lock file descriptor open (and the lock held) in this process


class NoGPU(RuntimeError):
    """The gpu queue was asked for on a machine where no GPU is visible."""


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def require_gpus() -> list[str]:
    """The visible GPUs, or NoGPU saying why the gpu queue is refused here."""
    gpus = visible_gpus()
    if not gpus:
        why = ("CUDA_VISIBLE_DEVICES hides every GPU" if "CUDA_VISIBLE_DEVICES" in os.environ
               else "nvidia-smi is missing or lists no GPU" )
        raise NoGPU(f"refusing the gpu queue: no GPU is visible on this machine ({why}). "
                    "Start `grader worker --queue cpu` here, or run the GPU image with the NVIDIA "
                    "runtime (docker run --gpus all ...).")
    return gpus


def claim_gpu(gpus: list[str], lock_dir: Path | None = None) -> str:
    """Lock one free GPU for this process and set CUDA_VISIBLE_DEVICES to it alone."""
    lock_dir = Path(lock_dir or os.environ.get("TORCHGRADE_GPU_LOCKS", tempfile.gettempdir()))
    lock_dir.mkdir(parents=True, exist_ok=True)
    for gpu in gpus:
        fd = os.open(lock_dir / f"torchgrade-gpu-{gpu}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        return gpu
    raise NoGPU(f"all {len(gpus)} GPUs are held by other pool processes; concurrency must not "
                "exceed the number of GPUs")
