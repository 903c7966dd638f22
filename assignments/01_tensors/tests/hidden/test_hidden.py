"""Hidden tests: generated inputs from the submission's secret seed."""

import numpy as np
import pytest
import torch

from grader.checks import expect_tensor


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list, torch.Size)) else value


@pytest.mark.points(1)
def test_random_tensors_seeded(student, reference, seed):
    """random_tensors: the same seed gives the same normal and bernoulli draws"""
    got = student.random_tensors(seed)
    assert isinstance(got, (tuple, list)) and len(got) == 2, "random_tensors should return (w, b)"
    w, b = reference.random_tensors(seed)
    if isinstance(got[0], torch.Tensor) and got[0].shape == w.shape:
        spread = float(got[0].double().std()) if got[0].is_floating_point() else 0.0
        assert spread < 0.1, (f"your normal draws spread by {spread:.3g}: torch.normal(0, 0.01) "
                              "has standard deviation 0.01 (the second argument is std)")
        assert torch.allclose(got[0].double(), w.double()), (
            "your normal draws differ from those of torch.manual_seed(seed): seed first, then "
            "draw w with torch.normal and only then b with torch.bernoulli")
    expect_tensor(got[0], w, name="w")
    if isinstance(got[1], torch.Tensor) and got[1].numel() == b.numel():
        assert bool(((got[1] == 0) | (got[1] == 1)).all()), (
            "bernoulli samples are 0 or 1: torch.bernoulli(p) takes the probabilities p")
    expect_tensor(got[1], b, name="b")


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_shared_from_numpy(student, rng):
    """shared_from_numpy: the tensor sees the change made on the NumPy side"""
    arr = rng.standard_normal((3, 4))
    got = student.shared_from_numpy(arr.copy())
    expected = torch.from_numpy(arr.copy())
    expected[0, 0] = 100
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
        assert float(got[0, 0]) == 100.0 or not np.isclose(float(got[0, 0]), arr[0, 0]), (
            "your tensor is a copy: torch.tensor(arr) copies the data, so arr[0, 0] = 100 does "
            "not reach it; torch.from_numpy(arr) shares the array's memory")
    expect_tensor(got, expected, name="shared_from_numpy(arr)")


@pytest.mark.points(1)
def test_attributes(student, rng):
    """attributes: dtype, shape, device, requires_grad and is_leaf of x, w and y = w * x"""
    dtype = (torch.float32, torch.float64)[int(rng.integers(2))]
    shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
    x = torch.from_numpy(rng.standard_normal(shape)).to(dtype)
    got = student.attributes(x)
    assert isinstance(got, dict), "attributes should return a dict"
    got_dtype = got.get("dtype")
    if isinstance(got_dtype, str):  # the dtype's name, str(y.dtype), says the same thing
        names = (str(dtype), str(dtype).removeprefix("torch."))
        got_dtype = dtype if got_dtype in names else got_dtype
    assert got_dtype == dtype, (
        f"y's dtype is {got.get('dtype')}; y = w * x keeps x's dtype, {dtype}")
    assert _as_tuple(got.get("shape")) == shape, (
        f"y's shape is {got.get('shape')}; expected {shape}, the shape of x")
    assert str(got.get("device")) == "cpu", f"y's device is {got.get('device')}; expected cpu"
    flags = _as_tuple(got.get("requires_grad"))
    assert flags == (False, True, True), (
        f"requires_grad of (x, w, y) is {flags}; expected (False, True, True): x was made "
        "without requires_grad, w with it, and y depends on w, so it requires grad too")
    leaves = _as_tuple(got.get("is_leaf"))
    if isinstance(leaves, tuple) and len(leaves) == 3 and leaves[0] is False:
        raise AssertionError("x.is_leaf is True: a tensor that does not require grad is "
                             "always a leaf, since no operation recorded in the graph made it")
    assert leaves == (True, True, False), (
        f"is_leaf of (x, w, y) is {leaves}; expected (True, True, False): y was made by an "
        "operation on w, so it is not a leaf")


@pytest.mark.points(1)
def test_index_generated(student, matrix):
    """index_and_select on a generated matrix"""
    got = student.index_and_select(matrix)
    assert isinstance(got, (tuple, list)) and len(got) == 3, (
        "index_and_select should return (first row, last column, positive elements)")
    expect_tensor(got[0], matrix[0], name="x[0, :]")
    expect_tensor(got[1], matrix[:, -1], name="x[:, -1]")
    positive = torch.masked_select(matrix, matrix > 0)
    if isinstance(got[2], torch.Tensor) and got[2].shape == matrix.shape:
        raise AssertionError(
            "your positive elements keep the shape of x (zeros where x <= 0, or the mask "
            "itself): torch.masked_select(x, x > 0) returns a 1-D tensor of the selected "
            "elements only")
    expect_tensor(got[2], positive, name="torch.masked_select(x, x > 0)")


@pytest.mark.points(1)
def test_shape_ops(student, reference, blocks):
    """shape_ops: cat, view, unsqueeze and squeeze on generated sizes"""
    a, b, s = blocks
    got = student.shape_ops(a, b, s)
    assert isinstance(got, dict), "shape_ops should return a dict"
    expected = reference.shape_ops(a, b, s)
    squeezed = got.get("squeezed")
    if (isinstance(squeezed, torch.Tensor) and squeezed.numel() == s.numel()
            and 1 in tuple(squeezed.shape)):
        raise AssertionError(
            f"squeezed still has a size-1 dimension (shape {tuple(squeezed.shape)}): "
            "torch.squeeze(s) without a dim removes every size-1 dimension, while "
            "torch.squeeze(s, d) removes only dimension d")
    for key, value in expected.items():
        assert key in got, f"shape_ops() has no entry {key!r}"
        expect_tensor(got[key], value, name=f"shape_ops()[{key!r}]")


@pytest.mark.points(1)
def test_broadcast(student, reference, columns):
    """broadcast: A + B and expand on generated sizes"""
    A, B = columns
    got = student.broadcast(A, B)
    assert isinstance(got, (tuple, list)) and len(got) == 3, (
        "broadcast should return (A + B, A expanded, B expanded)")
    names = ("A + B", "A.expand(n, m)", "B.unsqueeze(0).expand(n, m)")
    for value, exp, name in zip(got, reference.broadcast(A, B), names, strict=True):
        expect_tensor(value, exp, name=name)


@pytest.mark.points(1)
@pytest.mark.visibility("after_due_date")
def test_reductions(student, reference, matrix):
    """reductions: sum with dim and keepdim, max and argmax on a generated matrix"""
    got = student.reductions(matrix)
    assert isinstance(got, dict), "reductions should return a dict"
    expected = reference.reductions(matrix)
    keep = got.get("sum0_keepdim")
    if isinstance(keep, torch.Tensor) and keep.dim() == 1:
        raise AssertionError("sum0_keepdim lost the reduced dimension: with keepdim=True the "
                             f"sum along dim 0 has shape {tuple(expected['sum0_keepdim'].shape)}")
    max1 = got.get("max1")
    if not isinstance(max1, torch.Tensor) and (
            getattr(max1, "type_name", None) == "max"
            or (isinstance(max1, (tuple, list)) and len(max1) == 2)):
        raise AssertionError("max1 holds both the values and the indices: t.max(dim=1) returns "
                             "the pair (values, indices); keep the values, "
                             "t.max(dim=1).values (or t.max(dim=1)[0])")
    argmax1 = got.get("argmax1")
    if isinstance(argmax1, torch.Tensor) and argmax1.dim() == 0:
        raise AssertionError("argmax1 is a single number: without dim, argmax gives the index "
                             "into the flattened tensor; t.argmax(dim=1) gives one index per row")
    sum0 = got.get("sum0")
    rows, cols = matrix.shape
    if isinstance(sum0, torch.Tensor) and tuple(sum0.shape) == (rows,) and rows != cols:
        raise AssertionError("sum0 summed along dim 1: dim=0 sums down the columns, leaving "
                             "one value per column")
    for key, value in expected.items():
        assert key in got, f"reductions() has no entry {key!r}"
        expect_tensor(got[key], value, name=f"reductions()[{key!r}]")
