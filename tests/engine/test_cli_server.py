"""`grader check` and `grader grade` through the warm server (grader.cli_server), issue 10."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "fixtures" / "assignments" / "probe"
# This machine's own Python lives under /root, which another user cannot enter.
SYSTEM_PYTHON = "/usr/bin/python3"
GOOD = "def answer(x):\n    return 42\n\ndef run():\n    return 'ok'\n"


@pytest.fixture
def runtime():
    """A runtime folder of the test's own; every server started in it is ended after.

    Under /tmp and open to others (as /run/user's parent is), so that the test of another
    user reaches as far as the private folder the server makes in it.
    """
    folder = Path(tempfile.mkdtemp(prefix="torchgrade-test-runtime-"))
    folder.chmod(0o755)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(folder), "TORCHGRADE_CLI_IDLE_S": "60"}
    env.pop("TORCHGRADE_CLI_SERVER", None)
    yield folder, env
    for pid in _servers(folder):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


def _servers(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"grader.cli_server" in argv and any(str(folder).encode() in a for a in argv):
            found.append(int(entry.name))
    return found


def _grader(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)


def _steady(text: str) -> str:
    return re.sub(r"\(graded, [\d.]+ s, seed \d+\)", "", text)


def test_checks_after_the_first_are_answered_by_one_warm_server(runtime, tmp_path):
    folder, env = runtime
    sub = tmp_path / "work.py"
    sub.write_text(GOOD)
    first = _grader(env, "check", str(sub), "--assignment", str(PROBE))
    servers = _servers(folder)
    assert len(servers) == 1, "the first check starts a server"
    second = _grader(env, "check", str(sub), "--assignment", str(PROBE))
    here = _grader(env, "check", str(sub), "--assignment", str(PROBE), "--no-server")
    assert _servers(folder) == servers  # the same server answered, still running
    assert first.returncode == second.returncode == here.returncode == 0
    assert _steady(first.stdout) == _steady(second.stdout) == _steady(here.stdout)
    assert "[1/1] PASS 1/1  answer(21) is 42" in second.stdout
    # grade goes the same way, its options passed on (paths made absolute for the server)
    report = tmp_path / "results.json"
    graded = _grader(env, "grade", str(sub), "--assignment", str(PROBE), "--json",
                     "--gradescope", str(report))
    graded_here = _grader(env, "grade", str(sub), "--assignment", str(PROBE), "--json", "--no-server")
    score = json.loads(graded_here.stdout)["score"]
    assert graded.returncode == 0 and json.loads(graded.stdout)["score"] == score > 0
    assert json.loads(report.read_text())["score"] == score
    assert _servers(folder) == servers
    # errors come back on stderr with the command's own exit status
    missing = _grader(env, "check", str(sub), "--assignment", "no_such_assignment")
    assert missing.returncode == 2 and "no assignment named" in missing.stderr


@pytest.mark.skipif(os.getuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root (to run a process as another user) and a system Python")
def test_the_server_answers_no_other_user(runtime, tmp_path):
    folder, env = runtime
    sub = tmp_path / "work.py"
    sub.write_text(GOOD)
    assert _grader(env, "check", str(sub), "--assignment", str(PROBE)).returncode == 0
    (sock,) = (folder / f"torchgrade-cli-{os.getuid()}").glob("*.sock")
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"
    # Opened up on purpose, so that only the server's own check of the peer stands.
    sock.parent.chmod(0o755)
    sock.chmod(0o666)
    # The server may close on this peer before the request is even written: a broken pipe
    # is the same refusal as an empty read.
    probe = ("import socket, sys\ns = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
             "try:\n    s.sendall(b'{\"argv\": [\"layers\"]}\\n')\n    print(repr(s.recv(100)))\n"
             "except (ConnectionResetError, BrokenPipeError):\n    print(\"b''\")")
    other = subprocess.run([SYSTEM_PYTHON, "-c", probe, str(sock)], capture_output=True, text=True,
                           user=65534, group=65534, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert other.stdout.strip() == "b''", other.stdout + other.stderr  # closed, never answered
    with socket.socket(socket.AF_UNIX) as mine:  # its own user is still answered
        mine.connect(str(sock))
        request = {"argv": ["check", str(sub), "--assignment", str(PROBE)]}
        mine.sendall(json.dumps(request).encode() + b"\n")
        mine.settimeout(60)
        data = b""
        while b'"exit"' not in data:
            data += mine.recv(4096)
    assert b"PASS" in data and b'"exit": 0' in data


def test_a_folder_others_can_enter_is_not_used(runtime, tmp_path):
    folder, env = runtime
    unsafe = folder / f"torchgrade-cli-{os.getuid()}"
    unsafe.mkdir(mode=0o777)
    unsafe.chmod(0o777)
    sub = tmp_path / "work.py"
    sub.write_text(GOOD)
    out = _grader(env, "check", str(sub), "--assignment", str(PROBE))
    assert out.returncode == 0 and "PASS" in out.stdout  # checked in its own process
    assert list(unsafe.iterdir()) == [] and _servers(folder) == []


def test_another_setting_gets_another_server(runtime, tmp_path):
    folder, env = runtime
    sub = tmp_path / "work.py"
    sub.write_text(GOOD)
    assert _grader(env, "check", str(sub), "--assignment", str(PROBE)).returncode == 0
    assert _grader({**env, "TORCHGRADE_WARM": "0"}, "check", str(sub), "--assignment",
                   str(PROBE)).returncode == 0
    assert len(list((folder / f"torchgrade-cli-{os.getuid()}").glob("*.sock"))) == 2
    assert len(_servers(folder)) == 2
