"""The data-only wire between the trusted grader and the sandbox: no pickle, bounded.

A frame is a 12-byte prefix (header length, blob length), a JSON header and the raw
bytes of any arrays. Both sides use this module; the trusted side decodes with
`Limits` so that nothing a student returns can exhaust its memory or smuggle code.
Torch is imported only when a tensor is actually met, so a NumPy-only sandbox
starts without paying for it.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from collections import namedtuple

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

PREFIX = struct.Struct("!IQ")
# The guest's first bytes on its answer pipe, written before any student code runs: a job
# that ends before them never ran the student's code, so the machine failed, not the student.
STARTED = b"TG\x00\x01"

# dtypes allowed across the wire; anything else (object arrays above all) is refused.
NUMPY_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
}
TORCH_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
}


class WireError(ValueError):
    """What crossed the wire is not plain data within the limits."""


# Named tuples rather than dataclasses: dataclasses imports inspect, about 8 ms of every
# sandboxed job's start-up. Both are immutable; the encoder tests for Ref before tuples.
class Limits(namedtuple("Limits", "max_header_bytes max_blob_bytes max_depth max_nodes max_ndim",
                        defaults=(8 << 20, 256 << 20, 32, 200_000, 16))):
    """Bounds on one decoded frame."""

    __slots__ = ()


class Ref(namedtuple("Ref", "id type_name", defaults=("",))):
    """A handle on an object that stays inside the sandbox (a model, a function)."""

    __slots__ = ()


def _torch():
    """Torch if this process already imported it, else None (never imports it)."""
    return sys.modules.get("torch")


def _numpy():
    return sys.modules.get("numpy")


class Encoder:
    """Turns plain data into a JSON-ready tree plus blobs; `to_ref` handles the rest."""

    def __init__(self, to_ref=None, max_blob_bytes: int = 256 << 20) -> None:
        self.blobs: list[bytes] = []
        self.to_ref = to_ref
        self.max_blob_bytes = max_blob_bytes
        self.blob_bytes = 0

    def _blob(self, nbytes: int, make) -> int:
        # Check the size before materialising: an expanded tensor of a billion elements
        # costs nothing until it is made contiguous.
        if self.blob_bytes + nbytes > self.max_blob_bytes:
            raise WireError(
                f"the value is too large to return ({nbytes:,} bytes; the limit is "
                f"{self.max_blob_bytes:,} bytes in one call)"
            )
        self.blob_bytes += nbytes
        self.blobs.append(make())
        return len(self.blobs) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        """Encode one value (recursively)."""
        if depth > 64:
            raise WireError("the value is nested too deeply to return")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**64 else {"$": "bigint", "v": str(value)}
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if isinstance(value, complex):
            return {"$": "complex", "re": self.encode(value.real), "im": self.encode(value.imag)}
        if isinstance(value, Ref):
            return {"$": "ref", "id": value.id, "type": value.type_name}
        if type(value) in (list, tuple):
            items = [self.encode(v, depth + 1) for v in value]
            return items if type(value) is list else {"$": "tuple", "v": items}
        if type(value) is dict:
            return {"$": "dict", "v": [[self.encode(k, depth + 1), self.encode(v, depth + 1)]
                                       for k, v in value.items()]}
        if isinstance(value, (bytes, bytearray)):
            return {"$": "bytes", "blob": self._blob(len(value), lambda: bytes(value))}
        encoded = self._encode_array(value)
        if encoded is not None:
            return encoded
        if self.to_ref is None:
            raise WireError(f"a {type(value).__name__} is not plain data")
        return self.encode(self.to_ref(value), depth)

    def _encode_array(self, value: Any) -> Any:
        torch, np = _torch(), _numpy()
        if torch is not None:
            if isinstance(value, torch.Tensor):
                return self._encode_tensor(torch, value)
            if isinstance(value, torch.dtype):
                return {"$": "torch.dtype", "v": str(value).removeprefix("torch.")}
            if isinstance(value, torch.device):
                return {"$": "torch.device", "v": str(value)}
            if isinstance(value, torch.Size):
                return {"$": "torch.Size", "v": [int(d) for d in value]}
        if np is not None:
            if isinstance(value, np.ndarray) or isinstance(value, np.generic):
                arr = np.asarray(value)
                if arr.dtype.name not in NUMPY_DTYPES:
                    raise WireError(f"a numpy array of dtype {arr.dtype} cannot be returned")
                blob = self._blob(arr.nbytes, lambda: np.ascontiguousarray(arr).tobytes())
                return {"$": "ndarray", "dtype": arr.dtype.name, "shape": list(arr.shape),
                        "blob": blob, "scalar": isinstance(value, np.generic)}
            if isinstance(value, np.dtype):
                return {"$": "numpy.dtype", "v": value.name}
        return None

    def _encode_tensor(self, torch, t) -> dict[str, Any]:
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in TORCH_DTYPES:
            raise WireError(f"a tensor of dtype {t.dtype} cannot be returned")
        if t.layout != torch.strided:
            t = t.to_dense()

        def make() -> bytes:
            flat = t.detach().to("cpu").contiguous()
            if flat.dtype == torch.bfloat16:
                flat = flat.view(torch.int16)
            return flat.numpy().tobytes()

        blob = self._blob(t.numel() * t.element_size(), make)
        return {"$": "tensor", "dtype": dtype, "shape": list(t.shape), "blob": blob,
                "requires_grad": bool(t.requires_grad), "device": str(t.device)}


def encode_frame(value: Any, to_ref=None, max_blob_bytes: int = 256 << 20,
                 seq: int | None = None) -> bytes:
    """One frame holding `value`; `seq` (a request's number, echoed by its answer) leads the header."""
    enc = Encoder(to_ref, max_blob_bytes)
    meta = {} if seq is None else {"seq": int(seq)}
    meta.update(v=enc.encode(value), blobs=[len(b) for b in enc.blobs])
    header = json.dumps(meta, separators=(",", ":")).encode()
    return PREFIX.pack(len(header), enc.blob_bytes) + header + b"".join(enc.blobs)


def frame_seq(header: bytes) -> int | None:
    """The sequence number a frame's header starts with (`{"seq":N,`), None when it has none.

    Read from the header's first bytes, before (and whether or not) the rest decodes: the
    trusted side checks it on every answer, and the guest echoes it even for a request it
    could not decode.
    """
    if not header.startswith(b'{"seq":'):
        return None
    end = header.find(b",", 7, 28)
    digits = bytes(header[7:end]) if end > 7 else b""
    return int(digits) if digits.isdigit() else None


class Decoder:
    """Turns a header tree and blobs back into values, refusing anything out of bounds."""

    def __init__(self, blobs: list[memoryview], limits: Limits, from_ref=None) -> None:
        self.blobs = blobs
        self.used: set[int] = set()
        self.limits = limits
        self.from_ref = from_ref
        self.nodes = 0

    def decode(self, node: Any, depth: int = 0) -> Any:
        """Decode one node (recursively)."""
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise WireError(f"the value has more than {self.limits.max_nodes:,} parts")
        if depth > self.limits.max_depth:
            raise WireError(f"the value is nested deeper than {self.limits.max_depth} levels")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            raise WireError("malformed value")
        tag = node.get("$")
        handler = getattr(self, "_tag_" + str(tag).replace(".", "_"), None)
        if handler is None:
            raise WireError(f"unknown value kind {tag!r}")
        return handler(node, depth)

    def _tag_tuple(self, node, depth):
        return tuple(self.decode(v, depth + 1) for v in _list(node["v"]))

    def _tag_dict(self, node, depth):
        out = {}
        for pair in _list(node["v"]):
            key, value = _list(pair)
            key = self.decode(key, depth + 1)
            if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                raise WireError("a dict key must be a string, number or tuple")
            out[key] = self.decode(value, depth + 1)
        return out

    def _tag_bigint(self, node, depth):
        text = str(node["v"])
        if len(text) > 4000:
            raise WireError("an integer with too many digits")
        return int(text)

    def _tag_float(self, node, depth):
        if node["v"] not in ("nan", "inf", "-inf"):
            raise WireError("malformed float")
        return float(node["v"])

    def _tag_complex(self, node, depth):
        re, im = self.decode(node["re"], depth + 1), self.decode(node["im"], depth + 1)
        if not all(isinstance(x, (int, float)) for x in (re, im)):
            raise WireError("malformed complex number")
        return complex(re, im)

    def _tag_ref(self, node, depth):
        ref = Ref(int(node["id"]), str(node.get("type", ""))[:200])
        return self.from_ref(ref) if self.from_ref else ref

    def _tag_bytes(self, node, depth):
        return bytes(self._take(node["blob"], None))

    def _take(self, index: Any, nbytes: int | None) -> memoryview:
        if not isinstance(index, int) or not 0 <= index < len(self.blobs) or index in self.used:
            raise WireError("malformed array reference")
        self.used.add(index)
        blob = self.blobs[index]
        if nbytes is not None and len(blob) != nbytes:
            raise WireError("an array's bytes do not match its shape and dtype")
        return blob

    def _shape(self, node) -> tuple[int, ...]:
        shape = _list(node["shape"])
        if len(shape) > self.limits.max_ndim or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise WireError("malformed array shape")
        return tuple(shape)

    def _tag_ndarray(self, node, depth):
        import numpy as np

        if node["dtype"] not in NUMPY_DTYPES:
            raise WireError(f"numpy dtype {node['dtype']!r} is not allowed")
        dtype, shape = np.dtype(node["dtype"]), self._shape(node)
        blob = self._take(node["blob"], math.prod(shape) * dtype.itemsize)
        arr = np.frombuffer(blob, dtype=dtype).reshape(shape).copy()
        return arr[()] if node.get("scalar") else arr

    def _tag_tensor(self, node, depth):
        import torch

        name = node["dtype"]
        if name not in TORCH_DTYPES:
            raise WireError(f"tensor dtype {name!r} is not allowed")
        dtype, shape = getattr(torch, name), self._shape(node)
        itemsize = torch.empty((), dtype=dtype).element_size()
        blob = self._take(node["blob"], math.prod(shape) * itemsize)
        raw_dtype = torch.int16 if dtype == torch.bfloat16 else dtype
        if len(blob) == 0:
            t = torch.empty(shape, dtype=raw_dtype)
        else:
            t = torch.frombuffer(bytearray(blob), dtype=raw_dtype).reshape(shape)
        if dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        if node.get("requires_grad") is True and t.is_floating_point():
            t.requires_grad_(True)
        return t

    def _tag_torch_dtype(self, node, depth):
        import torch

        if node["v"] not in TORCH_DTYPES:
            raise WireError("unknown torch dtype")
        return getattr(torch, node["v"])

    def _tag_torch_device(self, node, depth):
        import torch

        return torch.device(str(node["v"])[:50])

    def _tag_torch_Size(self, node, depth):
        import torch

        return torch.Size(self._shape({"shape": node["v"]}))

    def _tag_numpy_dtype(self, node, depth):
        import numpy as np

        if node["v"] not in NUMPY_DTYPES:
            raise WireError("unknown numpy dtype")
        return np.dtype(node["v"])


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise WireError("malformed value")
    return value


def split_prefix(prefix: bytes, limits: Limits) -> tuple[int, int]:
    """Header and blob lengths of a frame, checked against the limits."""
    header_len, blob_len = PREFIX.unpack(prefix)
    if header_len > limits.max_header_bytes:
        raise WireError(f"the value is too large to return ({header_len:,} bytes of structure)")
    if blob_len > limits.max_blob_bytes:
        raise WireError(
            f"the value is too large to return ({blob_len:,} bytes; "
            f"the limit is {limits.max_blob_bytes:,})"
        )
    return header_len, blob_len


def decode_body(header: bytes, blob: bytes, limits: Limits, from_ref=None) -> Any:
    """Decode a frame's header and blob bytes into a value."""
    try:
        meta = json.loads(header)
    except (ValueError, RecursionError) as exc:
        raise WireError("malformed frame header") from exc
    if not isinstance(meta, dict):
        raise WireError("malformed frame header")
    sizes = _list(meta.get("blobs", []))
    if not all(isinstance(n, int) and n >= 0 for n in sizes) or sum(sizes) != len(blob):
        raise WireError("malformed frame: blob sizes do not add up")
    view, blobs, offset = memoryview(blob), [], 0
    for n in sizes:
        blobs.append(view[offset:offset + n])
        offset += n
    try:
        return Decoder(blobs, limits, from_ref).decode(meta.get("v"))
    except (KeyError, TypeError) as exc:
        raise WireError("malformed value") from exc


def decode_frame(frame: bytes, limits: Limits = Limits(), from_ref=None) -> Any:
    """Decode one whole frame held in memory."""
    header_len, blob_len = split_prefix(frame[:PREFIX.size], limits)
    start = PREFIX.size
    if len(frame) != start + header_len + blob_len:
        raise WireError("truncated frame")
    return decode_body(frame[start:start + header_len], frame[start + header_len:], limits, from_ref)
