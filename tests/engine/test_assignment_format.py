"""The assignment format: a clear error for each malformed manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.assignment import discover, find, load_assignment
from grader.errors import InvalidAssignment


@pytest.fixture
def folder(tmp_path: Path, probe_assignment) -> Path:
    target = tmp_path / "probe"
    shutil.copytree(probe_assignment.path, target)
    return target


@pytest.mark.parametrize("manifest, message", [
    ("title = 'x'\n", "missing required key 'points'"),
    ("title = 'x'\npoints = -1\n", "points must be a positive number"),
    ("title = 'x'\npoints = 1\ndevice = 'tpu'\n", "device must be one of"),
    ("title = 'x'\npoints = 1\n[limits]\nmemory_gb = 1\n", "unknown limit(s) memory_gb"),
    ("title = 'x'\npoints = 1\n[limits]\nmemory_mb = 0\n", "must be a positive number"),
    ("title = 'x'\npoints = 1\ndue = 'next friday'\n", "not an ISO date-time"),
    ("title = 'x'\npoints = 1\n[timing.fast]\nrepeat = 3\n", "needs a numeric max_ratio"),
    ("title = 'x'\npoints = 1\n[forbidden.modules]\ntorch = 3\n", "must be the message"),
    ("title = 'x\npoints = 1\n", "not valid TOML"),
])
def test_malformed_manifest_says_what_to_fix(folder, manifest, message):
    (folder / "assignment.toml").write_text(manifest)
    with pytest.raises(InvalidAssignment, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_assignment(folder)


def test_missing_files(folder):
    (folder / "solution.py").unlink()
    with pytest.raises(InvalidAssignment, match="missing solution.py"):
        load_assignment(folder)


def test_course_assignments_load_in_order():
    found = discover()
    assert "03_numpy_backprop" in found
    assert list(found) == sorted(found)
    assert find("03_numpy_backprop").forbidden.modules["torch"].startswith("this exercise")
    with pytest.raises(InvalidAssignment, match="no assignment named 'nope'"):
        find("nope")


def test_suite_version_changes_with_the_tests(folder):
    before = load_assignment(folder).suite_version()
    with (folder / "tests" / "hidden" / "test_hidden.py").open("a") as f:
        f.write("\n# changed\n")
    assert load_assignment(folder).suite_version() != before
