"""Inside the sandbox: run a notebook's cells in this process, then serve calls into it.

The cells run in an IPython shell here (grader.guest.kernel), not in a kernel process:
no second interpreter, no ZeroMQ, and a job forked from the warm fork server has
IPython and torch loaded before the submission arrives. The executed notebook, with
its outputs, goes back in the load report; every later call is answered from the
notebook's namespace, as a module's are from the module.
"""

from __future__ import annotations

import sys

from grader.guest.dispatch import Dispatcher, install_import_blocker
from grader.guest.forbid import drain as drain_forbidden
from grader.guest.forbid import install as install_forbidden
from grader.guest.kernel import CELL_FILE_PREFIX, Kernel
from grader.guest.wire import encode_frame

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

MAX_OUTPUT_CHARS = 20_000  # per output; the trusted side caps the whole notebook again
SHELL_NAMES = frozenset(("In", "Out", "exit", "quit", "get_ipython"))


class UserNamespace:
    """Attribute access onto the notebook's namespace (what the cells defined)."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self._ns = ns

    def __getattr__(self, name: str) -> Any:
        try:
            return self._ns[name]
        except KeyError:
            raise AttributeError(name) from None


class NotebookDispatcher(Dispatcher):
    """A dispatcher whose names are the notebook's, not IPython's own."""

    def names(self) -> list[str]:
        """Names the cells defined."""
        return [n for n in self.root._ns if not n.startswith("_") and n not in SHELL_NAMES]


def trim_outputs(nb: Any) -> None:
    """Cut long text outputs and drop large images so the executed notebook stays small."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if isinstance(out.get("text"), str) and len(out["text"]) > MAX_OUTPUT_CHARS:
                out["text"] = out["text"][:MAX_OUTPUT_CHARS] + "\n[output cut by the grader]\n"
            data = out.get("data") or {}
            for mime in list(data):
                value = data[mime]
                if isinstance(value, list):
                    value = "".join(value)
                if not isinstance(value, str) or len(value) <= MAX_OUTPUT_CHARS:
                    continue
                if mime == "text/plain":
                    data[mime] = value[:MAX_OUTPUT_CHARS] + "\n[output cut by the grader]"
                else:
                    del data[mime]  # a large image or HTML table: the text form stays


def execute(kernel: Kernel, nb: Any) -> dict[str, Any]:
    """Run every code cell in order; a cell's error is reported, and the next cells still run."""
    cell_errors: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell_errors += [f"cell {index + 1} raised {e}" for e in kernel.run_cell(cell)]
    return {"ready": True, "cell_errors": cell_errors}


def run_notebook(config: dict[str, Any], rfd: int, wfd: int) -> int:
    """Execute the notebook, send the load report with the executed notebook, then serve."""
    import nbformat

    from grader.guest.serve import serve, write_all

    forbidden = config.get("forbidden_modules", {})
    install_import_blocker(forbidden)
    install_forbidden(config.get("forbidden_calls", {}), config.get("forbidden_attributes", {}),
                      forbidden)
    try:
        nb = nbformat.read(config["path"], as_version=4)
    except Exception as exc:  # the trusted side checked it; a failure here is reported, not hidden
        report = {"ready": False, "stage": "notebook", "cell_errors": [], "error": {
            "type": type(exc).__name__, "traceback": "",
            "message": f"the notebook could not be read: {str(exc)[:300]}"}}
        write_all(wfd, encode_frame(report, seq=0))
        return 0
    kernel = Kernel()
    report = execute(kernel, nb)
    sys.stdout.flush()
    trim_outputs(nb)
    report["notebook"] = nbformat.writes(nb).encode()
    dispatcher = NotebookDispatcher(UserNamespace(kernel.user_ns), config.get("max_blob_bytes", 256 << 20))
    report["names"] = sorted(dispatcher.names())
    used = drain_forbidden()
    if used:
        report["forbidden"] = used
    write_all(wfd, encode_frame(report, seq=0))
    serve(dispatcher, rfd, wfd, CELL_FILE_PREFIX)
    return 0
