"""Reading a submission's bytes: a module or a notebook, checked before anything runs.

`load_submission` is the one way to read a submission file: it opens the file once without
following links, refuses anything but a regular file (a symlink to the reference solution,
a FIFO that would block the grader, a device, a directory), and returns its bytes in
`Submission.data`; the sandbox is handed those bytes, never the path again.

Everything here runs on the trusted side before the sandbox starts, so the work it does on a
submission is bounded: file size, source size, and, for a notebook, the cell count, each code
cell's size, the outputs and the JSON nesting are checked cheaply on the parsed JSON before
nbformat validates it (validating 10^5 cells cost about 10 s of trusted CPU). Code nested too
deeply for Python's parser is refused here too, with a message, instead of crashing the grader.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import InvalidSubmission
from grader.static_checks import UnreadableCode, read_code

MAX_BYTES = 5 << 20  # a notebook with plots fits easily; a dataset does not
# A solution to any exercise of the course is under 10,000 characters; reading and checking
# code costs the trusted side about 2 s a megabyte here, so these leave room and bound it.
MAX_SOURCE_CHARS = 300_000  # a module, or a notebook's code cells together
MAX_CELLS = 1000
MAX_CELL_CHARS = 100_000  # one code cell's source
MAX_OUTPUTS = 2000  # outputs in the whole notebook (they are thrown away: the grader runs it afresh)
MAX_JSON_VALUES = 250_000  # numbers, strings, lists and objects in the notebook's JSON
MAX_JSON_DEPTH = 64  # a notebook's own structure is about 6 deep; output data a few more
MODULE, NOTEBOOK = "module", "notebook"
CLEAR_OUTPUTS = "clear the outputs (Kernel > Restart & Clear Output), save and submit again"
# PEP 263: a coding declaration on the first or second line changes how Python decodes the file.
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)


class CellSource(str):
    """A notebook's code as one text (percent-format cells), carrying the cells themselves.

    Static checks read each cell on its own (`.cells`); anything else can use it as text.
    """

    cells: tuple[str, ...]

    def __new__(cls, cells: tuple[str, ...]) -> CellSource:
        """The cells joined as a percent-format module, with the cells kept."""
        text = super().__new__(cls, "".join(f"# %%\n{c}\n\n" for c in cells))
        text.cells = cells
        return text


@dataclass(frozen=True)
class Submission:
    """A checked submission: its kind, its bytes and the Python source to check statically.

    `cells` holds a notebook's code cells (a module's whole text for a module), and `source`
    their text: for a notebook a CellSource, which `find_violations` reads cell by cell.
    """

    kind: str
    data: bytes
    source: str
    filename: str
    cells: tuple[str, ...] = ()


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSubmission(
            f"your {what} is not UTF-8 text (bad byte at position {exc.start}); save it "
            "as UTF-8 and submit again") from None


def _check_module_text(text: str) -> str:
    """The text Python would run for these bytes; refuse what it would read differently."""
    text = text.removeprefix("\ufeff")  # Python accepts a UTF-8 byte order mark
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InvalidSubmission(
            f"your file contains a null byte (line {line}), so it is not a Python source file; "
            "save it again as plain UTF-8 text and submit again")
    for line in text.split("\n", 2)[:2]:
        match = _CODING.match(line)
        if match and not re.fullmatch(r"utf[-_]?8([-_].*)?", match.group(1).lower()):
            raise InvalidSubmission(
                f"your file declares the encoding {match.group(1)!r}; the grader reads submissions "
                "as UTF-8: remove the coding line, save the file as UTF-8 and submit again")
        if match or line.strip() and not line.lstrip().startswith("#"):
            break
    return text


def _too_large(what: str, size: int, limit: int, hint: str) -> InvalidSubmission:
    return InvalidSubmission(f"{what} is {size:,} characters; the limit is {limit:,} ({hint})")


def _check_source(text: str) -> None:
    if len(text) > MAX_SOURCE_CHARS:
        raise _too_large("your code", len(text), MAX_SOURCE_CHARS,
                         "keep data in files the code reads or generates, not in the source")


def _json_shape(raw: Any) -> tuple[int, int]:
    """(values, deepest nesting) of parsed JSON, iteratively; stops counting past the limits."""
    values, deepest = 0, 0
    stack = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        values += 1
        deepest = max(deepest, depth)
        if values > MAX_JSON_VALUES or deepest > MAX_JSON_DEPTH:
            break
        if isinstance(node, dict):
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]
    return values, deepest


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _check_counts(cells: list) -> None:
    """Bound the cells and outputs nbformat will validate one by one (each costs about 0.1 ms)."""
    if len(cells) > MAX_CELLS:
        raise InvalidSubmission(
            f"your notebook has {len(cells):,} cells; the limit is {MAX_CELLS:,}: merge or delete "
            "cells (scratch work belongs in another notebook) and submit again")
    outputs = sum(len(c["outputs"]) for c in cells
                  if isinstance(c, dict) and isinstance(c.get("outputs"), list))
    if outputs > MAX_OUTPUTS:
        raise InvalidSubmission(f"your notebook holds {outputs:,} outputs; the limit is "
                                f"{MAX_OUTPUTS:,}: {CLEAR_OUTPUTS}")


def _check_code_cells(cells: list) -> None:
    """Bound each code cell, and all of them, that the static checks will read."""
    code = 0
    for index, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        text = _cell_text(cell)
        if len(text) > MAX_CELL_CHARS:
            raise _too_large(f"cell {index} of your notebook", len(text), MAX_CELL_CHARS,
                             "split it into smaller cells; keep data in files, not in the source")
        if "\0" in text:
            raise InvalidSubmission(f"cell {index} of your notebook contains a null byte, which "
                                    "Python cannot run; delete it and submit again")
        code += len(text)
    if code > MAX_SOURCE_CHARS:
        raise _too_large("the code in your notebook's cells", code, MAX_SOURCE_CHARS,
                         "keep data in files the code reads or generates, not in the source")


def _parse_notebook_json(text: str) -> dict:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSubmission(
            f"your notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it may be damaged: open it in Jupyter, save it again and resubmit") from None
    except (RecursionError, MemoryError):
        raise InvalidSubmission(
            "your file is nested too deeply for the grader to read: its JSON nests lists or "
            f"objects far deeper than a notebook does (the limit is {MAX_JSON_DEPTH}); "
            f"{CLEAR_OUTPUTS}, or save the notebook again from Jupyter") from None
    if not isinstance(raw, dict) or "cells" not in raw:
        raise InvalidSubmission("this file is JSON but not a Jupyter notebook (it has no cells)")
    major = raw.get("nbformat")
    if major != 4:
        raise InvalidSubmission(
            f"your notebook is in nbformat {major}; this course needs nbformat 4 "
            "(any current Jupyter saves that: open it and save it again)")
    return raw


def _check_notebook_shape(raw: dict) -> None:
    """Bound the notebook on its parsed JSON, cheaply and without recursion, before nbformat."""
    cells = raw["cells"] if isinstance(raw["cells"], list) else []
    _check_counts(cells)
    values, depth = _json_shape(raw)
    if depth > MAX_JSON_DEPTH:
        raise InvalidSubmission(
            f"your file is nested too deeply for the grader to read: its JSON nests more than "
            f"{MAX_JSON_DEPTH} levels deep (a notebook needs about 6); {CLEAR_OUTPUTS}, and keep "
            "deeply nested data out of cell metadata")
    if values > MAX_JSON_VALUES:
        raise InvalidSubmission(
            f"your notebook's JSON holds more than {MAX_JSON_VALUES:,} values (lines of output, "
            f"metadata entries); {CLEAR_OUTPUTS}")
    _check_code_cells(cells)


def _notebook_cells(text: str) -> tuple[str, ...]:
    """The code cells of a notebook, after cheap bounds and nbformat's own validation."""
    raw = _parse_notebook_json(text)
    _check_notebook_shape(raw)
    import nbformat  # here: importing it costs more than refusing a notebook over the bounds
    try:
        nb = nbformat.from_dict(raw)  # the JSON is parsed once; nbformat.reads would parse it again
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types for one meaning
        raise InvalidSubmission(f"your notebook does not follow the notebook format: "
                                f"{str(exc).splitlines()[0][:300]}") from None
    cells = tuple(_cell_text(c) for c in nb.cells if c.get("cell_type") == "code")
    if not cells:
        raise InvalidSubmission("your notebook has no code cells")
    return cells


def _readable(cells: tuple[str, ...], *, notebook: bool) -> None:
    try:
        read_code(cells, notebook=notebook)
    except UnreadableCode as exc:
        raise InvalidSubmission(str(exc)) from None


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
        cells = _notebook_cells(text)
        _readable(cells, notebook=True)
        return Submission(NOTEBOOK, data, CellSource(cells), filename, cells)
    if suffix not in (".py", ""):
        raise InvalidSubmission(f"submit a .py module or a .ipynb notebook, not a {suffix} file")
    if looks_json and '"cells"' in text:
        raise InvalidSubmission("this .py file holds a notebook's JSON; rename it to .ipynb")
    text = _check_module_text(text)
    _check_source(text)
    _readable((text,), notebook=False)
    return Submission(MODULE, data, text, filename, (text,))


def _refuse_kind(mode: int, path: Path) -> None:
    """Refuse anything but a regular file, saying what it is."""
    kinds = [(stat.S_ISLNK, "a symbolic link; submit the file itself, not a link to it"),
             (stat.S_ISDIR, "a folder; submit the .py or .ipynb file inside it"),
             (stat.S_ISFIFO, "a named pipe (FIFO), not a file; submit a .py or .ipynb file"),
             (stat.S_ISSOCK, "a socket, not a file; submit a .py or .ipynb file"),
             (stat.S_ISCHR, "a device, not a file; submit a .py or .ipynb file"),
             (stat.S_ISBLK, "a device, not a file; submit a .py or .ipynb file")]
    for test, what in kinds:
        if test(mode):
            raise InvalidSubmission(f"{path.name} is {what}")
    if not stat.S_ISREG(mode):
        raise InvalidSubmission(f"{path.name} is not a regular file; submit a .py or .ipynb file")


def _open_no_follow(path: Path) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidSubmission(f"{path.name} is a symbolic link; submit the file itself, "
                                    "not a link to it") from None
        raise InvalidSubmission(f"cannot read {path.name}: {exc.strerror}") from None


def _read_fd(fd: int, path: Path, max_bytes: int) -> bytes:
    """The file's bytes, read once from the descriptor, refusing links and anything over the limit."""
    st = os.fstat(fd)
    _refuse_kind(st.st_mode, path)  # it may have been swapped since the lstat
    if st.st_nlink > 1:
        raise InvalidSubmission(f"{path.name} has other hard links to it; submit a copy of the "
                                "file itself (cp it to a new name), not a link")
    if st.st_size > max_bytes:
        raise InvalidSubmission(
            f"your file is {st.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
    chunks, size = [], 0
    while size <= max_bytes:
        chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_file_no_follow(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """A submission file's bytes, read once, refusing links and anything but a regular file."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise InvalidSubmission(f"no such file: {path}") from None
    except OSError as exc:
        raise InvalidSubmission(f"cannot read {path.name}: {exc.strerror}") from None
    _refuse_kind(mode, path)  # before opening: opening a FIFO or a device can block or act
    fd = _open_no_follow(path)
    try:
        return _read_fd(fd, path, max_bytes)
    finally:
        os.close(fd)


def load_submission(path: Path, max_bytes: int = MAX_BYTES) -> Submission:
    """Read a submission file once, without following links, and check it; the bytes are in .data."""
    path = Path(path)
    return read_submission(path.name, read_file_no_follow(path, max_bytes), max_bytes)


def syntax_error(source: str) -> str | None:
    """A message for the first syntax error, None when the source parses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the student's SyntaxWarnings are not the grader's log
            ast.parse(source)
    except SyntaxError as exc:
        return (f"syntax error on line {exc.lineno}: {exc.msg}: {(exc.text or '').strip()} "
                "(fix it so the file runs with `python`)")
    except (RecursionError, MemoryError, ValueError) as exc:
        return (f"the grader could not read your file ({type(exc).__name__}): split deeply nested "
                "expressions into steps with intermediate variables")
    return None
