"""The `grader` command as students and instructors run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader.results import AFTER_DUE_DATE, HIDDEN, MISTAKES, VISIBLE, GradeResult, TestResult

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "fixtures" / "assignments" / "probe"
TIMED = ROOT / "tests" / "fixtures" / "assignments" / "timed"


def grader(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, **kw)


def test_check_shows_each_public_test_with_progress(write_submission):
    sub = write_submission("def answer(x):\n    return x + 1\n")
    out = grader("check", str(sub), "--assignment", str(PROBE))
    assert out.returncode == 1
    assert "[1/1] FAIL 0/1  answer(21) is 42" in out.stdout
    assert "answer(21) should be 42" in out.stdout
    assert "run() returns" not in out.stdout, "check must run the public tests only"


def test_grade_json_and_gradescope(write_submission, tmp_path):
    sub = write_submission("def answer(x):\n    return 2 * x\ndef run():\n    return 'ok'\n")
    gs = tmp_path / "results.json"
    out = grader("grade", str(sub), "-a", str(PROBE), "--json", "--gradescope", str(gs),
                 "--seed", "11")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["score"], result["max_score"], result["seed"]) == (2.0, 3.0, 11)
    gradescope = json.loads(gs.read_text())
    assert gradescope["score"] == 2.0 and gradescope["max_score"] == 3.0
    assert {t["name"] for t in gradescope["tests"]} == {
        "answer(21) is 42", "run() returns 'ok'", "echo returns its argument"}
    assert all(set(t) >= {"name", "score", "max_score", "output", "visibility"}
               for t in gradescope["tests"])


def test_validate_reports_each_check():
    out = grader("validate", str(PROBE), str(TIMED))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   timing threshold holds with margin: sum_squares is vectorised" in out.stdout
    assert "2 of 2 assignments sound" in out.stdout


def test_validate_fails_a_broken_assignment(tmp_path):
    import shutil

    broken = tmp_path / "probe"
    shutil.copytree(PROBE, broken)
    (broken / "solution.py").write_text("def answer(x):\n    return x\n")
    out = grader("validate", str(broken))
    assert out.returncode == 1
    assert "FAIL reference scores full marks" in out.stdout


def test_release_never_ships_the_solution_or_hidden_tests(tmp_path):
    out = grader("release", "03_numpy_backprop", str(tmp_path))
    assert out.returncode == 0, out.stderr
    shipped = {p.relative_to(tmp_path / "03_numpy_backprop").as_posix()
               for p in (tmp_path / "03_numpy_backprop").rglob("*") if p.is_file()}
    assert {"starter.py", "starter.ipynb", "assignment.toml", "tests/conftest.py",
            "tests/public/test_public.py"} <= shipped
    assert not any(p.startswith(("tests/hidden/", "examples/")) for p in shipped)
    solution = (ROOT / "assignments" / "03_numpy_backprop" / "solution.py").read_text()
    stub = (tmp_path / "03_numpy_backprop" / "solution.py").read_text()
    assert "np.maximum" not in stub and stub != solution


def test_released_assignment_checks_offline(tmp_path):
    """A student's `grader check` against the released folder runs the public tests."""
    grader("release", "03_numpy_backprop", str(tmp_path))
    released = tmp_path / "03_numpy_backprop"
    work = released / "my_work.py"
    work.write_text((ROOT / "assignments" / "03_numpy_backprop" / "solution.py").read_text())
    out = grader("check", str(work))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3/3" in out.stdout


def test_unknown_assignment_is_a_clear_error(write_submission):
    out = grader("grade", str(write_submission("x = 1\n")), "-a", "no_such")
    assert out.returncode == 2
    assert "no assignment named 'no_such'" in out.stderr


@pytest.mark.parametrize("visibility, past_due, shown", [
    (VISIBLE, False, True), (HIDDEN, True, False), (AFTER_DUE_DATE, False, False),
    (AFTER_DUE_DATE, True, True)])
def test_visibility_rules_for_students(visibility, past_due, shown):
    result = GradeResult("a", "graded", 1, 2, tests=[
        TestResult("t", 1, 1, True, visibility=visibility, message="secret input 42"),
        TestResult("u", 0, 1, False, visibility=visibility, message="yours is 7 at x=[3, 4]",
                   kind="values", hint=MISTAKES["values"])],
        log="printed", executed_notebook="{}")
    view = result.for_student(past_due=past_due)
    # Issue 9 #10: a withheld test still shows its name, points and the kind of mistake.
    assert [t["name"] for t in view["tests"]] == ["t", "u"]
    assert [t["points"] for t in view["tests"]] == [1, 0]
    assert ("secret input 42" in str(view)) is shown and ("x=[3, 4]" in str(view)) is shown
    assert view["tests"][1]["message"] == ("yours is 7 at x=[3, 4]" if shown else MISTAKES["values"])
    assert view["withheld_tests"] == (0 if shown else 2)
    assert "log" not in view and "executed_notebook" not in view
    assert GradeResult.from_dict(result.to_dict()) == result


def test_validate_catches_an_example_that_scores_otherwise(tmp_path):
    import shutil

    copy = tmp_path / "03_numpy_backprop"
    shutil.copytree(ROOT / "assignments" / "03_numpy_backprop", copy)
    expected = copy / "examples" / "expected.toml"
    expected.write_text(expected.read_text().replace("score = 6\n", "score = 5\n", 1))
    from grader.assignment import load_assignment
    from grader.validate import load_examples, validate

    assignment = load_assignment(copy)
    assert [e.name for e in load_examples(assignment)][:2] == ["missing_factor_two",
                                                               "no_relu_mask"]
    report = validate(assignment)
    failing = [c for c in report.checks if not c.ok]
    assert [c.name for c in failing] == [
        "example missing_factor_two gets its expected score and feedback"]
    assert "got 6.0 (graded), expected 5.0" in failing[0].detail


def test_example_replacing_absent_text_is_an_instructor_error(tmp_path):
    import shutil

    from grader.assignment import load_assignment
    from grader.errors import InvalidAssignment
    from grader.validate import load_examples

    copy = tmp_path / "probe"
    shutil.copytree(PROBE, copy)
    (copy / "examples").mkdir()
    (copy / "examples" / "expected.toml").write_text(
        '[[example]]\nname = "x"\nscore = 0\nreplace = [["no such text", "y"]]\n')
    assignment = load_assignment(copy)
    with pytest.raises(InvalidAssignment, match="does not contain"):
        load_examples(assignment)[0].materialize(assignment, tmp_path)
