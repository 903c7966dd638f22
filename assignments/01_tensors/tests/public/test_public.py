"""Public tests: run them with `grader check`."""

import pytest
import torch

from grader.checks import expect_tensor


@pytest.mark.points(1)
def test_make_tensors(student):
    """make_tensors: the material's creation functions, values and dtypes"""
    got = student.make_tensors()
    assert isinstance(got, dict), "make_tensors should return a dict of tensors"
    t = got.get("tensor")
    if isinstance(t, torch.Tensor) and t.is_floating_point():
        raise AssertionError("torch.tensor([1, 2, 3]) infers int64 from the integers; you "
                             f"returned {t.dtype}: did you use torch.Tensor for \"tensor\"?")
    t = got.get("Tensor")
    if isinstance(t, torch.Tensor) and not t.is_floating_point():
        raise AssertionError("torch.Tensor([1, 2, 3]) always uses the default dtype float32; "
                             f"you returned {t.dtype}: did you use torch.tensor for \"Tensor\"?")
    expected = {
        "tensor": torch.tensor([1, 2, 3]),
        "Tensor": torch.tensor([1.0, 2.0, 3.0]),
        "eye": torch.eye(4),
        "zeros": torch.zeros(2, 3),
        "ones": torch.ones(2, 3),
        "full": torch.full((2, 3), 7.0),
        "arange": torch.arange(16).reshape(2, 2, 4),
        "linspace": torch.tensor([1.0, 4.0, 7.0, 10.0]),
        "logspace": torch.tensor([1.0, 10.0, 100.0]),
    }
    log = got.get("logspace")
    if (isinstance(log, torch.Tensor) and log.shape == (3,) and log.is_floating_point()
            and not torch.allclose(log.double(), torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64))):
        raise AssertionError("make_tensors()['logspace'] is "
                             f"{[round(v, 4) for v in log.double().tolist()]}; expected "
                             "[1., 10., 100.]: torch.logspace(start, end, steps) takes the "
                             "exponents, so 10^0 to 10^2 is torch.logspace(0, 2, 3)")
    for key, value in expected.items():
        assert key in got, f"make_tensors() has no entry {key!r}"
        expect_tensor(got[key], value, name=f"make_tensors()[{key!r}]")


@pytest.mark.points(1)
def test_index_material(student):
    """index_and_select on the material's x (manual_seed(100), randn(2, 3))"""
    torch.manual_seed(100)
    x = torch.randn(2, 3)
    got = student.index_and_select(x)
    assert isinstance(got, (tuple, list)) and len(got) == 3, (
        "index_and_select should return (first row, last column, positive elements)")
    expect_tensor(got[0], x[0], name="x[0, :]")
    expect_tensor(got[1], x[:, 2], name="x[:, -1]")
    expect_tensor(got[2], x[x > 0], name="torch.masked_select(x, x > 0)")


@pytest.mark.points(1)
def test_predicted_classes_material(student):
    """predicted_classes: argmax along dim 1 as float32, on the material's y_hat"""
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    expect_tensor(student.predicted_classes(y_hat), torch.tensor([2.0, 2.0]),
                  name="predicted_classes(y_hat)")
