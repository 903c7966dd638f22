"""Engine test helpers: grade a hostile submission and check what it left behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.engine import grade
from grader.results import GradeResult
from grader.sandbox.leftovers import leftovers, leftovers_after


def assert_nothing_left(before: frozenset[str] = frozenset()) -> None:
    """No job cgroup, job folder or child process of this process is left (after a grace),
    beyond what was there `before`."""
    found = leftovers_after(ignore=before)
    assert not found, f"the grading left these behind: {found}"


@pytest.fixture
def grade_hostile() -> Callable[..., GradeResult]:
    """Grade in service mode within a deadline, then assert nothing was left behind.

    `grade_hostile(path, assignment, deadline_s=..., **grade_kwargs)` returns the result;
    the caller asserts the exact score.
    """

    def run(path: Path, assignment, *, deadline_s: float, seed: int = 7, **kw) -> GradeResult:
        before = frozenset(leftovers())  # a server another test's fixture started, say
        started = time.monotonic()
        result = grade(path, assignment, mode="service", seed=seed, **kw)
        took = time.monotonic() - started
        assert took < deadline_s, f"the grader answered after {took:.1f} s (deadline {deadline_s} s)"
        assert_nothing_left(before)
        return result

    return run


@pytest.fixture(scope="session")
def require_full_sandbox() -> None:
    """The hostile tests need every sandbox layer (CI installs bubblewrap and runs as root)."""
    from grader.sandbox.layers import probe

    missing = probe().missing()
    assert not missing, f"these tests need every sandbox layer; missing {missing}"


@pytest.fixture
def nothing_left() -> Callable[[], None]:
    """`nothing_left()` asserts no job cgroup, folder or child process is left."""
    return assert_nothing_left
