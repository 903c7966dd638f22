"""The trusted side never imports a module from a submission's folder (issue 13, item 6).

An instructor grading a folder of downloads runs `python -m grader.cli grade numpy.py ...`
in it; Python puts the working directory first on sys.path, so a submission saved as
`numpy.py`, `pytest.py` or `grader.py` there would run in the trusted process, as root.
Each planted module here writes a marker file when imported: none may appear, and the
grading must still come out right. These run the real command in a fresh interpreter,
with the start-up hook that scripts/install.sh installs (grader/safe_path.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.assignment import find
from grader.safe_path import PTH_NAME

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

PLANTED = ("numpy", "pytest", "grader", "json", "argparse", "__future__", "threadpoolctl",
           "nbformat", "tomllib", "hashlib", "torch", "workers", "web")


def _plant(folder: Path, markers: Path) -> None:
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            f"open({str(markers / name)!r}, 'w').write('imported')\n")


def _submission_as(folder: Path, name: str, markers: Path) -> Path:
    """The 03 reference saved under a module's name, planting a marker if imported here."""
    source = find("03_numpy_backprop").solution.read_text()
    path = folder / name
    path.write_text(f"try:\n    open({str(markers / ('sub-' + name))!r}, 'w').write('x')\n"
                    "except OSError:\n    pass\n" + source)
    return path


@pytest.fixture
def planted(tmp_path):
    work, markers = tmp_path / "downloads", tmp_path / "markers"
    work.mkdir()
    markers.mkdir()
    _plant(work, markers)
    return work, markers


def _pth_installed() -> bool:
    import sysconfig

    return (Path(sysconfig.get_paths()["purelib"]) / PTH_NAME).is_file()


@pytest.mark.parametrize("how", ["python -m grader.cli", "grader"])
@pytest.mark.parametrize("name", ["numpy.py", "pytest.py", "grader.py"])
def test_grading_in_a_folder_of_planted_modules_imports_none(planted, how, name):
    assert _pth_installed(), "scripts/install.sh writes the start-up hook; run it"
    work, markers = planted
    sub = _submission_as(work, name, markers)
    command = ([sys.executable, "-m", "grader.cli"] if how.startswith("python")
               else [shutil.which("grader") or "grader"])
    done = subprocess.run(command + ["grade", sub.name, "-a", "03_numpy_backprop", "--json"],
                          cwd=work, capture_output=True, text=True, timeout=120)
    assert sorted(p.name for p in markers.iterdir()) == [], done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["score"] == 10 and result["status"] == "graded", result["messages"]


def test_a_module_only_the_working_directory_has_is_refused(tmp_path):
    """`python -m grader...` cannot even be made to import a module that lives only there."""
    (tmp_path / "only_here.py").write_text("print('ran')\n")
    code = ("import grader.safe_path as s; s.install()\n"
            "try:\n    import only_here\nexcept ImportError as e:\n    print('refused:', e)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert "ran" not in done.stdout and "refused:" in done.stdout, done.stdout + done.stderr
