"""`grader check` and `grader grade` through a warm server of the user's own.

A check in a fresh process pays for Python, pytest and torch on the trusted side, and
for the zygote's own torch in the sandbox: seconds on a laptop, every time. So the first
`grader check` (or `grade`) starts this server in the background (as the same user, in
a new session), and every one after it is a short request over a unix socket: the
server already has torch imported, the tests' bytecode cached and a zygote warm. It runs
the very command line it is sent (grader.cli.main), its output streamed back.

The socket lives in a folder private to the user (mode 0700, checked without following
links), the server answers only processes of the same uid (SO_PEERCRED), and its name
holds a digest of the grader's own files and settings, so that an upgraded grader or a
changed TORCHGRADE_* setting is served by a new server, never by a stale one. The server
ends after IDLE_S (TORCHGRADE_CLI_IDLE_S) without a request. TORCHGRADE_CLI_SERVER=0 (or
`--no-server`) runs the command in the calling process instead, as does any failure to
reach a server.

    python -m grader.cli_server SOCKET_PATH     (started by `grader check`; not by hand)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

SERVER_ENV = "TORCHGRADE_CLI_SERVER"
IDLE_ENV = "TORCHGRADE_CLI_IDLE_S"  # seconds without a request before the server ends
IDLE_S = 900.0
CONNECT_TIMEOUT_S = 60.0  # for a server this check started to begin answering
MAX_REQUEST = 1 << 16


def enabled() -> bool:
    """Whether check and grade go through a server (TORCHGRADE_CLI_SERVER is not 0)."""
    return os.environ.get(SERVER_ENV, "1") != "0"


def _runtime_dir() -> Path | None:
    """A folder only this user can enter, for the socket; None where there is none safe."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"torchgrade-cli-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, a link, or open to others: do not use it
    return folder


def _digest() -> str:
    """What the server's answers depend on: this interpreter, the grader's files, its settings."""
    h = hashlib.sha256(sys.executable.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        h.update(f"{path}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    for name in sorted(os.environ):
        if name.startswith("TORCHGRADE_") or name in ("PATH", "PYTHONPATH"):
            h.update(f"{name}={os.environ[name]}\n".encode())
    return h.hexdigest()[:20]


def socket_path() -> Path | None:
    """Where this grader's server listens (None: no private folder for it here)."""
    folder = _runtime_dir()
    return None if folder is None else folder / f"{_digest()}.sock"


# -- the client ---------------------------------------------------------------------


def _connect(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        return None
    return client


def _start_server(path: Path) -> None:
    subprocess.Popen([sys.executable, "-m", "grader.cli_server", str(path)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, cwd="/")


def run(argv: list[str], *, color: bool) -> int | None:
    """Run a `grader` command line through the server (started if needed); its exit code.

    None where no server can be reached (run it here instead). argv's paths must be
    absolute: the server's working directory is not the caller's. What the command
    prints is written to this process's stdout and stderr as it comes.
    """
    path = socket_path()
    if path is None:
        return None
    client = _connect(path)
    if client is None:
        with contextlib.suppress(OSError):
            path.unlink()  # a server that has ended left its socket
        _start_server(path)
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while client is None and time.monotonic() < deadline:
            time.sleep(0.05)
            client = _connect(path)
        if client is None:
            return None
    request = {"argv": argv, "color": color}
    with client, client.makefile("rb") as answers:
        client.sendall(json.dumps(request).encode() + b"\n")
        for line in answers:
            message = json.loads(line)
            if "out" in message:
                sys.stdout.write(message["out"])
                sys.stdout.flush()
            if "err" in message:
                sys.stderr.write(message["err"])
            if "exit" in message:
                return int(message["exit"])
    return None  # the server went away mid-check: check here instead


# -- the server ---------------------------------------------------------------------


class _Out(io.TextIOBase):
    """What the command prints, sent to the client as it is written (`out` or `err`)."""

    def __init__(self, conn: socket.socket, color: bool, key: str = "out") -> None:
        self._conn, self._color, self._key = conn, color, key

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._color

    def write(self, text: str) -> int:
        self._conn.sendall(json.dumps({self._key: text}).encode() + b"\n")
        return len(text)


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _answer(conn: socket.socket) -> None:
    from grader.cli import main

    with conn.makefile("rb") as requests:
        line = requests.readline(MAX_REQUEST)
    request = json.loads(line)
    argv = [str(a) for a in request["argv"]]
    color = bool(request.get("color"))
    code, err = 1, ""
    if argv[:1] not in (["check"], ["grade"]):
        conn.sendall(json.dumps({"err": "the server runs `check` and `grade` only\n", "exit": 2})
                     .encode() + b"\n")
        return
    try:
        out, err_out = _Out(conn, color), _Out(conn, False, "err")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err_out):
            code = main([*argv, "--no-server"])
    except SystemExit as exc:  # argparse refusing the command line
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception:
        err = traceback.format_exc()
    conn.sendall(json.dumps({"err": err, "exit": code}).encode() + b"\n")


def serve(path: Path) -> int:
    """Answer commands on the socket at path, one at a time, until IDLE_S without one."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
    except OSError:
        return 1  # another server took the name first: it answers
    os.chmod(path, 0o600)
    listener.listen(16)
    listener.settimeout(float(os.environ.get(IDLE_ENV, IDLE_S)))
    inode = os.stat(path).st_ino
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return 0
            with conn:
                if _peer_uid(conn) != os.getuid():
                    continue
                conn.settimeout(None)
                with contextlib.suppress(OSError, ValueError):
                    _answer(conn)
            try:
                if os.stat(path).st_ino != inode:
                    return 0  # our socket was removed or replaced: another server answers now
            except OSError:
                return 0
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                path.unlink()


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
