"""A student's file name: kept as they wrote it (Unicode, NFC), bounded in bytes, and sent back per RFC 6266.

The name is shown to people and given back on download; the worker writes the file under a
name of its own choosing from it. So the name keeps every letter the student used, but it
must fit a file system (ext4 allows 255 bytes a name; 200 leaves room for a prefix) and carry
nothing that changes how it reads: no control characters (a NUL also breaks PostgreSQL's
text columns), no line breaks, no bidirectional overrides (they make "hw\u202eyp.exe" read as
"hwexe.py"). Such a name is refused, not repaired: no file system a student saves to makes
one, so it comes from a crafted request, and a silent repair would store a name the student
never chose. A path is reduced to its last component, as RFC 7578 asks of a receiver (old
browsers sent "C:\\Users\\ann\\hw.py").
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote

MAX_NAME_BYTES = 200
DEFAULT_NAME = "submission"
# Explicit bidirectional formatting characters (Unicode TR9): embeddings, overrides, isolates.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# RFC 5987 attr-char beyond letters and digits: everything else is percent-encoded.
ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


class BadFileName(ValueError):
    """The upload's file name cannot be kept; the message says which character and what to do."""


def _refused(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in BIDI_CONTROLS


def _describe(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" {name}" if name else "")


def clean_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """The last path component, NFC-normalised and at most max_bytes of UTF-8; BadFileName if unusable."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: the client sent bytes that are not UTF-8
        raise BadFileName("the file name is not valid UTF-8 text; rename the file and upload it "
                          "again") from exc
    base = PurePosixPath(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base).strip()
    bad = next((c for c in base if _refused(c)), None)
    if bad is not None:
        raise BadFileName(f"the file name contains a control character ({_describe(bad)}); rename the "
                          "file to use only letters, digits, spaces and punctuation, and upload it again")
    return shorten(base or DEFAULT_NAME, max_bytes)


def shorten(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """name cut to max_bytes of UTF-8 at a character boundary, keeping its extension."""
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix.encode("utf-8")) < max_bytes // 2 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    room = max_bytes - len(suffix.encode("utf-8"))
    n = len(stem.encode("utf-8")[:room].decode("utf-8", "ignore"))  # whole code points that fit
    # Never part of a letter: when its combining marks do not all fit, the letter goes too.
    while 0 < n < len(stem) and unicodedata.combining(stem[n]):
        n -= 1
    return (stem[:n].rstrip() or DEFAULT_NAME) + suffix


def ascii_fallback(name: str) -> str:
    """An ASCII stand-in for name (accents dropped, the rest replaced) for clients without RFC 5987."""
    simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    simple = "".join(c if c.isprintable() and c not in '"\\/' else "_" for c in simple).strip()
    suffix = PurePosixPath(name).suffix
    if not simple or simple == suffix or simple.startswith("."):
        simple = DEFAULT_NAME + (suffix if suffix.isascii() else "")
    return simple


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII `filename` and the exact name as `filename*` (RFC 6266, RFC 5987)."""
    return (f'attachment; filename="{ascii_fallback(name)}"; '
            f"filename*=UTF-8''{quote(name, safe=ATTR_CHAR_SAFE)}")
