"""Inside the sandbox: a notebook's cells run by IPython in this process, outputs recorded.

This is the warm notebook path. A Jupyter kernel is another Python that imports torch
again and talks over ZeroMQ; here the cells run in the guest itself, in an IPython shell
(magics, `display`, rich reprs, tracebacks as a kernel gives them), and each cell's
outputs are written into the notebook in nbformat's shapes, as nbclient would: streams
merged, `execute_result` with its count, `display_data`, `error` with the traceback.
The fork server imports this module, so a job forked from it starts with IPython loaded.
"""

from __future__ import annotations

import io
import sys

import nbformat
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

CELL_FILE_PREFIX = "<ipython-input"  # what IPython names a cell's code in tracebacks


class _Cell:
    """Where the running cell's outputs go (one per cell, swapped by the kernel)."""

    def __init__(self) -> None:
        self.outputs: list[Any] = []

    def stream(self, name: str, text: str) -> None:
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
            last["text"] += text
        else:
            self.outputs.append(nbformat.v4.new_output("stream", name=name, text=text))


class _Stream(io.TextIOBase):
    """sys.stdout or sys.stderr while a cell runs: text goes into the cell's outputs."""

    def __init__(self, kernel: Kernel, name: str) -> None:
        self._kernel, self._name = kernel, name

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._kernel.cell.stream(self._name, text)
        return len(text)


class _Publisher(DisplayPublisher):
    """`display(...)` and rich outputs become display_data outputs of the running cell."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        self.kernel.cell.outputs.append(
            nbformat.v4.new_output("display_data", data=dict(data), metadata=dict(metadata or {})))

    def clear_output(self, wait=False):
        self.kernel.cell.outputs.clear()


class _Hook(DisplayHook):
    """A cell's last expression becomes its execute_result (no Out[n]: prompt)."""

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.shell.kernel.cell.outputs.append(nbformat.v4.new_output(
            "execute_result", data=dict(format_dict), metadata=dict(md_dict or {}),
            execution_count=self.shell.execution_count))

    def finish_displayhook(self):
        pass


class _Shell(InteractiveShell):
    """IPython's shell with its tracebacks recorded as the cell's error output."""

    kernel: Kernel

    def _showtraceback(self, etype, evalue, stb):
        self.kernel.cell.outputs.append(nbformat.v4.new_output(
            "error", ename=getattr(etype, "__name__", str(etype)), evalue=str(evalue),
            traceback=list(stb)))

    def enable_gui(self, gui=None):
        pass


class Kernel:
    """An IPython shell in this process, recording each cell's outputs (one per process)."""

    def __init__(self) -> None:
        config = Config()
        config.HistoryManager.enabled = False  # no sqlite file, no saving thread
        config.InteractiveShell.colors = "NoColor"
        config.InteractiveShell.xmode = "Context"
        config.InteractiveShell.autocall = 0
        self.cell = _Cell()
        shell = _Shell.instance(config=config, displayhook_class=_Hook, display_pub_class=_Publisher)
        shell.kernel = self
        shell.display_pub.kernel = self
        self.shell = shell

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace: what its cells defined."""
        return self.shell.user_ns

    def run_cell(self, cell: Any) -> list[str]:
        """Run one code cell into its outputs; return its errors as 'Name: value'."""
        self.cell = _Cell()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Stream(self, "stdout"), _Stream(self, "stderr")
        try:
            result = self.shell.run_cell(cell.source, store_history=True)
        finally:
            sys.stdout, sys.stderr = saved
        cell.outputs = self.cell.outputs
        cell.execution_count = self.shell.execution_count - 1
        errors = [f"{o['ename']}: {o['evalue']}" for o in cell.outputs if o.get("output_type") == "error"]
        if not errors and not result.success:  # an error IPython did not show (rare)
            exc = result.error_before_exec or result.error_in_exec
            errors.append(f"{type(exc).__name__}: {exc}")
        return errors
