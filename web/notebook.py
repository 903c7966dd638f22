"""The executed notebook rendered safely: every text escaped, HTML and JavaScript outputs never run.

Markdown cells are rendered as Markdown through web.markdown (raw HTML off, then an allow-list
sanitiser); code cells and every output stay escaped text.

Rich outputs (text/html, application/javascript, image/svg+xml) are shown as a note, never as
markup: an SVG can carry script. PNG and JPEG images are embedded only when their payload is
strict base64, so nothing else can ride in the data: URL.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import nbformat
from markupsafe import Markup, escape

from web import markdown

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SAFE_IMAGES = ("image/png", "image/jpeg")
MAX_TEXT = 20_000


def _text(value: Any) -> str:
    text = "".join(value) if isinstance(value, list) else str(value or "")
    text = ANSI.sub("", text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n… (cut)"


def _image(mime: str, data: Any) -> str | None:
    payload = "".join(data) if isinstance(data, list) else str(data)
    payload = re.sub(r"\s+", "", payload)
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return f'<img alt="output image" src="data:{mime};base64,{escape(payload)}">'


def _output(out: dict[str, Any]) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return f'<pre class="nb-stream">{escape(_text(out.get("text")))}</pre>'
    if kind == "error":
        tb = "\n".join(_text(line) for line in out.get("traceback", []))
        head = f"{out.get('ename', '')}: {out.get('evalue', '')}"
        return f'<pre class="nb-error">{escape(_text(tb or head))}</pre>'
    data = out.get("data", {}) or {}
    for mime in SAFE_IMAGES:
        if mime in data and (img := _image(mime, data[mime])):
            return img
    if "text/plain" in data:
        return f'<pre class="nb-result">{escape(_text(data["text/plain"]))}</pre>'
    kinds = ", ".join(sorted(data)) or "nothing"
    return f'<p class="nb-note">(an output of type {escape(kinds)} is not shown)</p>'


def render(text: str | None) -> Markup:
    """HTML of an nbformat JSON notebook in which nothing the notebook holds can run."""
    if not text:
        return Markup("<p>No executed notebook.</p>")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # a malformed notebook is shown as text, never parsed further
        return Markup(f"<p>The executed notebook could not be read ({escape(str(exc)[:200])}).</p>")
    return Markup("".join(_cell(i, cell) for i, cell in enumerate(nb.cells, 1)))


def _cell(i: int, cell: dict[str, Any]) -> str:
    kind = cell.get("cell_type", "code")
    if kind == "markdown":
        body = f'<div class="nb-markdown-body">{markdown.render(_text(cell.get("source")))}</div>'
    else:
        body = f'<pre class="nb-source">{escape(_text(cell.get("source")))}</pre>'
    outputs = "".join(_output(o) for o in cell.get("outputs", []) or []) if kind == "code" else ""
    # Built only from escape()d pieces, fixed tags and web.markdown's sanitised HTML.
    return (f'<div class="nb-cell nb-{escape(kind)}"><div class="nb-label">[{i}] {escape(kind)}</div>'
            f"{body}{outputs}</div>")
