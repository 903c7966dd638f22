"""Entry point inside the sandbox: load the submission, then answer requests until EOF.

Run as `python -m grader.guest.serve CONFIG_JSON`. The config names the submission,
the protocol file descriptors and the forbidden modules. The first frame sent is
the load report; every later frame answers one request.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

from grader.guest.dispatch import Dispatcher, describe_exception, install_import_blocker
from grader.guest.forbid import drain as drain_forbidden
from grader.guest.forbid import install as install_forbidden
from grader.guest.wire import PREFIX, STARTED, encode_frame

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any


def read_exact(fd: int, n: int) -> bytes | None:
    """Read n bytes from fd, None at EOF."""
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[bytes, bytes] | None:
    """Header and blob bytes of the next request, None at EOF."""
    prefix = read_exact(fd, PREFIX.size)
    if prefix is None:
        return None
    header_len, blob_len = PREFIX.unpack(prefix)
    header = read_exact(fd, header_len)
    blob = read_exact(fd, blob_len) if blob_len else b""
    if header is None or blob is None:
        return None
    return header, blob


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of data to fd."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def load_module(path: str) -> tuple[dict[str, Any], Any]:
    """Import the student's module; the report says what went wrong, if anything."""
    spec = importlib.util.spec_from_file_location("submission", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission"] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        return {"ready": False, "stage": "import", "error": {
            "type": "SystemExit", "traceback": "",
            "message": f"your module called sys.exit({exc.code!r}) while being imported; "
                       "remove it (or put it under `if __name__ == '__main__':`)"}}, None
    except BaseException as exc:
        return {"ready": False, "stage": "import", "error": describe_exception(exc, path)}, None
    return {"ready": True}, module


def serve(dispatcher: Dispatcher, rfd: int, wfd: int, hint: str) -> None:
    """Answer requests until the trusted side closes the pipe."""
    while True:
        body = read_frame(rfd)
        if body is None:
            return
        write_all(wfd, dispatcher.answer(body, hint))


def cap_gpu_memory(fraction: str | None) -> None:
    """Ask torch's allocator to stay under a share of the GPU (GPU jobs only).

    This runs inside the sandbox, so a student could lift it again: the hard bound is
    one GPU per task (CUDA_VISIBLE_DEVICES, set by the worker), this only keeps honest
    code from starving the next job through allocator caching.
    """
    if not fraction:
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(float(fraction))


def main(argv: list[str]) -> int:
    """Load the submission named in the config (JSON, argv[1]) and serve it."""
    return run(json.loads(argv[1]))


def run(config: dict[str, Any]) -> int:
    """Load the submission the config names and serve it (a cold job, or one forked warm)."""
    rfd, wfd = config["fd_in"], config["fd_out"]
    for fd in (rfd, wfd):
        os.set_inheritable(fd, False)  # processes the student starts do not get the pipe
    write_all(wfd, STARTED)  # the sandbox and the interpreter are up; no student code ran yet
    cap_gpu_memory(os.environ.get("TORCHGRADE_GPU_MEMORY_FRACTION"))
    forbidden = config.get("forbidden_modules", {})
    max_blob = config.get("max_blob_bytes", 256 << 20)
    if config["kind"] == "notebook":
        from grader.guest.notebook import run_notebook

        return run_notebook(config, rfd, wfd)
    install_import_blocker(forbidden)
    install_forbidden(config.get("forbidden_calls", {}), config.get("forbidden_attributes", {}),
                      forbidden)
    report, module = load_module(config["path"])
    used = drain_forbidden()
    if used:
        report["forbidden"] = used
    if module is not None:
        dispatcher = Dispatcher(module, max_blob)
        report["names"] = sorted(n for n in dispatcher.names() if not n.startswith("_"))
    sys.stdout.flush()
    write_all(wfd, encode_frame(report, seq=0))  # the load report is frame 0
    if module is not None:
        serve(dispatcher, rfd, wfd, config["path"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
