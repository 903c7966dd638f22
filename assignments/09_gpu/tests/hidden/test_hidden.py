"""Hidden tests: generated inputs from the submission's secret seed.

Times are measured here, outside the sandbox; the seconds time_matmul reports are only
checked for sense (positive, and not longer than the whole call took from outside).
"""


import pytest
import torch

from grader.checks import expect_number


@pytest.mark.points(2)
@pytest.mark.visibility("after_due_date")
def test_predict_generated(student, reference, batch, checks):
    """predict on the course's sizes (64 x 1000 -> 100 -> 10), on the CPU and on the default device"""
    state, x = batch
    expected = reference.predict(state, x, "cpu")
    checks.predict(lambda: student.predict(state, x, "cpu"), expected, 'predict(state, x, "cpu")')
    checks.predict(lambda: student.predict(state, x), expected, "predict(state, x)")


@pytest.mark.points(1)
def test_matmul_cpu_generated(student, small_matrices, checks):
    """matmul_norm and time_matmul on the CPU: the right norm, a sensible time in seconds"""
    a, b = small_matrices
    expected = float(torch.matmul(a, b).norm(2))
    checks.matmul_norm(student.matmul_norm(a, b, "cpu"), a, b, 'matmul_norm(a, b, "cpu")')
    checks.time_matmul(student, a, b, "cpu", expected)


@pytest.mark.points(3)
@pytest.mark.timeout(240)
def test_cuda_lesson_sizes(cuda, student, reference, timing, batch, lesson_matrices,
                           new_lesson_matrices, checks):
    """on a GPU: the lesson's 10000x1000 @ 1000x2000 runs on CUDA, well faster than on a CPU"""
    name = str(student.pick_device())
    assert name.startswith("cuda"), (
        f"pick_device returned {name!r} although CUDA is available: ask "
        "torch.cuda.is_available() instead of writing the device down")
    state, x = batch
    checks.predict(lambda: student.predict(state, x, cuda), reference.predict(state, x, "cpu"),
                     'predict(state, x, "cuda")')
    a, b = lesson_matrices
    expected = float(torch.matmul(a, b).norm(2))
    expect_number(student.matmul_norm(a, b, cuda), expected, name='matmul_norm(a, b, "cuda")',
                  rtol=1e-4)
    checks.time_matmul(student, a, b, cuda, expected)
    # each timed call gets new matrices; its norm is checked against the reference's
    timing.check("gpu_matmul", "matmul_norm", lambda: (*new_lesson_matrices(), cuda), rtol=1e-4,
                 advice='the product of matmul_norm(a, b, "cuda") did not run on the GPU; move '
                        "a and b there with .to(device) before torch.matmul")
