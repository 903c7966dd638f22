"""The assignment as a handout: its description, the starter files, the public tests, the check command.

Everything here is what `grader release` gives students (grader.release, an allow-list): the
description comes from the manifest or the starter, the zip is built by release() itself, so the
page can never offer a file the release would keep back (solution.py, tests/hidden).
"""

from __future__ import annotations

import ast
import io
import json
import logging
import tempfile
import zipfile
from pathlib import Path

from markupsafe import Markup

from grader.assignment import Assignment
from grader.notebooks import cells_of
from grader.release import release
from web import markdown
from web.errors import NotFound

log = logging.getLogger(__name__)
STARTERS = {"py": ("starter.py", "text/x-python"), "ipynb": ("starter.ipynb", "application/x-ipynb+json")}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the same bytes for the same files: no build time inside the zip
MY_WORK = "my_work"


def _manifest_description(a: Assignment) -> str:
    return a.description  # read with the manifest (grader.assignment.load_assignment)


def _notebook_description(a: Assignment) -> str:
    path = a.starter_notebook
    if not path.is_file():
        return ""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (ValueError, UnicodeDecodeError, AttributeError):
        log.warning("%s: starter.ipynb is not a readable notebook", a.slug)
        return ""
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            return ("".join(source) if isinstance(source, list) else str(source)).strip()
    return ""


def _module_description(a: Assignment) -> str:
    source = a.starter_module.read_text(encoding="utf-8")
    for kind, text in cells_of(source):
        if kind == "markdown":
            return text.strip()
    try:
        return (ast.get_docstring(ast.parse(source)) or "").strip()
    except SyntaxError:
        return ""


def _without_title(text: str, title: str) -> str:
    # The page's h1 is the title: a description that opens by repeating it drops that line, and
    # an opening h1 that says something else becomes an h2 (one h1 a page).
    first, _, rest = text.partition("\n")
    if not first.startswith("# "):
        return text
    return rest.strip() if first[2:].strip() == title.strip() else f"#{text}"


def description_source(a: Assignment) -> str:
    """The description's Markdown: the manifest's `description`, else the starter notebook's first
    Markdown cell, else the starter module's first Markdown cell or its docstring."""
    for find in (_manifest_description, _notebook_description, _module_description):
        if text := find(a):
            return _without_title(text, a.title)
    return ""


def description(a: Assignment) -> Markup:
    """The description as sanitised HTML (empty when the assignment has none)."""
    return markdown.render(description_source(a))


def starter(a: Assignment, kind: str) -> tuple[bytes, str, str]:
    """(content, download name, media type) of the starter module ("py") or notebook ("ipynb")."""
    if kind not in STARTERS:
        raise NotFound(f"No such starter file: .{kind}; there is a .py and an .ipynb")
    name, mimetype = STARTERS[kind]
    path = a.path / name
    if not path.is_file():
        raise NotFound(f"{a.slug} has no {name}")
    return path.read_bytes(), f"{a.slug}.{kind}", mimetype


def zip_name(a: Assignment) -> str:
    """The public tests' download name; it unzips into a folder named for the slug."""
    return f"{a.slug}.zip"


def public_zip(a: Assignment) -> bytes:
    """What `grader release` writes for the assignment, as a zip of the folder <slug>/."""
    # Built on each request: a release is a few small files (2 to 5 ms for each assignment here),
    # so a cache would only add a way to serve a stale suite.
    with tempfile.TemporaryDirectory(prefix="tg-release-") as tmp:
        release(a, Path(tmp))
        return _zip_folder(Path(tmp), a.slug)


def _zip_folder(root: Path, slug: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        # Folders too: the release's empty tests/hidden/ must exist for `grader check` to load it.
        for p in sorted((root / slug).rglob("*")):
            rel = p.relative_to(root).as_posix()
            info = zipfile.ZipInfo(rel + "/" if p.is_dir() else rel, date_time=ZIP_DATE)
            info.external_attr = ((0o40755 if p.is_dir() else 0o100644) << 16) | (0x10 if p.is_dir() else 0)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, b"" if p.is_dir() else p.read_bytes())
    return buf.getvalue()


def check_commands(a: Assignment) -> list[str]:
    """The shell lines a student runs to check work against the public tests, as the zip lays out."""
    return [f"unzip {zip_name(a)} && cd {a.slug}",
            f"cp starter.py {MY_WORK}.py  # then fill in {MY_WORK}.py",
            f"grader check {MY_WORK}.py"]


def check_elsewhere(a: Assignment) -> str:
    """The command for a file kept beside the unzipped folder (a starter downloaded on its own)."""
    return f"grader check {a.slug}.ipynb --assignment {a.slug}"
