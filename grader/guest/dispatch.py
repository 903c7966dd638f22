"""Inside the sandbox: answers one request against the student's namespace.

Everything here runs as the student and can be tampered with by the student;
the trusted side believes none of it beyond "this is the data that came back".
"""

from __future__ import annotations

import sys
import traceback

from grader.guest.forbid import drain as drain_forbidden
from grader.guest.wire import Limits, Ref, WireError, decode_body, encode_frame, frame_seq

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

MAX_MESSAGE = 2000


def describe_exception(exc: BaseException, filename_hint: str = "") -> dict[str, str]:
    """Type, message and the student's part of the traceback, short.

    Only frames in the student's own file (or cells): where none is (a library function
    bound to a name of theirs), no traceback, since the others would show the paths of
    grader's and the libraries' install, which are the trusted side's too."""
    frames = traceback.extract_tb(exc.__traceback__)
    if filename_hint:
        frames = traceback.StackSummary.from_list([f for f in frames if filename_hint in f.filename])
    tb = "".join(traceback.format_list(frames[-6:]))
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = f"{exc.msg} (line {exc.lineno}): {(exc.text or '').strip()}"
    return {"type": type(exc).__name__, "message": message[:MAX_MESSAGE], "traceback": tb[-4000:]}


class ForbiddenImport:
    """Refuses modules the assignment forbids, with the reason (defense in depth).

    A meta path finder needs only find_spec; importlib.abc is not imported for its base
    class, since it costs about 16 ms of every job's start-up.
    """

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = modules

    def find_spec(self, fullname, path=None, target=None):
        """Raise ImportError for a forbidden top-level module."""
        top = fullname.partition(".")[0]
        if top in self.modules and not _imported_by_library():
            raise ImportError(self.modules[top])
        return None


def _imported_by_library() -> bool:
    # numpy and friends may import optional modules themselves; only the student's own
    # code (a file under /job or a notebook cell) is refused.
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(("/job/", "/tmp/ipykernel_", "<ipython-input")):
            return False
        if "site-packages" in name or "/lib/python3" in name:
            return True
        frame = frame.f_back
    return False


def install_import_blocker(modules: dict[str, str]) -> None:
    """Put the forbidden-module finder first on sys.meta_path."""
    if modules:
        sys.meta_path.insert(0, ForbiddenImport(modules))


class Dispatcher:
    """Resolves paths and refs against a root namespace and runs requests."""

    def __init__(self, root: Any, max_blob_bytes: int = 256 << 20) -> None:
        self.root = root
        self.objects: dict[int, Any] = {}
        self.next_id = 1
        self.max_blob_bytes = max_blob_bytes

    def to_ref(self, obj: Any) -> Ref:
        """Keep a non-plain object here and hand out a handle on it."""
        ref_id, self.next_id = self.next_id, self.next_id + 1
        self.objects[ref_id] = obj
        return Ref(ref_id, type(obj).__name__)

    def from_ref(self, ref: Ref) -> Any:
        """The object behind a handle."""
        try:
            return self.objects[ref.id]
        except KeyError:
            raise WireError(f"unknown object handle {ref.id}") from None

    def names(self) -> list[str]:
        """Top-level names the submission defines."""
        return list(vars(self.root))

    def resolve(self, target: Any, path: list[str]) -> Any:
        """Follow attribute names from the target (or the root)."""
        obj = self.root if target is None else target
        for i, name in enumerate(path):
            try:
                obj = getattr(obj, name)
            except AttributeError:
                if target is None and i == 0:
                    raise LookupError("your submission defines no function, class or variable "
                                      f"named `{name}`") from None
                owner = ".".join(path[:i]) if i else f"a {type(target).__name__} object"
                raise LookupError(f"{owner} has no attribute `{name}`") from None
        return obj

    def handle(self, request: dict[str, Any]) -> Any:
        """Run one request and return its value."""
        op = request.get("op")
        target, path = request.get("target"), list(request.get("path", []))
        if op == "call":
            func = self.resolve(target, path)
            if not callable(func):
                raise TypeError(f"`{'.'.join(path) or 'object'}` is not callable")
            value = func(*request.get("args", ()), **request.get("kwargs", {}))
            # `keep`: the value stays here behind a handle, even when it is plain data (a
            # tensor that is part of an autograd graph, for the trusted side to drive).
            return self.to_ref(value) if request.get("keep") else value
        if op == "get":
            return self.resolve(target, path)
        if op == "put":
            return self.to_ref(request.get("value"))
        if op == "release":
            for ref_id in request.get("ids", []):
                self.objects.pop(ref_id, None)
            return None
        if op == "names":
            return sorted(n for n in self.names() if not n.startswith("_"))
        raise ValueError(f"unknown request {op!r}")

    def answer(self, request_frame_body: tuple[bytes, bytes], filename_hint: str) -> bytes:
        """Decode a request, run it, encode the response frame (never raises)."""
        header, blob = request_frame_body
        seq = frame_seq(header)  # echoed in the answer: the trusted side checks it
        try:
            request = decode_body(header, blob, Limits(), self.from_ref)
            value = self.handle(request)
            return encode_frame(_with_uses({"ok": True, "value": value}), self.to_ref,
                                self.max_blob_bytes, seq=seq)
        except SystemExit as exc:
            error = {"type": "SystemExit", "message": f"your code called sys.exit({exc.code!r})",
                     "traceback": ""}
        except BaseException as exc:  # the student's exception is the answer
            error = describe_exception(exc, filename_hint)
        return encode_frame(_with_uses({"ok": False, "error": error}), seq=seq)


def _with_uses(response: dict[str, Any]) -> dict[str, Any]:
    """Add the forbidden APIs the call reached (the trusted side fails the test on them)."""
    used = drain_forbidden()
    if used:
        response["forbidden"] = used
    return response

