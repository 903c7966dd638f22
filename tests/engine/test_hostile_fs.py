"""Hostile file-system routes: a forbidden module is not there, and no job is on the host.

A forbidden module (03 forbids torch) is absent from the sandbox's file system: its package,
extension modules, bundled libraries and distribution are mounted over with stubs that
raise the manifest's reason, so no route reaches it (importlib, pkgutil, a `compile()`d
import that fools the guest's own blocker, ctypes, reading its files, sys.path tricks).
The graded cases are the reference with `backward` made to need torch by one route: the
static checks reject some (score 0); the rest reach the sandbox and lose exactly the
tests of backward and of train (which calls it), 6 of 10 points. The sandbox layer is
also tested alone, with the guest's import blocker removed as a student can remove it.

A job's files never sit in a host folder while bubblewrap runs (bubblewrap copies the
submission from a sealed memfd into the job's own tmpfs), the job runs as a host uid of
its own, and the folder a job without namespaces needs is private to the grader.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import time
import uuid
from pathlib import Path

import pytest

from grader.assignment import find
from grader.errors import InvalidSubmission
from grader.proxy import Connection, StudentProxy
from grader.results import GRADED, REJECTED
from grader.sandbox import process
from grader.sandbox.cgroups import job_prefix
from grader.sandbox.layers import probe
from grader.sandbox.leftovers import leftovers_after
from grader.sandbox.zygote import ForkedJob

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

SLUG = "03_numpy_backprop"
DEADLINE_S = 90
# What honest work earns without backward: forward (1 + 2 points) and loss (1 point).
WITHOUT_BACKWARD = 4
BACKWARD = "def backward(x, y, w1, w2):\n"
NEEDS_TORCH = BACKWARD + "    _reach()\n"

# (id, the code of `_reach()`, which raises unless it reached torch; statically rejected?)
ROUTES = [
    ("importlib", """
import importlib
def _reach():
    return importlib.import_module("torch").zeros(1)
""", True),
    ("dunder_import_by_getattr", """
import builtins
def _reach():
    return getattr(builtins, "__imp" + "ort__")("torch").zeros(1)
""", False),
    ("compile_spoofed_filename", """
def _reach():
    ns = {}
    exec(compile("import torch\\nr = torch.zeros(1)", "/usr/lib/python3/x.py", "exec"), ns)
    return ns["r"]
""", False),  # the static check blocks `_reach`, and `backward` that calls it (issue 9 #8)
    # The guest's blocker takes a frame from a file under /usr/lib/python3 for a library's.
    ("compile_spoofed_by_getattr", """
import builtins
def _reach():
    ns = {}
    code = getattr(builtins, "comp" + "ile")("import torch\\nr = torch.zeros(1)",
                                             "/usr/lib/python3/x.py", "exec")
    getattr(builtins, "ex" + "ec")(code, ns)
    return ns["r"]
""", False),
    ("ctypes_libtorch", """
import ctypes, os
import numpy
def _reach():
    site = os.path.dirname(os.path.dirname(numpy.__file__))
    return ctypes.CDLL(site + "/torch/lib/libtorch.so")
""", True),  # the static check refuses the module where torch is forbidden
    ("read_its_files", """
import os
import numpy
def _reach():
    site = os.path.dirname(os.path.dirname(numpy.__file__))
    with open(site + "/torch/version.py") as f:
        return f.read()
""", False),
    # So does a helper written where its path holds "/lib/python3".
    ("sys_path_helper_as_library", """
import os, sys
def _reach():
    os.makedirs("/tmp/lib/python3", exist_ok=True)
    with open("/tmp/lib/python3/tg_helper.py", "w") as f:
        f.write("import torch\\nzeros = torch.zeros\\n")
    sys.path.insert(0, "/tmp/lib/python3")
    import tg_helper
    return tg_helper.zeros(1)
""", False),
    ("pkgutil_resolve_name", """
import pkgutil
def _reach():
    return pkgutil.resolve_name("torch").zeros(1)
""", True),  # the static check refuses the module where torch is forbidden
]


# What the student reads in each failing test: the manifest's reason (from the stub, or
# from the guest's blocker where that saw the import first), or that the file is not there.
WHY = dict.fromkeys([r[0] for r in ROUTES], find(SLUG).forbidden.modules["torch"])
WHY.update(ctypes_libtorch="No such file or directory", read_its_files="No such file or directory",
           compile_spoofed_filename="uses `_reach`, which breaks a rule: line 4: `exec` is not "
                                    "allowed here")  # train: "uses `backward`, which uses `_reach`..."


def _needing_torch(route_code: str, folder: Path) -> Path:
    source = find(SLUG).solution.read_text()
    assert source.count(BACKWARD) == 1, "the reference's backward is no longer where it was"
    path = folder / "submission.py"
    path.write_text(route_code + "\n\n" + source.replace(BACKWARD, NEEDS_TORCH))
    return path


def _nothing_left() -> None:
    found = leftovers_after()
    assert not found, f"left behind: {found}"


def test_the_reference_still_scores_full_marks_without_torch(grade_hostile):
    """numpy and the guest work in a sandbox where torch is not there."""
    result = grade_hostile(find(SLUG).solution, find(SLUG), deadline_s=DEADLINE_S)
    assert result.score == 10, [(t.name, t.message[:200]) for t in result.tests if not t.passed]


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
def test_reaching_torch_by_any_route_costs_backward(route, tmp_path, grade_hostile):
    _, code, rejected = route
    result = grade_hostile(_needing_torch(code, tmp_path), find(SLUG), deadline_s=DEADLINE_S)
    if rejected:
        assert (result.status, result.score) == (REJECTED, 0), result.messages
        return
    failed = [t for t in result.tests if not t.passed]
    assert result.status == GRADED, result.messages
    assert result.score == WITHOUT_BACKWARD, [(t.name, t.message[:200]) for t in result.tests]
    # the tests of backward and of train, which calls it (named by their docstrings)
    assert sorted(t.name.split()[0].rstrip(":") for t in failed) == ["backward", "grad_w1", "grad_w2",
                                                                      "train", "train"]
    assert all(WHY[route[0]] in t.message for t in failed), [t.message[:300] for t in failed]


# -- the sandbox layer alone: every route, with the guest's import blocker gone -------------

REASON = find(SLUG).forbidden.modules["torch"]
ROUTES_ALONE = """
import builtins, ctypes, glob, os, pkgutil, sys, importlib, importlib.util, importlib.metadata
import numpy

SITE = os.path.dirname(os.path.dirname(numpy.__file__))

def _outcome(route):
    try:
        got = route()
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return got if isinstance(got, (str, list)) else "reached torch"

def _import_statement():
    import torch
    return torch.zeros(1)

def _spoofed_compile():
    ns = {}
    exec(compile("import torch\\nr = torch.zeros(1)", "/usr/lib/python3/x.py", "exec"), ns)
    return ns["r"]

def _spec_from_file():
    spec = importlib.util.spec_from_file_location("torch", SITE + "/torch/__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.zeros(1)

def _other_python_folders():
    sys.path[:0] = glob.glob("/usr/lib/python3*/*-packages") + glob.glob("/usr/local/lib/python3*/*-packages")
    return sorted(d for d in sys.path if os.path.isdir(os.path.join(d, "torch", "lib")))

def routes():
    # A student can take the guest's blocker off sys.meta_path: the file system must hold alone.
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ForbiddenImport"]
    dist = [e for e in os.listdir(SITE) if e.startswith("torch-") and e.endswith(".dist-info")]
    return {
        "import_statement": _outcome(_import_statement),
        "importlib": _outcome(lambda: importlib.import_module("torch").zeros(1)),
        "importlib_submodule": _outcome(lambda: importlib.import_module("torch.autograd")),
        "dunder_import": _outcome(lambda: getattr(builtins, "__import__")("torch").zeros(1)),
        "spoofed_compile": _outcome(_spoofed_compile),
        "spec_from_file_location": _outcome(_spec_from_file),
        "pkgutil_resolve_name": _outcome(lambda: pkgutil.resolve_name("torch.nn")),
        "installed_with_torch": _outcome(lambda: importlib.import_module("functorch")),
        "ctypes_libtorch": _outcome(lambda: ctypes.CDLL(SITE + "/torch/lib/libtorch.so")),
        "read_its_files": _outcome(lambda: open(SITE + "/torch/version.py").read()),
        "package_folder": _outcome(lambda: sorted(os.listdir(SITE + "/torch"))),
        "distribution": _outcome(lambda: [os.listdir(os.path.join(SITE, d)) for d in dist]),
        "metadata": _outcome(lambda: str(importlib.metadata.version("torch"))),
        "other_python_folders": _outcome(_other_python_folders),
        "numpy": _outcome(lambda: str(float(numpy.ones(3).sum()))),
    }

def torch_here():
    import torch
    return str(float(torch.ones(2).sum()))
"""


@pytest.fixture(scope="module")
def site() -> str:
    import numpy

    return os.path.dirname(os.path.dirname(numpy.__file__))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, str]:
    """Every route tried once, in one sandbox of an assignment that forbids torch."""
    path = tmp_path_factory.mktemp("routes") / "routes.py"
    path.write_text(ROUTES_ALONE)
    assignment = find(SLUG)
    conn = Connection(path, "module", assignment.limits, probe(),
                      forbidden_modules=dict(assignment.forbidden.modules))
    try:
        return StudentProxy(conn).routes()
    finally:
        conn.close()
        _nothing_left()


def _stub(name: str = "torch") -> str:
    if name == "torch":
        return f"ModuleNotFoundError: torch is not available in this sandbox: {REASON}"
    return f"ModuleNotFoundError: {name} (installed with torch) is not available in this sandbox: {REASON}"


EXPECTED = {
    "import_statement": _stub(), "importlib": _stub(), "importlib_submodule": _stub(),
    "dunder_import": _stub(), "spoofed_compile": _stub(), "spec_from_file_location": _stub(),
    "pkgutil_resolve_name": _stub(), "installed_with_torch": _stub("functorch"),
    "package_folder": ["__init__.py"], "distribution": [[]], "other_python_folders": [],
    "numpy": "3.0",
}


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_the_file_system_alone_stops_the_route(outcomes, route):
    assert outcomes[route] == EXPECTED[route]


def test_its_libraries_and_files_are_not_there(outcomes, site):
    for route, name in (("ctypes_libtorch", "torch/lib/libtorch.so"), ("read_its_files", "torch/version.py")):
        assert outcomes[route].startswith("OSError: ") or outcomes[route].startswith("FileNotFoundError: ")
        assert f"{site}/{name}" in outcomes[route] and "No such file or directory" in outcomes[route]
    assert outcomes["metadata"] == "None", "its dist-info must be empty: no version to read"


def test_a_sandbox_that_does_not_forbid_torch_still_has_it(tmp_path, outcomes):
    path = tmp_path / "routes.py"
    path.write_text(ROUTES_ALONE)
    assignment = find("03_numpy_backprop")
    conn = Connection(path, "module", assignment.limits, probe())
    try:
        assert StudentProxy(conn).torch_here() == "2.0"
    finally:
        conn.close()
    _nothing_left()


def test_the_mount_list_is_computed_once_per_forbidden_set():
    from grader.sandbox.bwrap import hidden_for, hidden_paths

    forbidden = dict(find(SLUG).forbidden.modules)
    roots = ("/usr", *process._python_dirs())
    first = hidden_for(forbidden, roots)
    started = time.perf_counter()
    again = hidden_for(forbidden, roots)
    assert again is first and time.perf_counter() - started < 0.005
    assert hidden_paths.cache_info().hits >= 1
    assert hidden_for({}, roots) == ()


def _touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_scan_finds_every_way_a_name_is_installed(tmp_path):
    """Layouts torch does not have here: modules, extensions, namespaces, .pth folders, links."""
    from grader.sandbox.bwrap import hidden_paths

    site = tmp_path / "lib/python3.11/site-packages"
    other = tmp_path / "lib/python3/dist-packages"
    _touch(site / "tgpkg/__init__.py")
    _touch(site / "tgpkg.libs/libtgpkg.so")
    _touch(other / "tgpkg/portion.py")  # a namespace portion in another folder
    record = ["tgpkg/__init__.py,,", "tgpkg_extra/mod.py,,", "tgpkg.libs/libtgpkg.so,,",
              "nsshared/tgpkg_part/x.py,,", "../../../bin/tgpkg-cli,,", "tgpkg-1.0.dist-info/RECORD,,"]
    _touch(site / "tgpkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    _touch(site / "tgpkg_extra/mod.py")
    _touch(site / "nsshared/tgpkg_part/x.py")
    _touch(site / "nsshared/someone_else/y.py")  # shared with another distribution: kept
    _touch(tmp_path / "bin/tgpkg-cli")
    _touch(site / "tgmod.py")
    _touch(site / "tgmod.cpython-311-x86_64-linux-gnu.so")
    _touch(site / "tgmod-0.1.egg-info", "Metadata-Version: 1.0\n")
    _touch(site / "vendor.pth", "import sys\n../../../vendor\n")
    _touch(tmp_path / "vendor/tgvendored/__init__.py")
    _touch(tmp_path / "elsewhere/tglinked/__init__.py")
    (site / "tglinked").symlink_to(tmp_path / "elsewhere/tglinked")
    _touch(site / "tgpkgfoo/__init__.py")  # a different name that starts the same: kept
    forbidden = tuple((n, "not here") for n in ("tgpkg", "tgmod", "tgvendored", "tglinked", "json"))
    hidden = {os.path.relpath(h.path, tmp_path): (h.is_dir, h.stub) for h in
              hidden_paths(forbidden, (str(tmp_path),))}
    sp, dp = "lib/python3.11/site-packages", "lib/python3/dist-packages"
    stub = "raise ModuleNotFoundError('{} is not available in this sandbox: not here', name='{}')\n"
    assert hidden == {
        f"{sp}/tgpkg": (True, stub.format("tgpkg", "tgpkg")),
        f"{dp}/tgpkg": (True, stub.format("tgpkg", "tgpkg")),
        f"{sp}/tgpkg.libs": (True, None),
        f"{sp}/tgpkg-1.0.dist-info": (True, None),
        f"{sp}/tgpkg_extra": (True, "raise ModuleNotFoundError('tgpkg_extra (installed with tgpkg) is "
                                    "not available in this sandbox: not here', name='tgpkg_extra')\n"),
        "bin/tgpkg-cli": (False, None),
        f"{sp}/tgmod.py": (False, stub.format("tgmod", "tgmod")),
        f"{sp}/tgmod.cpython-311-x86_64-linux-gnu.so": (False, None),
        f"{sp}/tgmod-0.1.egg-info": (False, None),
        "vendor/tgvendored": (True, stub.format("tgvendored", "tgvendored")),
        "elsewhere/tglinked": (True, stub.format("tglinked", "tglinked")),
    }, "the standard library (json) stays, and so do folders shared with others"


# -- item 11: no job's files on the host, and a jobs root that is ours ---------------------

SECRET_JOB = """
# {marker}
def ping():
    return "pong"
"""


def _read_as_nobody(candidates: list[str], marker: bytes, timeout_s: float = 20) -> list[str]:
    """Paths a host process running as uid 65534 could read the marker from (fork + setuid)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no imports, no threads; SIGALRM ends it if it ever hangs
        try:
            os.close(r)
            signal.alarm(int(timeout_s))
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            hits = []
            for path in _expand(candidates):
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                    try:
                        if marker in os.read(fd, 1 << 20):
                            hits.append(path)
                    finally:
                        os.close(fd)
                except OSError:
                    pass
            os.write(w, json.dumps(hits).encode())
        finally:
            os._exit(0)
    os.close(w)
    end = time.monotonic() + timeout_s + 5
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.05)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    assert data, "the reader as uid 65534 did not finish"
    return json.loads(data)


def _expand(candidates: list[str]) -> list[str]:
    """The candidates, and for a folder the files in it and one level below."""
    out = []
    for path in candidates:
        out.append(path)
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        for entry in entries:
            out.append(os.path.join(path, entry))
            try:
                out += [os.path.join(path, entry, e) for e in os.listdir(os.path.join(path, entry))]
            except OSError:
                pass
    return out


def _cmdlines() -> dict[str, list[str]]:
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            pass
    return found


def _every_way_in(marker_job_dirs: list[str]) -> list[str]:
    """Where a host process could look for a running job's files."""
    candidates = [str(process.JOBS_ROOT), *marker_job_dirs]
    for pid, argv in _cmdlines().items():
        candidates += [a for a in argv if a.startswith("/") and not a.startswith(("/proc", "/sys", "/dev"))]
        for name in ("submission.py", "submission.ipynb"):
            candidates += [f"/proc/{pid}/root/job/{name}", f"/proc/{pid}/cwd/{name}"]
        candidates.append(f"/proc/{pid}/fd")
    return list(dict.fromkeys(candidates))


@pytest.fixture
def running_job(tmp_path):
    """A loaded job holding a unique marker, alive until the test ends."""
    marker = f"torchgrade-secret-{uuid.uuid4().hex}"
    path = tmp_path / "secret.py"
    path.write_text(SECRET_JOB.format(marker=marker))
    conn = Connection(path, "module", find(SLUG).limits, probe())
    assert StudentProxy(conn).ping() == "pong"
    try:
        yield conn, marker, path
    finally:
        conn.close()
        _nothing_left()


def test_a_host_process_running_as_nobody_reads_no_job(running_job):
    conn, marker, _ = running_job
    hits = _read_as_nobody(_every_way_in([]), marker.encode())
    assert hits == [], f"a host process running as uid 65534 read the submission at {hits}"
    assert conn.sandbox.alive


def test_no_host_path_of_a_job_is_on_any_command_line(running_job):
    conn, _, path = running_job
    ours = [f"{process.JOBS_ROOT}/{job_prefix()}", str(path), str(path.parent)]
    seen = [(pid, a) for pid, argv in _cmdlines().items() for a in argv
            if any(word in a for word in ours)]
    assert seen == []
    argv = " ".join(_cmdlines()[str(conn.sandbox.proc.pid)])
    if isinstance(conn.sandbox.proc, ForkedJob):
        # Forked warm: the zygote's command line, the same for every job, and no path of one.
        assert "grader.guest.zygote" in argv and "torchgrade-jobs" not in argv
    else:
        assert "torchgrade-jobs" not in argv and "--ro-bind-data" in argv


def test_the_job_runs_as_a_host_uid_of_its_own(tmp_path):
    path = tmp_path / "uid.py"
    path.write_text("import os\ndef ids():\n    return [os.getuid(), os.getgid(), os.getgroups()]\n")
    seen = []
    for _ in range(2):
        conn = Connection(path, "module", find(SLUG).limits, probe())
        try:
            seen.append(StudentProxy(conn).ids())
        finally:
            conn.close()
    for uid, gid, groups in seen:
        assert uid in process.JOB_UIDS and gid == uid and groups == []
    assert seen[0][0] != seen[1][0], "two jobs shared a uid"
    _nothing_left()


def _private(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700


def test_the_jobs_root_refuses_a_root_of_another_user(tmp_path, monkeypatch):
    premade = tmp_path / "jobs"
    premade.mkdir(mode=0o700)
    os.chown(premade, 65534, 65534)
    monkeypatch.setattr(process, "JOBS_ROOT", premade)
    assert process.jobs_root(create=False) is None
    root = process.jobs_root()
    try:
        assert root != premade and _private(root)
        assert process.jobs_root(create=False) == root, "create=False names the root in use"
    finally:
        root.rmdir()


def test_the_jobs_root_refuses_a_link(tmp_path, monkeypatch):
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "jobs"
    link.symlink_to(target)
    monkeypatch.setattr(process, "JOBS_ROOT", link)
    root = process.jobs_root()
    try:
        assert root not in (link, target) and _private(root) and os.listdir(target) == []
    finally:
        root.rmdir()


def test_the_jobs_root_refuses_one_others_could_write_and_tightens_our_own(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setattr(process, "JOBS_ROOT", shared)
    root = process.jobs_root()
    assert root != shared and _private(root)
    root.rmdir()
    old = tmp_path / "old"  # a root an earlier version made: ours, 0711
    old.mkdir()
    old.chmod(0o711)
    monkeypatch.setattr(process, "JOBS_ROOT", old)
    assert process.jobs_root() == old and _private(old)
    missing = tmp_path / "missing"
    monkeypatch.setattr(process, "JOBS_ROOT", missing)
    assert process.jobs_root(create=False) is None and not missing.exists()


def test_a_job_without_namespaces_gets_a_private_folder(tmp_path, monkeypatch):
    """`grader check` on a laptop: the one place a host folder is still made."""
    monkeypatch.setattr(process, "JOBS_ROOT", tmp_path / "jobs")
    path = tmp_path / "laptop.py"
    path.write_text("import os\ndef where():\n    return os.path.dirname(os.path.abspath(__file__))\n")
    weak = dataclasses.replace(probe(), namespaces=False)
    conn = Connection(path, "module", find(SLUG).limits, weak)
    try:
        where = StudentProxy(conn).where()
        job = conn.sandbox.job_dir
        assert where == str(job) and job.parent == tmp_path / "jobs"
        assert job.name.startswith(job_prefix()) and _private(job) and _private(job.parent)
        assert stat.S_IMODE(os.lstat(job / "submission.py").st_mode) == 0o600
    finally:
        conn.close()
    assert not job.exists()
    _nothing_left()


def test_the_submission_is_read_once_without_following_a_link(tmp_path):
    assignment = find(SLUG)
    target = tmp_path / "solution.py"
    target.write_text("def first_version():\n    return 1\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    with pytest.raises(InvalidSubmission, match="link"):
        process.Sandbox(link, "module", limits=assignment.limits, layers=probe())
    sandbox = process.Sandbox(target, "module", limits=assignment.limits, layers=probe())
    target.write_text("def swapped_version():\n    return 2\n")  # after the grader read it
    with sandbox:
        assert sandbox.report.get("names") == ["first_version"], sandbox.report
    conn = Connection(b"def which():\n    return 'bytes'\n", "module", assignment.limits, probe())
    try:
        assert StudentProxy(conn).which() == "bytes"
    finally:
        conn.close()
    _nothing_left()
