"""Code similarity within an assignment: pairs of students' counted submissions, ranked, the starter excluded.

The method is winnowing (Schleimer, Wilkerson, Aiken, "Winnowing: Local Algorithms for Document
Fingerprinting", SIGMOD 2003), the one behind MOSS: hash every run of K tokens (a k-gram) and keep
the smallest hash of each window of W consecutive k-grams. Any run of at least K + W - 1 tokens two
files share yields a shared fingerprint; runs shorter than K never do (the paper's noise threshold).

Tokens come from Python's own tokenizer: every identifier becomes one symbol and every literal
another, comments and layout are dropped, so renaming variables, rewording comments, reformatting
or reordering functions does not hide a copy. Keywords, operators, attribute names (`.dot`) and
builtins stay as written: they are what a renaming leaves alone and what tells honest solutions apart.

Every k-gram of the starter (starter.py and the starter notebook's code cells) is removed from each
submission's fingerprints, not only the starter's winnowed ones: a k-gram the starter's own windows
did not pick could still be picked in a student's file.

copydetect (a maintained library of the same method) was weighed and not used: it hashes characters
of a pygments-filtered string rather than tokens, removes only the boilerplate's winnowed
fingerprints, and its detector module pulls in matplotlib at import.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import io
import json
import keyword
import re
import threading
import time
import tokenize
import warnings
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.assignment import Assignment
from web.errors import NotFound
from web.models import User
from web.services import gradebook
from web.services.course import CourseAssignment
from workers.models import Submission

K = 10  # tokens a k-gram: shorter common runs (`x = np.zeros(n)`) are idiom, not copying
W = 6  # the window: every common run of K + W - 1 = 15 tokens is found
FLOOR = 0.2  # pairs whose mean share is below this are not listed
TOP = 50  # pairs shown unless asked for more
MAX_TOP = 1000
COLOURS = 6  # highlight classes m0..m5 in similarity.css
IDENT, LITERAL = "N", "L"
PRIME, BASE = (1 << 61) - 1, 1_000_003  # the rolling hash: a Mersenne prime modulus
KEEP_NAMES = frozenset(dir(builtins))
LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
          tokenize.ENCODING, tokenize.ENDMARKER}
# Python 3.12 splits f-strings into pieces; the start stands for the literal, the rest is dropped.
FSTRING_PARTS = {getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
FSTRING_START = getattr(tokenize, "FSTRING_START", None)
# Lines IPython runs that are not Python: line magics, shell escapes, `x = !ls`, `x = %time f()`.
MAGIC_LINE = re.compile(r"^\s*(?:%|![^=]|[\w.]+\s*=\s*(?:%|![^=]))")
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}  # cell magics whose body is Python
# The fallback tokenizer, for files Python's tokenizer gives up on (an unterminated string, bad dedent).
FALLBACK = re.compile(r"""(?P<skip>\s+|\#[^\n]*)|(?P<str>'''.*?(?:'''|\Z)|\"\"\".*?(?:\"\"\"|\Z)"""
                      r"""|'[^'\n]*'?|"[^"\n]*"?)|(?P<num>\d[\w.]*)|(?P<name>[^\W\d]\w*)|(?P<op>.)""",
                      re.DOTALL)


@dataclass(frozen=True)
class Token:
    """A normalised token and where its text lies in the code (character offsets)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Analysis:
    """A file's code as compared: its text, tokens, k-gram hashes, fingerprints, and a note on it."""

    code: str
    tokens: tuple[Token, ...]
    hashes: tuple[int, ...]  # the hash of the k-gram starting at each token
    fingerprints: frozenset[int]  # winnowed, the starter's k-grams removed
    note: str | None = None


@dataclass(frozen=True)
class Document:
    """One submission in a ranking: whose, which file, its fingerprints and a note."""

    submission_id: int
    owner: str
    filename: str
    fingerprints: frozenset[int]
    note: str | None = None


@dataclass(frozen=True)
class Pair:
    """Two documents and the share of each one's fingerprints that the other has."""

    a: Document
    b: Document
    shared: int

    @property
    def share_a(self) -> float:
        """The share of a's fingerprints also in b."""
        return self.shared / len(self.a.fingerprints)

    @property
    def share_b(self) -> float:
        """The share of b's fingerprints also in a."""
        return self.shared / len(self.b.fingerprints)

    @property
    def score(self) -> float:
        """What pairs are ranked by: the mean of both shares (a short file inside a long one is not 100%)."""
        return (self.share_a + self.share_b) / 2


@dataclass(frozen=True)
class Report:
    """An assignment's ranked pairs, the documents compared, and how long the comparison took."""

    documents: tuple[Document, ...]
    pairs: tuple[Pair, ...]  # every pair at or above the floor, best first
    seconds: float

    def notes(self) -> list[Document]:
        """The documents with something to say about them (no parse, nothing beyond the starter)."""
        return [d for d in self.documents if d.note]


@dataclass(frozen=True)
class Side:
    """One column of the side-by-side view: the document, its share, its lines as (text, colour) pieces."""

    document: Document
    share: float
    lines: list[list[tuple[str, int | None]]]


def extract_code(filename: str, content: bytes) -> tuple[str, str | None]:
    """The Python a submission holds (a notebook's code cells joined, magics dropped), and a note."""
    text = content.decode("utf-8", "replace")
    if not filename.lower().endswith(".ipynb"):
        return text, None
    try:
        cells = [c for c in json.loads(text)["cells"] if c.get("cell_type") == "code"]
        sources = ["".join(c.get("source", "")) if isinstance(c.get("source"), list)
                   else str(c.get("source", "")) for c in cells]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return "", f"not a readable notebook ({type(exc).__name__}), so nothing of it was compared"
    return "\n\n".join(f"# In [{i}]\n{_drop_magics(s)}" for i, s in enumerate(sources, 1)), None


def _drop_magics(source: str) -> str:
    lines = source.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        if first[2:].split(" ")[0] not in PYTHON_CELL_MAGICS:
            return ""  # %%bash, %%html, %%writefile...: not Python
        lines = lines[lines.index(next(line for line in lines if line.strip())) + 1:]
    return "\n".join("" if MAGIC_LINE.match(line) else line for line in lines)


def tokens_of(code: str) -> tuple[list[Token], str | None]:
    """The code's normalised tokens, and a note when Python's tokenizer gave up (a fallback then)."""
    offsets = [0]
    for line in code.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    out: list[Token] = []
    after_dot = False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            text = _normalise(tok.type, tok.string, after_dot)
            if text is not None:
                start = offsets[tok.start[0] - 1] + tok.start[1]
                out.append(Token(text, start, offsets[tok.end[0] - 1] + tok.end[1]))
                after_dot = tok.string == "."
    except (tokenize.TokenError, SyntaxError) as exc:  # IndentationError is a SyntaxError
        return _fallback_tokens(code), f"Python's tokenizer stopped ({exc.args[0]}); read as plain tokens"
    return out, None


def _normalise(kind: int, text: str, after_dot: bool) -> str | None:
    if kind in LAYOUT or kind in FSTRING_PARTS or text.isspace() or not text:
        return None
    if kind == tokenize.NAME:
        keep = keyword.iskeyword(text) or after_dot or text in KEEP_NAMES
        return text if keep else IDENT
    if kind in (tokenize.NUMBER, tokenize.STRING, FSTRING_START):
        return LITERAL
    return text


def _fallback_tokens(code: str) -> list[Token]:
    out: list[Token] = []
    for m in FALLBACK.finditer(code):
        kind = m.lastgroup
        if kind == "skip":
            continue
        text = m.group()
        if kind == "name":
            keep = keyword.iskeyword(text) or text in KEEP_NAMES or (out and out[-1].text == ".")
            text = text if keep else IDENT
        elif kind in ("str", "num"):
            text = LITERAL
        out.append(Token(text, m.start(), m.end()))
    return out


def kgram_hashes(tokens: list[Token] | tuple[Token, ...], k: int = K) -> list[int]:
    """The hash of each run of k tokens, in order (none when there are fewer than k).

    A rolling Karp-Rabin hash, as in the paper, over CRC-32s of the tokens: the same in every
    process (Python's own hash() is salted per process, so two web workers would disagree).
    """
    values = [_token_value(t.text) for t in tokens]
    if len(values) < k:
        return []
    top = pow(BASE, k - 1, PRIME)
    h = 0
    for v in values[:k]:
        h = (h * BASE + v) % PRIME
    out = [h]
    for old, new in zip(values, values[k:], strict=False):
        h = ((h - old * top) * BASE + new) % PRIME
        out.append(h)
    return out


@functools.lru_cache(maxsize=4096)
def _token_value(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) + 1


def winnow(hashes: list[int], w: int = W) -> set[int]:
    """The fingerprints: the smallest hash of every window of w consecutive hashes.

    The paper's robust winnowing also says which of equal minima to record (the rightmost); only
    the hash values are compared here, so any of them is the same fingerprint.
    """
    return {min(hashes[i:i + w]) for i in range(max(1, len(hashes) - w + 1))} if hashes else set()


def starter_kgrams(assignment: Assignment) -> frozenset[int]:
    """Every k-gram hash of the starter module and of the starter notebook's code cells."""
    found: set[int] = set()
    for path in (assignment.starter_module, assignment.starter_notebook):
        if path.is_file():
            code, _ = extract_code(path.name, path.read_bytes())
            found.update(kgram_hashes(tokens_of(code)[0]))
    return frozenset(found)


def analyse(filename: str, content: bytes, starter: frozenset[int]) -> Analysis:
    """A file fingerprinted, with the starter's k-grams left out, and a note on what went wrong."""
    code, note = extract_code(filename, content)
    toks, tok_note = tokens_of(code)
    hashes = kgram_hashes(toks)
    prints = frozenset(winnow(hashes) - starter)
    notes = [n for n in (note, tok_note, _parse_note(code) if note is None else None) if n]
    if not prints and note is None:
        notes.append("nothing of its own beyond the starter, so it matches no one")
    return Analysis(code, tuple(toks), tuple(hashes), prints, "; ".join(notes) or None)


def document(submission_id: int, owner: str, filename: str, content: bytes,
             starter: frozenset[int]) -> Document:
    """A submission as ranked; the same bytes are fingerprinted once a process (CACHE)."""
    key = (hashlib.blake2b(content, digest_size=16).digest(), filename.lower().endswith(".ipynb"),
           hash(starter))
    found = CACHE.get(key)
    if found is None:
        a = analyse(filename, content, starter)
        found = (a.fingerprints, a.note)
        CACHE.put(key, found)
    return Document(submission_id, owner, filename, *found)


def _parse_note(code: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the student's SyntaxWarnings
            ast.parse(code)
    except SyntaxError as exc:
        return f"syntax error on line {exc.lineno}: {exc.msg} (compared all the same)"
    except (RecursionError, MemoryError, ValueError) as exc:
        return f"Python cannot parse it ({type(exc).__name__}); compared all the same"
    return None


def rank(documents: list[Document] | tuple[Document, ...], floor: float = FLOOR) -> list[Pair]:
    """Every pair whose mean share is at least floor, best first."""
    pairs = []
    for a, b in combinations([d for d in documents if d.fingerprints], 2):
        shared = len(a.fingerprints & b.fingerprints)
        if shared:
            pair = Pair(a, b, shared)
            if pair.score >= floor:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, -p.shared, p.a.submission_id, p.b.submission_id))
    return pairs


class _Cache:
    """Fingerprints by the file's digest, a few thousand files a process: a submission never changes,
    so a class's page after one new submission fingerprints only that one."""

    def __init__(self, size: int = 4096) -> None:
        self.size, self.lock = size, threading.Lock()
        self.items: OrderedDict[tuple, tuple[frozenset[int], str | None]] = OrderedDict()

    def get(self, key: tuple) -> tuple[frozenset[int], str | None] | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: tuple, value: tuple[frozenset[int], str | None]) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


CACHE = _Cache()


def counted_submissions(session: Session, ca: CourseAssignment, students: list[User]) -> dict[str, int]:
    """Each student's submission that counts in the gradebook (best or last, late penalty applied)."""
    book = gradebook.build(session, [ca], students)
    # A score override can stand without any graded submission: nothing of that student's to compare.
    return {str(uid): cell.submission_id for (uid, _), cell in book.cells.items()
            if cell.submission_id is not None}


def for_assignment(session: Session, ca: CourseAssignment, students: list[User]) -> Report:
    """Every pair of the students' counted submissions ranked, timed."""
    started = time.perf_counter()
    ids = sorted(counted_submissions(session, ca, students).values())
    starter = starter_kgrams(ca.assignment)
    rows = session.execute(select(Submission.id, Submission.owner, Submission.filename, Submission.content)
                           .where(Submission.id.in_(ids)).order_by(Submission.id)) if ids else []
    docs = [document(i, owner or "", name, content, starter) for i, owner, name, content in rows]
    return Report(tuple(docs), tuple(rank(docs)), time.perf_counter() - started)


def _submission(session: Session, slug: str, submission_id: int) -> Submission:
    sub = session.get(Submission, submission_id)
    if sub is None or sub.assignment != slug:
        raise NotFound(f"No submission {submission_id} to {slug}")
    return sub


def side_by_side(session: Session, ca: CourseAssignment, a_id: int, b_id: int) -> tuple[Side, Side, Pair]:
    """Two submissions of the assignment with their common code highlighted (colours matched)."""
    if a_id == b_id:
        raise NotFound("No such pair: a submission is compared with another one")
    starter = starter_kgrams(ca.assignment)
    subs = [_submission(session, ca.slug, i) for i in (a_id, b_id)]
    a, b = (analyse(s.filename, s.content, starter) for s in subs)
    doc_a, doc_b = (Document(s.id, s.owner or "", s.filename, x.fingerprints, x.note)
                    for s, x in zip(subs, (a, b), strict=True))
    pair = Pair(doc_a, doc_b, len(a.fingerprints & b.fingerprints))
    # Every k-gram (not only the winnowed ones) whose hash is shared is highlighted, so runs read whole.
    common = (set(a.hashes) & set(b.hashes)) - starter if pair.shared else set()
    blocks_a, colour_of = _blocks(a, common, {})
    blocks_b, _ = _blocks(b, common, colour_of)
    return (Side(doc_a, pair.share_a if pair.shared else 0.0, _lines(a.code, blocks_a)),
            Side(doc_b, pair.share_b if pair.shared else 0.0, _lines(b.code, blocks_b)), pair)


Block = tuple[int, int, int]  # start and end offsets in the code, colour


def _blocks(doc: Analysis, common: set[int], colour_of: dict[int, int]) -> tuple[list[Block], dict[int, int]]:
    """Passages of tokens covered by common k-grams, coloured.

    The first side (colour_of empty) gives each passage a colour and returns the colour of every
    common k-gram; the second side colours each token by the k-gram covering it, so a passage
    reads in the same colour on both sides even where the two sides order their passages differently.
    """
    starts = [i for i, h in enumerate(doc.hashes) if h in common]
    colours: list[int | None] = [None] * len(doc.tokens)
    own: dict[int, int] = {}
    if not colour_of:
        covered = [False] * len(doc.tokens)
        for i in starts:
            covered[i:i + K] = [True] * K
        for n, (first, last, _) in enumerate(_runs(covered)):
            colours[first:last + 1] = [n % COLOURS] * (last + 1 - first)
        own = {doc.hashes[i]: colours[i] for i in reversed(starts)}  # reversed: the first one wins
    else:
        for i in starts:
            for j in range(i, i + K):
                colours[j] = colour_of.get(doc.hashes[i], 0) if colours[j] is None else colours[j]
    return [(doc.tokens[first].start, doc.tokens[last].end, colour)
            for first, last, colour in _runs(colours)], own


def _runs(values: list) -> list[tuple[int, int, Any]]:
    """(first, last, value) of each run of one value that is neither None nor False."""
    runs: list[tuple[int, int, Any]] = []
    for i, v in enumerate(values):
        if v is None or v is False:
            continue
        if runs and runs[-1][1] == i - 1 and runs[-1][2] == v:
            runs[-1] = (runs[-1][0], i, v)
        else:
            runs.append((i, i, v))
    return runs


def _lines(code: str, blocks: list[Block]) -> list[list[tuple[str, int | None]]]:
    """The code as lines of (text, colour or None) pieces, for a template to escape and wrap."""
    pieces: list[tuple[str, int | None]] = []
    at = 0
    for start, end, colour in blocks:
        pieces += [(code[at:start], None), (code[start:end], colour)]
        at = end
    pieces.append((code[at:], None))
    lines: list[list[tuple[str, int | None]]] = [[]]
    for text, colour in pieces:
        for n, part in enumerate(text.split("\n")):
            if n:
                lines.append([])
            if part:
                lines[-1].append((part, colour))
    return lines


def bounded_top(raw: str | None) -> tuple[int, str | None]:
    """How many pairs to show from a ?top= value, and a message when it was not usable."""
    if raw is None or raw == "":
        return TOP, None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        return TOP, f"top must be a whole number from 1 to {MAX_TOP}; showing the top {TOP}"
    return int(raw), None
