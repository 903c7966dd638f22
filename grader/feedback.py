"""What a student is told of a failed test, and what only the course staff see (issue 11 #9).

A failing test's exception belongs to the trusted side. Its text and traceback can carry
the hidden file's path and name, its source lines, pytest's assertion introspection (the
test's expressions with the reference values it computed: `assert 3.0 == 8.154845`), the
repr of reference objects (numpy.testing prints both arrays), tracebacks through grader/
and pytest, and the absolute paths of the course install and of the session's /tmp.

So a test result keeps two texts:

- `message`, the only one a student may ever see (a visible test, an after_due_date test
  past its date, Gradescope's output, `grader check`): what the test's author wrote as the
  message (an `assert`'s message, `pytest.fail`, `pytest.skip`, `raise AssertionError(...)`,
  grader.checks' and grader.timing's feedback), or the student's own error with their
  own traceback lines, or else a neutral line naming the test. Never the rest.
- `detail`, the staff's: the exception in full, with the traceback through the test's
  files (pytest's and pluggy's frames left out). `GradeResult.for_student` drops it.

An author's message is theirs to word (it may quote a value on purpose); only the trusted
side's paths and the hidden files' names are cut from it, wherever they appear.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
import sysconfig
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import _pytest
import pluggy
import pytest

import grader
from grader.bounds import MAX_TEST_DETAIL
from grader.checks import unusable_message
from grader.errors import InvalidAssignment, StudentCodeError
from grader.results import MISTAKES

SETUP_PROBLEM = ("it could not be set up: a problem in the test, not in your code "
                 "(the course staff can see the details)")
ASSIGNMENT_PROBLEM = ("it could not run: a problem in the assignment, not in your code "
                      "(the course staff can see the details)")
REDACTED = "<hidden>"


@dataclass(frozen=True)
class Secrets:
    """What of the trusted side a student may not see: paths and the hidden files' names."""

    roots: tuple[str, ...]
    names: tuple[str, ...]
    # Where the test's author's code lives: an assertion raised here is the author's.
    author_root: str

    def redact(self, text: str) -> str:
        """The text with every trusted path and hidden file name replaced by `<hidden>`."""
        for root in self.roots:
            text = re.sub(re.escape(root) + r"[^\s'\"`,;:()\[\]{}<>]*", REDACTED, text)
        for name in self.names:
            text = re.sub(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-])", REDACTED, text)
        return text


def secrets_of(assignment_path: Path) -> Secrets:
    """The paths and names of this assignment's trusted side."""
    path = Path(assignment_path)
    roots = {str(path), str(path.absolute()), str(path.resolve()),
             str(Path(grader.__file__).parent), str(Path(pytest.__file__).parent.parent),
             os.path.realpath(tempfile.gettempdir()), tempfile.gettempdir(), sys.prefix,
             sys.base_prefix, *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "purelib"))}
    # Longest first, so a folder inside another is replaced whole; "/" alone is no secret.
    ordered = sorted((r.rstrip("/") for r in roots if len(r.rstrip("/")) > 1), key=len,
                     reverse=True)
    hidden = path / "tests" / "hidden"
    names = {"tests/hidden"}
    if hidden.is_dir():
        for file in hidden.rglob("*.py"):
            names.update((file.name, file.stem))
    # A stem like "conftest" or "helpers" alone is a common word; only test_ files' stems go.
    names = {n for n in names if n.endswith(".py") or n.startswith("test_") or "/" in n}
    return Secrets(roots=tuple(ordered), names=tuple(sorted(names, key=len, reverse=True)),
                   author_root=str(path.resolve()))


def neutral(name: str, suite: str, why: str = MISTAKES["check"]) -> str:
    """The line shown where a failure's own text is withheld."""
    return f"{suite} test failed: {name}: {why}"


def student_message(exc: BaseException | None, *, name: str, suite: str, when: str,
                    secrets: Secrets) -> str:
    """What a student may read of a failed test (see the module's docstring)."""
    if exc is None:
        return ""
    if isinstance(exc, pytest.skip.Exception):
        reason = secrets.redact(str(exc.msg or "")).strip()
        return f"not run here: {reason}" if reason else "not run here"
    if isinstance(exc, StudentCodeError):
        return str(exc)  # the student's own error, with their own traceback lines
    if isinstance(exc, pytest.fail.Exception):
        text = secrets.redact(str(exc.msg or "")).strip()
        return text or neutral(name, suite)
    if isinstance(exc, AssertionError):
        text = author_assertion(exc, secrets.author_root)
        return secrets.redact(text) if text else neutral(name, suite)
    if is_test_problem(exc, when):
        return neutral(name, suite, ASSIGNMENT_PROBLEM if isinstance(exc, InvalidAssignment)
                       else SETUP_PROBLEM)
    # The test's own code failed on what the student's returned: said in the lesson's terms,
    # from the exception's type and a few words matched in it, never its text.
    return unusable_message(exc)


def is_test_problem(exc: BaseException, when: str) -> bool:
    """Whether a failure is the test's own, not the student's: a fixture that raised or is
    missing, an assignment problem (a timing test with no reference to time against)."""
    if isinstance(exc, (StudentCodeError, AssertionError, pytest.fail.Exception,
                        pytest.skip.Exception)):
        return False
    return when == "setup" or isinstance(exc, (InvalidAssignment, pytest.FixtureLookupError))


def author_assertion(exc: AssertionError, author_root: str) -> str:
    """The part of an AssertionError that its author wrote, or "" when none is theirs.

    Where it was raised decides: grader.checks and grader.timing write feedback for
    students; in the assignment's own files an `assert` statement's message is the
    author's (pytest appends its introspection after "\\nassert "), a bare `assert` has
    none, and `raise AssertionError(text)` is all theirs. Anywhere else (numpy.testing,
    torch.testing) the text is a library's, which prints the reference values.
    """
    text = str(exc.args[0]) if exc.args else ""
    filename, line = _raised_at(exc)
    if _within(filename, str(Path(grader.__file__).parent)):
        return text
    if not _within(filename, author_root):
        return ""
    statement = _statement_at(filename, line)
    if statement == "assert":
        return ""
    if statement == "assert_with_message":
        return text.split("\nassert ", 1)[0]
    return text


def _raised_at(exc: BaseException) -> tuple[str, int]:
    tb = exc.__traceback__
    if tb is None:
        return "", 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def _within(filename: str, root: str) -> bool:
    if not filename or not root:
        return False
    real = os.path.realpath(filename)
    return any(f.startswith(os.path.join(r, "")) for f in (filename, real)
               for r in (root, os.path.realpath(root)))


def _statement_at(filename: str, line: int) -> str:
    """"assert", "assert_with_message" or "other": the innermost statement at that line."""
    try:
        stat = os.stat(filename)
    except OSError:
        return "other"
    return _statements(filename, stat.st_mtime_ns, stat.st_size).get(line, "other")


@functools.lru_cache(maxsize=64)
def _statements(filename: str, _mtime_ns: int, _size: int) -> dict[int, str]:
    """Each line of a file, mapped to the kind of the innermost statement holding it."""
    try:
        tree = ast.parse(Path(filename).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return {}
    spans = sorted(((node.lineno, node.end_lineno or node.lineno, node) for node in ast.walk(tree)
                    if isinstance(node, ast.stmt)), key=lambda s: s[1] - s[0], reverse=True)
    kinds: dict[int, str] = {}
    for first, last, node in spans:  # widest first: an inner statement overwrites its outer one
        kind = ("other" if not isinstance(node, ast.Assert)
                else "assert_with_message" if node.msg is not None else "assert")
        for number in range(first, last + 1):
            kinds[number] = kind
    return kinds


# Frames a failure's detail leaves out: the test runner's, and the proxy's own (the call's
# line in the test is kept, the sandbox's answer is in the error's text).
_HARNESS = (*(os.path.join(str(Path(m.__file__).parent), "") for m in (pytest, _pytest, pluggy)),
            str(Path(grader.__file__).with_name("proxy.py")))


def staff_detail(exc: BaseException | None) -> str:
    """The failure in full for instructors: the exception and its traceback, without
    pytest's and pluggy's own frames."""
    if exc is None:
        return ""
    parts = traceback.format_exception(exc)
    kept = [p for p in parts if not any(f'File "{h}' in p for h in _HARNESS)]
    text = "".join(kept)
    # The end is kept: the exception and the innermost frames are the useful part.
    return text if len(text) <= MAX_TEST_DETAIL else "..." + text[-(MAX_TEST_DETAIL - 3):]


def collection_failure(slug: str, errors: list[tuple[str, str]]) -> InvalidAssignment:
    """The error of tests that could not be collected: its text names no file (students are
    shown it as the reason grading failed); `detail` has pytest's report for staff."""
    hidden = sum("/hidden/" in f"/{nodeid}" for nodeid, _ in errors)
    public = len(errors) - hidden
    counts = ", ".join(f"{n} {suite} test file{'s' if n != 1 else ''}"
                       for n, suite in ((hidden, "hidden"), (public, "public")) if n)
    detail = "\n".join(f"{nodeid}: {text[-1500:]}" for nodeid, text in errors)
    return InvalidAssignment(f"{slug}: its tests could not be collected ({counts} failed to "
                             "load); the course staff must fix the assignment", detail=detail)
