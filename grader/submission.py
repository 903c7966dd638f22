"""Reading a submission's bytes: a module or a notebook, checked before anything runs."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from grader.errors import InvalidSubmission

MAX_BYTES = 5 << 20  # a notebook with plots fits easily; a dataset does not
MODULE, NOTEBOOK = "module", "notebook"


@dataclass(frozen=True)
class Submission:
    """A checked submission: its kind, its bytes and the Python source to check statically."""

    kind: str
    data: bytes
    source: str
    filename: str


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSubmission(
            f"your {what} is not UTF-8 text (bad byte at position {exc.start}); save it "
            "as UTF-8 and submit again") from None


def _notebook_source(text: str) -> str:
    import nbformat

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSubmission(
            f"your notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it may be damaged: open it in Jupyter, save it again and resubmit") from None
    if not isinstance(raw, dict) or "cells" not in raw:
        raise InvalidSubmission("this file is JSON but not a Jupyter notebook (it has no cells)")
    major = raw.get("nbformat")
    if major != 4:
        raise InvalidSubmission(
            f"your notebook is in nbformat {major}; this course needs nbformat 4 "
            "(any current Jupyter saves that: open it and save it again)")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types for one meaning
        raise InvalidSubmission(f"your notebook does not follow the notebook format: "
                                f"{str(exc).splitlines()[0][:300]}") from None
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    if not cells:
        raise InvalidSubmission("your notebook has no code cells")
    # IPython magics and shell escapes are not Python; blank them for the static checks.
    lines = []
    for cell in cells:
        for line in cell.splitlines():
            lines.append("" if line.lstrip().startswith(("%", "!")) else line)
        lines.append("")
    return "\n".join(lines)


def read_submission(filename: str, data: bytes, max_bytes: int = MAX_BYTES) -> Submission:
    """Check a submission's bytes; InvalidSubmission says what the student should do."""
    if len(data) > max_bytes:
        raise InvalidSubmission(
            f"your file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB "
            "(clear large outputs from the notebook: Kernel > Restart & Clear Output)")
    if not data.strip():
        raise InvalidSubmission("your file is empty")
    suffix = Path(filename).suffix.lower()
    text = _decode(data, "notebook" if suffix == ".ipynb" else "file")
    looks_json = text.lstrip().startswith("{")
    if suffix == ".ipynb" or (suffix != ".py" and looks_json):
        return Submission(NOTEBOOK, data, _notebook_source(text), filename)
    if suffix not in (".py", ""):
        raise InvalidSubmission(f"submit a .py module or a .ipynb notebook, not a {suffix} file")
    if looks_json and '"cells"' in text:
        raise InvalidSubmission("this .py file holds a notebook's JSON; rename it to .ipynb")
    return Submission(MODULE, data, text, filename)


def load_submission(path: Path, max_bytes: int = MAX_BYTES) -> Submission:
    """Read and check a submission file from disk."""
    path = Path(path)
    if not path.is_file():
        raise InvalidSubmission(f"no such file: {path}")
    if path.stat().st_size > max_bytes:
        raise InvalidSubmission(
            f"your file is {path.stat().st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
    return read_submission(path.name, path.read_bytes(), max_bytes)


def syntax_error(source: str) -> str | None:
    """A message for the first syntax error, None when the source parses."""
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return (f"syntax error on line {exc.lineno}: {exc.msg}: {(exc.text or '').strip()} "
                "(fix it so the file runs with `python`)")
    return None
