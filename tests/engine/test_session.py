"""The trusted session: seeds, forbidden imports at run time, timing thresholds, the course."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from grader.assignment import discover, find, load_assignment
from grader.engine import grade

ROOT = Path(__file__).resolve().parents[2]


def _echo_input(result) -> str:
    echo = next(t for t in result.tests if t.name.startswith("echo"))
    return re.search(r"ValueError: (.*)", echo.message).group(1)


def test_seed_is_recorded_and_reproduces_the_inputs(probe_assignment, write_submission):
    sub = write_submission("def echo(value):\n    raise ValueError(repr(value))\n")
    first = grade(sub, probe_assignment, seed=123)
    again = grade(sub, probe_assignment, seed=123)
    other = grade(sub, probe_assignment, seed=124)
    assert first.seed == 123
    assert _echo_input(first) == _echo_input(again) != _echo_input(other)


def test_fresh_seed_per_submission(probe_assignment, write_submission):
    sub = write_submission("def echo(value):\n    raise ValueError(repr(value))\n")
    assert grade(sub, probe_assignment).seed != grade(sub, probe_assignment).seed


def test_forbidden_import_is_refused_at_run_time_too(write_submission):
    """An import the static check cannot see is still refused inside the sandbox."""
    assignment = find("03_numpy_backprop")
    sub = write_submission(
        "import builtins\nload = getattr(builtins, '__imp' + 'ort__')\n"
        "def forward(x, w1, w2):\n    t = load('tor' + 'ch')\n    return x\n")
    result = grade(sub, assignment)
    forward = next(t for t in result.tests if t.name.startswith("forward: shape"))
    assert "ImportError: this exercise computes every gradient by hand" in forward.message
    assert result.score == 0


def test_timing_threshold_fails_a_python_loop(write_submission):
    timed = load_assignment(ROOT / "tests" / "fixtures" / "assignments" / "timed")
    sub = write_submission(
        "def sum_squares(a):\n    total = 0.0\n    for v in a.tolist():\n"
        "        total += v * v\n    return total\n")
    result = grade(sub, timed)
    fast = next(t for t in result.tests if t.name == "sum_squares is vectorised")
    assert not fast.passed and fast.timing["ratio"] > fast.timing["limit"] == 8.0
    assert "as long as the reference" in fast.message
    assert result.score == 1, "the value test still earns its point"


def test_course_is_sound():
    """`grader validate --all --jobs 2`: every assignment of the course, two at a time."""
    out = subprocess.run([sys.executable, "-m", "grader.cli", "validate", "--all", "--jobs", "2"],
                         capture_output=True, text=True, timeout=1500, cwd=ROOT)
    count = len(discover())
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    assert f"{count} of {count} assignments sound" in out.stdout


def test_symlinked_course_grades_each_assignment_with_its_own_tests(tmp_path):
    """Issue 9 #4: a `current -> release` deploy; one process grades 01, then 03, through it."""
    release = tmp_path / "release"
    release.mkdir()
    for slug in ("01_tensors", "03_numpy_backprop"):
        (release / slug).symlink_to(ROOT / "assignments" / slug)
    (tmp_path / "current").symlink_to(release)
    course = discover(tmp_path / "current")
    first = grade(course["01_tensors"].solution, course["01_tensors"])
    second = grade(course["03_numpy_backprop"].solution, course["03_numpy_backprop"])
    assert first.score == first.max_score
    assert second.score == second.max_score == 10, [t.message for t in second.tests if not t.passed]
    assert {t.name for t in first.tests}.isdisjoint(t.name for t in second.tests)


def test_the_next_grading_reads_the_rewritten_tests_back(probe_assignment, monkeypatch):
    """pytest's assertion rewriting is done once per process, not once per grading."""
    from _pytest.assertion import rewrite

    grade(probe_assignment.solution, probe_assignment, mode="service", seed=1)
    rewritten = []
    real = rewrite._rewrite_test
    monkeypatch.setattr(rewrite, "_rewrite_test", lambda *a, **k: rewritten.append(a) or real(*a, **k))
    result = grade(probe_assignment.solution, probe_assignment, mode="service", seed=1)
    assert result.score == result.max_score
    assert rewritten == [], f"rewritten again: {[str(a[0]) for a in rewritten]}"
