"""Inside the sandbox: execute a notebook with nbclient, then relay calls into its kernel.

The kernel runs in the same sandbox over ZeroMQ's `ipc` transport (unix sockets: no
network is needed). After the cells ran, each request is written to a file and a
one-line cell asks the kernel-side bridge to answer it from the notebook's namespace.
"""

from __future__ import annotations

import json
import os
import sys

from grader.guest.serve import read_frame, write_all
from grader.guest.wire import PREFIX, encode_frame, frame_seq

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

WORKDIR = "/tmp/.torchgrade"


def _error_outputs(cell: Any) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def _code_cell(source: str) -> Any:
    import nbformat

    return nbformat.v4.new_code_cell(source)


def _relay_output(cell: Any) -> None:
    """Pass what the kernel printed during a call on to our own stdout (the log)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            sys.stdout.write(out.get("text", ""))
    sys.stdout.flush()


def run_extra(client: Any, nb: Any, cell: Any) -> None:
    """Run a cell of ours in the kernel without touching the student's cells.

    nbclient writes outputs to nb.cells[index], so the cell is appended for the run
    and removed after.
    """
    nb.cells.append(cell)
    try:
        client.execute_cell(cell, len(nb.cells) - 1)
    finally:
        nb.cells.pop()


MAX_OUTPUT_CHARS = 20_000  # per output; the trusted side caps the whole notebook again


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


def execute(client: Any, nb: Any) -> dict[str, Any]:
    """Run every code cell; report cell errors and a dead kernel as the student's to fix."""
    from nbclient.exceptions import DeadKernelError

    cell_errors: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            return {"ready": False, "stage": "notebook", "cell_errors": cell_errors, "error": {
                "type": "DeadKernel", "traceback": "",
                "message": f"the kernel died while running cell {index + 1}: your code ended "
                           "the process (os._exit, a crash, or a memory or process limit)"}}
        except Exception as exc:  # a cell timeout or a protocol failure
            return {"ready": False, "stage": "notebook", "cell_errors": cell_errors, "error": {
                "type": type(exc).__name__, "traceback": "",
                "message": f"cell {index + 1} could not finish: {str(exc)[:500]}"}}
        cell_errors += [f"cell {index + 1} raised {e}" for e in _error_outputs(cell)]
    return {"ready": True, "cell_errors": cell_errors}


def run_notebook(config: dict[str, Any], rfd: int, wfd: int) -> int:
    """Execute the notebook, send the load report with the executed notebook, then relay."""
    import nbformat
    from nbclient import NotebookClient

    os.makedirs(WORKDIR, exist_ok=True)
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", WORKDIR + "/runtime")
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    nb = nbformat.read(config["path"], as_version=4)
    client = NotebookClient(nb, timeout=config.get("cell_timeout", 600), kernel_name="python3",
                            allow_errors=True, resources={"metadata": {"path": "/tmp"}})
    km = client.create_kernel_manager()
    km.transport, km.ip = "ipc", WORKDIR + "/kernel"
    req_path, resp_path = WORKDIR + "/request", WORKDIR + "/response"
    with client.setup_kernel():
        setup = _code_cell(
            "import grader.guest.bridge as __tg_bridge__\n"
            f"__tg_bridge__.setup({config.get('forbidden_modules', {})!r}, "
            f"{config.get('max_blob_bytes', 256 << 20)}, "
            f"{config.get('forbidden_calls', {})!r}, {config.get('forbidden_attributes', {})!r})"
        )
        run_extra(client, nb, setup)
        report = execute(client, nb)
        trim_outputs(nb)
        report["notebook"] = nbformat.writes(nb).encode()
        if report["ready"]:
            names = _code_cell(f"__tg_bridge__.names({resp_path!r})")
            run_extra(client, nb, names)
            with open(resp_path) as f:
                found = json.load(f)
            report["names"] = found["names"]
            if found["forbidden"]:
                report["forbidden"] = found["forbidden"]
        write_all(wfd, encode_frame(report, seq=0))
        if not report["ready"]:
            return 0
        call = _code_cell(f"__tg_bridge__.serve({req_path!r}, {resp_path!r})")
        while (body := read_frame(rfd)) is not None:
            header, blob = body
            with open(req_path, "wb") as f:
                f.write(PREFIX.pack(len(header), len(blob)) + header + blob)
            call.outputs = []
            try:
                run_extra(client, nb, call)
            except Exception as exc:
                write_all(wfd, encode_frame({"ok": False, "error": {
                    "type": "DeadKernel", "traceback": "",
                    "message": f"the notebook's kernel stopped answering: {str(exc)[:300]}"}},
                    seq=frame_seq(header)))
                return 0
            _relay_output(call)
            with open(resp_path, "rb") as f:
                write_all(wfd, f.read())
    return 0
