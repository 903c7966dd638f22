"""The data-only wire: values round-trip, and nothing out of bounds is decoded."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from grader.guest.wire import PREFIX, Limits, Ref, WireError, decode_frame, encode_frame


def roundtrip(value, limits=Limits()):
    return decode_frame(encode_frame(value), limits)


def test_plain_data_roundtrips():
    value = {"a": [1, 2.5, None, True, "s"], 3: (1, (2, 3)), (1, "k"): b"\x00\x01",
             "big": 2**80, "nan": float("nan"), "inf": -math.inf, "c": 1 + 2j}
    out = roundtrip(value)
    assert out["a"] == [1, 2.5, None, True, "s"] and out[3] == (1, (2, 3))
    assert out[(1, "k")] == b"\x00\x01" and out["big"] == 2**80 and out["c"] == 1 + 2j
    assert math.isnan(out["nan"]) and out["inf"] == -math.inf


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.int64, torch.uint8, torch.bool, torch.complex64])
def test_tensors_roundtrip_with_dtype_shape_and_grad_flag(dtype):
    t = (torch.arange(12).reshape(3, 4) % 3).to(dtype)
    if t.is_floating_point():
        t.requires_grad_(True)
    out = roundtrip(t)
    assert out.dtype == dtype and out.shape == (3, 4) and torch.equal(out.detach(), t.detach())
    assert out.requires_grad == t.requires_grad and out.grad_fn is None


def test_arrays_scalars_and_torch_metadata_roundtrip():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = roundtrip([a, np.float32(2.5), torch.float32, torch.device("cpu"), torch.Size([2, 3]),
                     torch.zeros(0, 5)])
    assert np.array_equal(out[0], a) and out[0].dtype == np.float32
    assert out[1] == 2.5 and isinstance(out[1], np.float32)
    assert out[2:5] == [torch.float32, torch.device("cpu"), torch.Size([2, 3])]
    assert out[5].shape == (0, 5)


def test_non_plain_objects_need_a_ref():
    with pytest.raises(WireError, match="not plain data"):
        encode_frame(object())
    assert roundtrip(Ref(3, "Net")) == Ref(3, "Net")
    with pytest.raises(WireError):
        encode_frame(np.array([object()]))


def _frame(header: dict, blob: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return PREFIX.pack(len(raw), len(blob)) + raw + blob


@pytest.mark.parametrize("header, blob, message", [
    ({"v": {"$": "pickle", "v": "..."}, "blobs": []}, b"", "unknown value kind"),
    ({"v": {"$": "ndarray", "dtype": "object", "shape": [1], "blob": 0}, "blobs": [8]}, b"x" * 8,
     "not allowed"),
    ({"v": {"$": "tensor", "dtype": "float32", "shape": [3], "blob": 0}, "blobs": [8]}, b"x" * 8,
     "do not match"),
    ({"v": {"$": "tensor", "dtype": "float32", "shape": [-1], "blob": 0}, "blobs": [0]}, b"",
     "shape"),
    ({"v": [{"$": "bytes", "blob": 0}, {"$": "bytes", "blob": 0}], "blobs": [1]}, b"x",
     "array reference"),
    ({"v": 1, "blobs": [5]}, b"x", "add up"),
])
def test_malformed_frames_are_refused(header, blob, message):
    with pytest.raises(WireError, match=message):
        decode_frame(_frame(header, blob))


def test_limits_on_size_depth_and_parts():
    with pytest.raises(WireError, match="too large"):
        roundtrip(np.zeros(1000), Limits(max_blob_bytes=100))
    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(WireError, match="nested deeper"):
        roundtrip(deep)
    with pytest.raises(WireError, match="parts"):
        roundtrip(list(range(1000)), Limits(max_nodes=100))


def test_encoder_refuses_huge_values_before_materialising_them():
    with pytest.raises(WireError, match="too large"):
        encode_frame(torch.zeros(1).expand(10**9), max_blob_bytes=1 << 20)
