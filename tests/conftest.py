"""Shared fixtures: the real sandbox on this machine and a cheap probe assignment."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.assignment import Assignment, load_assignment
from grader.sandbox.layers import Layers, probe

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def layers() -> Layers:
    """The sandbox layers this machine really has (CI installs bubblewrap and runs as root)."""
    return probe()


@pytest.fixture(scope="session")
def probe_assignment() -> Assignment:
    """A tiny assignment with tight limits, for the engine's own tests."""
    return load_assignment(FIXTURES / "assignments" / "probe")


@pytest.fixture
def write_submission(tmp_path: Path) -> Callable[..., Path]:
    """Write a submission's source to a file and return its path."""

    def write(source: str, name: str = "submission.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write
