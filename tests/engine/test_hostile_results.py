"""What a result stores and shows: bounded in size, the secret seed kept from students.

Amplification (issue 13, item 4): whatever a submission returns or prints, the result
stays under 1 MB. The seed (item 8): what a test sends into the sandbox is derived
through HMAC, so it reveals neither the secret seed nor another test's inputs, and the
student's view of a result does not carry the seed.
"""

from __future__ import annotations

import json
import zlib

import pytest

from grader.assignment import find
from grader.bounds import MAX_RESULT_BYTES, bound_result
from grader.results import GRADED, GradeResult, TestResult
from grader.session import derive_test_seed

pytestmark = pytest.mark.usefixtures("require_full_sandbox")


def _size(result: GradeResult) -> int:
    return len(result.to_json().encode())


def test_a_huge_return_value_in_a_message_is_cut(tmp_path, grade_hostile):
    """06 quotes what train_linear returned when it is not a dict: 7 MB of strings, twice."""
    slug = "06_training_loops"
    source = find(slug).solution.read_text() + (
        "\ndef train_linear(*args, **kwargs):\n    return ['w' * 40] * 150_000\n")
    path = tmp_path / "submission.py"
    path.write_text(source)
    result = grade_hostile(path, find(slug), deadline_s=150)
    assert result.status == GRADED
    assert result.score == 10  # train_linear's public (1) and hidden (2) tests fail
    assert _size(result) < MAX_RESULT_BYTES
    assert all(len(t.message) <= 2000 for t in result.tests)
    assert sum("message cut" in t.message for t in result.tests) == 2


def test_an_output_flood_keeps_the_log_small(probe_assignment, write_submission, grade_hostile):
    sub = write_submission("""
import sys
print("x" * (4 << 20))
def answer(x):
    sys.stdout.write("y" * (8 << 20))
    return x * 2
def run():
    for _ in range(3000):
        print("z" * 3000)
    return "ok"
def echo(value):
    return value
""")
    result = grade_hostile(sub, probe_assignment, deadline_s=60)
    assert result.score == 3
    assert _size(result) < 64 << 10
    assert "output truncated" in result.log


def test_bound_result_keeps_every_part_within_its_cap():
    huge = "é" * (3 << 20)
    result = GradeResult(assignment="a", status=GRADED, score=1, max_score=2,
                         tests=[TestResult(name=huge, points=0, max_points=1, passed=False,
                                           message=huge) for _ in range(3)],
                         messages=[huge] * 500, log=huge, executed_notebook=huge)
    bounded = bound_result(result)
    assert _size(bounded) < MAX_RESULT_BYTES
    assert bounded.executed_notebook is None
    assert any("executed notebook was over" in m for m in bounded.messages)
    assert any("more messages were left out" in m for m in bounded.messages)
    assert "[log cut:" in bounded.log


def test_a_small_result_is_left_as_it_was():
    result = GradeResult(assignment="a", status=GRADED, score=1, max_score=1,
                         tests=[TestResult(name="t", points=1, max_points=1, passed=True)],
                         messages=["hello"], log="printed", executed_notebook='{"cells": []}')
    before = result.to_json()
    assert bound_result(result).to_json() == before


def test_test_seeds_are_one_way_and_independent():
    secret = 0x2F3A_1B2C_4D5E_6F70
    a = derive_test_seed(secret, "tests/hidden/test_hidden.py::test_a")
    b = derive_test_seed(secret, "tests/hidden/test_hidden.py::test_b")
    assert 0 <= a < 2**31 and 0 <= b < 2**31 and a != b
    # The old derivation (secret xor crc32(name), mod 2**31) gave the secret's low bits away.
    assert a != (secret ^ zlib.crc32(b"test_a")) % 2**31
    assert a ^ b != (zlib.crc32(b"test_a") ^ zlib.crc32(b"test_b")) % 2**31
    assert derive_test_seed(secret, "tests/hidden/test_hidden.py::test_a") == a  # regrades
    assert derive_test_seed(secret + 1, "tests/hidden/test_hidden.py::test_a") != a


def test_what_the_sandbox_sees_does_not_reveal_the_secret_seed(probe_assignment, write_submission,
                                                                grade_hostile):
    """probe's echo test sends its seed into the sandbox: the submission writes it to the log."""
    secret = 0x1234_5678_9ABC_DEF0
    sub = write_submission("""
def answer(x):
    return x * 2
def run():
    return "ok"
def echo(value):
    print("SEEN", value[0], flush=True)
    return value
""")
    result = grade_hostile(sub, probe_assignment, deadline_s=60, seed=secret)
    assert result.score == 3
    seen = int(result.log.split("SEEN ")[1].split()[0])
    assert seen == derive_test_seed(secret, "tests/hidden/test_hidden.py::test_echo")
    assert seen != secret % 2**31 and seen != (secret ^ zlib.crc32(b"test_echo")) % 2**31


def test_the_students_view_has_no_seed():
    result = GradeResult(assignment="a", status=GRADED, score=1, max_score=1, seed=987654321)
    view = result.for_student(past_due=True)
    assert "seed" not in view and "987654321" not in json.dumps(view)
    assert result.to_dict()["seed"] == 987654321  # the instructors' copy keeps it
