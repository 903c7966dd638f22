"""What a student sees of a failing hidden test (issue 11 #9): never its path, file name,
source lines, the trusted side's paths and tracebacks, nor the reference values pytest's
introspection prints; the author's own message and the student's own error, always.

Every test here grades a real submission through the real engine and sandbox. The hidden
tests are marked after_due_date, and the student's view is taken past the due date: the
view that shows the most (each test's full message). Everything a student can be shown is
serialised to one text and searched: both `for_student` views, Gradescope's results.json,
and the reason a grading failed (an InvalidAssignment's text, which web shows).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

import grader
from grader.assignment import load_assignment
from grader.cli import run_check
from grader.engine import grade
from grader.errors import InvalidAssignment
from grader.results import MISTAKES, GradeResult

pytestmark = pytest.mark.usefixtures("require_full_sandbox")

HIDDEN_FILE = "test_secret_suite.py"
# 3.0 * SECRET_FACTOR = 8.154845485: the reference value no message of the author's names.
SECRETS = ("2.71828", "8.15484", "8.154845")

HIDDEN_TESTS = '''
import numpy as np
import pytest

pytestmark = pytest.mark.visibility("after_due_date")

SECRET_FACTOR = 2.718281828


def _secret_want(x):
    return x * SECRET_FACTOR


def _lookup_in_reference_table(key):
    table = {"alpha": _secret_want(1.0)}
    return table[f"value-{_secret_want(3.0):.6f}-{key}"]


@pytest.fixture
def reference_table_fixture():
    raise RuntimeError(f"reference table {__file__} is broken near {_secret_want(3.0):.6f}")


def test_bare_assert(student):
    """scale, a bare assert"""
    got = student.scale(3.0)
    secret_want = _secret_want(3.0)
    assert got == secret_want


def test_assert_with_message(student):
    """scale, an assert with a message"""
    got = student.scale(3.0)
    secret_want = _secret_want(3.0)
    assert got == secret_want, "scale(x) should multiply x by e"


def test_pytest_fail(student):
    """scale, pytest.fail"""
    got = student.scale(2.0)
    if got != _secret_want(2.0):
        pytest.fail(f"author-fail-message: scale(2.0) gave {got}")


def test_keyerror_in_helper(student):
    """a helper's KeyError"""
    _lookup_in_reference_table(student.name())


def test_library_assertion(student):
    """numpy.testing"""
    np.testing.assert_allclose(np.array([student.scale(3.0)]), np.array([_secret_want(3.0)]))


def test_student_error(student):
    """the student's own error"""
    student.boom(1.0)


def test_error_in_a_bound_builtin(student):
    """a builtin bound to the student's name"""
    student.builtin_sqrt(-1.0)


def test_fixture_error(student, reference_table_fixture):
    """a fixture that raises"""


def test_unknown_fixture(student, no_such_secret_fixture):
    """a fixture that does not exist"""


def test_skip():
    """a skip"""
    pytest.skip("needs-a-gpu-here")


@pytest.mark.parametrize("x, secret_param", [(3.0, 8.154845)])
def test_parametrized(student, x, secret_param):
    assert student.scale(x) == pytest.approx(secret_param)
'''

PUBLIC_TESTS = '''
def test_public_bare_assert(student):
    """public scale"""
    assert student.scale(1.0) == 2.0
'''

SUBMISSION = '''
import math


def scale(x):
    return x  # wrong: the reference multiplies by e


def name():
    return "student-key"


def boom(x):
    raise ValueError("student-own-problem")


builtin_sqrt = math.sqrt
'''

# Words of the hidden tests' source that only a source line, a traceback or pytest's
# introspection would show.
SOURCE_WORDS = ("secret_want", "_lookup_in_reference_table", "reference_table_fixture",
                "no_such_secret_fixture", "SECRET_FACTOR", "table[", "got ==", "assert_allclose",
                "secret_param", "Traceback", "_pytest", "pluggy", "site-packages", "conftest")


def _course(root: Path, hidden: dict[str, str], public: str = PUBLIC_TESTS) -> Path:
    (root / "tests" / "hidden").mkdir(parents=True)
    (root / "tests" / "public").mkdir(parents=True)
    (root / "assignment.toml").write_text(
        'title = "privacy"\npoints = 12\n[limits]\ncall_timeout_s = 10\ntotal_timeout_s = 60\n')
    (root / "solution.py").write_text("import math\n\ndef scale(x):\n    return x * math.e\n")
    (root / "starter.py").write_text("def scale(x):\n    raise NotImplementedError\n")
    for name, text in hidden.items():
        (root / "tests" / "hidden" / name).write_text(text)
    (root / "tests" / "public" / "test_public.py").write_text(public)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[GradeResult, Path]:
    """The submission graded once against the hidden tests above; (result, course folder)."""
    root = _course(tmp_path_factory.mktemp("privacy") / "privacy", {HIDDEN_FILE: HIDDEN_TESTS})
    submission = root.parent / "submission.py"
    submission.write_text(SUBMISSION)
    return grade(submission, load_assignment(root), mode="service", seed=11), root


def student_sees(result: GradeResult, name: str | None = None) -> str:
    """Everything a student can be shown of the result (or of one test), as one text."""
    views = [result.for_student(past_due=True), result.for_student(past_due=False)]
    gradescope = result.to_gradescope()
    if name is None:
        return json.dumps([views, gradescope])
    tests = [t for view in views for t in view["tests"] if t["name"] == name]
    tests += [t for t in gradescope["tests"] if t["name"] == name]
    assert tests, f"no test named {name!r} in {[t.name for t in result.tests]}"
    return json.dumps(tests)


def trusted_paths(root: Path) -> list[str]:
    """Absolute paths of the trusted side that must never reach a student."""
    return [str(root), str(root.resolve()), str(Path(grader.__file__).parent), sys.prefix, "/tmp/"]


def assert_private(text: str, root: Path) -> None:
    """No trusted path, hidden file name, source line or unmessaged reference value."""
    for path in trusted_paths(root):
        assert path not in text, f"{path} shown to the student: {text}"
    # Any absolute path but the sandbox's own /job/ (the student's file, in their traceback).
    paths = [p for p in re.findall(r"(?<![\w.:/])/[\w.-]+/[\w./-]*", text) if not p.startswith("/job/")]
    assert not paths, f"absolute paths shown to the student: {paths} in {text}"
    for word in (HIDDEN_FILE, HIDDEN_FILE.removesuffix(".py"), "tests/hidden", *SOURCE_WORDS):
        assert word not in text, f"{word!r} shown to the student: {text}"
    for value in SECRETS:
        assert value not in text, f"reference value {value} shown to the student: {text}"


def _result(result: GradeResult, name: str):
    return next(t for t in result.tests if t.name == name)


def test_a_bare_assert_shows_neither_its_expression_nor_the_reference_value(graded):
    result, root = graded
    test = _result(result, "scale, a bare assert")
    assert not test.passed and test.kind == "check"
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert "hidden test failed: scale, a bare assert" in shown
    # The staff keep pytest's view: the expression with its values, and where it failed.
    assert "assert 3.0 == 8.154845" in test.detail and HIDDEN_FILE in test.detail


def test_an_asserts_message_is_shown_without_pytests_introspection(graded):
    result, root = graded
    shown = student_sees(result, "scale, an assert with a message")
    assert_private(shown, root)
    assert "scale(x) should multiply x by e" in shown


def test_pytest_fail_shows_the_authors_message(graded):
    result, root = graded
    test = _result(result, "scale, pytest.fail")
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert "author-fail-message: scale(2.0) gave 2.0" in shown and test.kind == "check"


def test_a_helpers_key_error_names_neither_its_key_nor_the_helper(graded):
    result, root = graded
    test = _result(result, "a helper's KeyError")
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert "value-8.154845" in test.detail and "_lookup_in_reference_table" in test.detail


def test_a_librarys_assertion_is_not_shown(graded):
    """numpy.testing prints both arrays, the reference's among them."""
    result, root = graded
    test = _result(result, "numpy.testing")
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert "hidden test failed: numpy.testing" in shown and "8.15484" in test.detail


def test_the_students_own_error_is_shown_with_their_own_traceback(graded):
    result, root = graded
    shown = student_sees(result, "the student's own error")
    assert_private(shown, root)
    assert "your code raised ValueError: student-own-problem" in shown
    assert 'File \\"/job/' in shown and "in boom" in shown  # their file, their function


def test_a_bound_builtins_error_shows_no_grader_frames(graded):
    """No frame of the student's file: the sandbox's frames (grader/guest) are not shown."""
    result, root = graded
    shown = student_sees(result, "a builtin bound to the student's name")
    assert_private(shown, root)
    assert "your code raised ValueError: math domain error" in shown
    assert "dispatch" not in shown and "grader" not in shown


def test_a_fixture_error_is_told_as_the_tests_problem(graded):
    result, root = graded
    test = _result(result, "a fixture that raises")
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert "a problem in the test, not in your code" in shown
    assert test.kind == "setup" and MISTAKES["setup"] in shown  # before the due date too
    assert "reference table" in test.detail and "8.154845" in test.detail


def test_an_unknown_fixture_shows_no_fixture_list(graded):
    result, root = graded
    test = _result(result, "a fixture that does not exist")
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert "a problem in the test, not in your code" in shown and "available" not in shown
    assert test.kind == "setup"
    assert "no_such_secret_fixture" in test.detail


def test_a_skip_shows_its_reason_only(graded):
    result, root = graded
    test = _result(result, "a skip")
    shown = student_sees(result, test.name)
    assert_private(shown, root)
    assert test.skipped and "not run here: needs-a-gpu-here" in shown


def test_a_parametrized_hidden_test_is_named_by_its_case_not_its_values(graded):
    result, root = graded
    test = _result(result, "test_parametrized (case 1)")
    assert_private(student_sees(result, test.name), root)


def test_nothing_of_the_hidden_suite_reaches_the_student_anywhere(graded):
    """The whole of what students can be shown; the staff's `detail` stays out of it."""
    result, root = graded
    assert len(result.tests) == 12 and result.score == 0
    shown = student_sees(result)
    assert_private(shown, root)
    assert '"detail"' not in shown
    assert all(t.detail for t in result.tests if not t.skipped)
    assert HIDDEN_FILE in json.dumps(result.to_dict())  # the staff's stored result keeps it


@pytest.mark.parametrize("broken, why", [
    ("import numpy as np\n\ndef test_broken(student):\n    secret_want = = 8.154845\n",
     "SyntaxError"),
    ("import secret_reference_helpers\n\ndef test_broken(student):\n    pass\n",
     "ModuleNotFoundError")])
def test_a_hidden_file_that_fails_to_load_fails_the_grading_without_its_report(
        tmp_path, broken, why):
    root = _course(tmp_path / "broken", {HIDDEN_FILE: broken})
    submission = tmp_path / "submission.py"
    submission.write_text(SUBMISSION)
    with pytest.raises(InvalidAssignment) as caught:
        grade(submission, load_assignment(root), mode="service", seed=11)
    # workers store str(exc) as the failed submission's reason, which web shows the student.
    reason = str(caught.value)
    assert_private(reason, root)
    assert "secret_reference_helpers" not in reason
    assert "1 hidden test file failed to load" in reason
    assert HIDDEN_FILE in caught.value.detail and why in caught.value.detail


def test_grader_check_shows_a_public_failure_as_pytest_would(graded, tmp_path):
    """Local mode runs only the public tests, the student's own files: their assertion's
    values are theirs to read, and nothing of the hidden suite is run or shown."""
    _, root = graded
    submission = tmp_path / "mine.py"
    submission.write_text(SUBMISSION)
    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        code = run_check(submission, load_assignment(root), stream)
    text = out.read_text()
    assert code == 1 and "public test failed: public scale" in text
    assert "assert 1.0 == 2.0" in text
    assert HIDDEN_FILE not in text and "secret" not in text


def test_a_public_bare_assert_in_the_service_shows_no_introspection(graded):
    """In the service the public tests run beside the reference: the same rules hold."""
    result, root = graded
    shown = student_sees(result, "public scale")
    assert "public test failed: public scale" in shown and "assert 1.0" not in shown


def test_an_authors_message_naming_a_trusted_path_is_cut(tmp_path):
    hidden = textwrap.dedent('''
        import pytest

        pytestmark = pytest.mark.visibility("visible")

        def test_path(student):
            """names its own file"""
            assert student.scale(1.0) == 3, f"see {__file__} and test_secret_suite.py"
        ''')
    root = _course(tmp_path / "named", {HIDDEN_FILE: hidden})
    submission = tmp_path / "submission.py"
    submission.write_text(SUBMISSION)
    result = grade(submission, load_assignment(root), mode="service", seed=11)
    shown = student_sees(result, "names its own file")
    assert_private(shown, root)
    assert "see <hidden> and <hidden>" in shown


def _raised(tmp_path: Path, source: str, folder: str = "course") -> AssertionError:
    """The AssertionError that `source`'s function f raises, compiled from a file on disk
    (not rewritten by pytest: as a helper module the tests import would be)."""
    file = tmp_path / folder / "helpers.py"
    file.parent.mkdir(exist_ok=True)
    file.write_text(source)
    namespace: dict = {}
    exec(compile(source, str(file), "exec"), namespace)
    with pytest.raises(AssertionError) as caught:
        namespace["f"]()
    return caught.value


@pytest.mark.parametrize("source, shown", [
    ("def f():\n    want = 8.154845\n    assert 3.0 == want\n", ""),
    ("def f():\n    want = 8.154845\n    assert (\n        3.0 == want\n    ), 'multiply by e'\n",
     "multiply by e"),
    ("def f():\n    raise AssertionError('multiply by e')\n", "multiply by e"),
    ("def f():\n    if True: assert False, 'one line'\n", "one line")])
def test_the_authors_part_of_an_assertion_in_an_unrewritten_helper(tmp_path, source, shown):
    from grader.feedback import author_assertion

    exc = _raised(tmp_path, source)
    assert author_assertion(exc, str(tmp_path / "course")) == shown
    # The same code outside the assignment's folder is a library's: nothing of it is the author's.
    assert author_assertion(_raised(tmp_path, source, "library"), str(tmp_path / "course")) == ""


def test_a_bad_marker_fails_the_grading_naming_no_test_file(tmp_path):
    """Raised from a hook, it was pytest's INTERNALERROR; now a reason students may read."""
    hidden = ("import pytest\n\n@pytest.mark.visibility('secret')\n"
              "def test_marked(student):\n    assert False\n")
    root = _course(tmp_path / "marked", {HIDDEN_FILE: hidden})
    submission = tmp_path / "submission.py"
    submission.write_text(SUBMISSION)
    with pytest.raises(InvalidAssignment) as caught:
        grade(submission, load_assignment(root), mode="service", seed=11)
    assert_private(str(caught.value), root)
    assert "visibility must be one of" in str(caught.value)
    assert f"{HIDDEN_FILE}::test_marked: 'secret'" in caught.value.detail
