"""The assignment format: `assignments/<slug>/assignment.toml` and the files beside it.

Layout of one assignment folder:

    assignment.toml      manifest (see `Manifest`)
    starter.py           what students fill in (percent-format cells)
    starter.ipynb        the same as a notebook
    solution.py          the reference solution (never leaves the grading side)
    tests/public/        tests students get with `grader release`
    tests/hidden/        tests only the service runs
    examples/            typical-mistake submissions with the score each must get
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader.errors import InvalidAssignment
from grader.sandbox.limits import Limits

log = logging.getLogger(__name__)

DEVICES = ("cpu", "gpu")
MANIFEST = "assignment.toml"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "assignments"


@dataclass(frozen=True)
class Forbidden:
    """APIs a lesson forbids, each with the reason shown to the student."""

    modules: dict[str, str] = field(default_factory=dict)
    calls: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TimingRule:
    """A timing threshold: the student's time over the reference's, at most max_ratio."""

    name: str
    max_ratio: float
    repeat: int = 5
    margin: float = 2.0


@dataclass(frozen=True)
class LatePolicy:
    """How lateness is scored: a penalty per day late, and a last day accepted."""

    penalty_per_day: float = 0.0
    max_days_late: float = 0.0


@dataclass(frozen=True)
class Assignment:
    """One exercise, loaded from its folder."""

    slug: str
    path: Path
    title: str
    points: float
    device: str
    limits: Limits
    forbidden: Forbidden
    timing: dict[str, TimingRule]
    due: datetime | None
    late: LatePolicy
    topic: str = ""
    functions: tuple[str, ...] = ()
    description: str = ""  # Markdown for the web's handout; empty: the starter's own words

    @property
    def starter_module(self) -> Path:
        """The starter module students fill in."""
        return self.path / "starter.py"

    @property
    def starter_notebook(self) -> Path:
        """The starter notebook students fill in."""
        return self.path / "starter.ipynb"

    @property
    def solution(self) -> Path:
        """The reference solution (grading side only)."""
        return self.path / "solution.py"

    def test_dir(self, suite: str) -> Path:
        """tests/public or tests/hidden."""
        return self.path / "tests" / suite

    def suite_version(self) -> str:
        """A short hash of the manifest, solution and tests: which tests gave a score."""
        digest = hashlib.sha256()
        files = [self.path / MANIFEST, self.solution]
        files += sorted(self.path.glob("tests/**/*.py"))
        for f in files:
            if f.exists():
                digest.update(f.relative_to(self.path).as_posix().encode())
                digest.update(f.read_bytes())
        return digest.hexdigest()[:12]


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidAssignment(f"{where}: [{key}] must be a table")
    return value


def _str_map(data: dict[str, Any], key: str, where: str) -> dict[str, str]:
    value = _table(data, key, where)
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidAssignment(f"{where}: {key}.{k} must be the message shown to students")
    return dict(value)


def _due(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidAssignment(f"{where}: due {value!r} is not an ISO date-time") from None
    if not isinstance(value, datetime):
        raise InvalidAssignment(f"{where}: due must be a date-time like 2026-12-01T23:59:00Z")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _timing(data: dict[str, Any], where: str) -> dict[str, TimingRule]:
    rules = {}
    for name, rule in _table(data, "timing", where).items():
        if not isinstance(rule, dict) or not isinstance(rule.get("max_ratio"), (int, float)):
            raise InvalidAssignment(f"{where}: [timing.{name}] needs a numeric max_ratio")
        try:
            rules[name] = TimingRule(name=name, **rule)
        except TypeError as exc:
            raise InvalidAssignment(f"{where}: [timing.{name}]: {exc}") from None
    return rules


def load_assignment(path: Path) -> Assignment:
    """Load and check one assignment folder; InvalidAssignment says what to fix."""
    path = Path(path)
    where = str(path / MANIFEST)
    if not (path / MANIFEST).is_file():
        raise InvalidAssignment(f"{path}: no {MANIFEST}; every assignment folder needs one")
    try:
        data = tomllib.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidAssignment(f"{where}: not valid TOML: {exc}") from None
    for key in ("title", "points"):
        if key not in data:
            raise InvalidAssignment(f"{where}: missing required key '{key}'")
    points = data["points"]
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise InvalidAssignment(f"{where}: points must be a positive number")
    device = data.get("device", "cpu")
    if device not in DEVICES:
        raise InvalidAssignment(f"{where}: device must be one of {DEVICES}, got {device!r}")
    try:
        limits = Limits.from_dict(_table(data, "limits", where))
    except ValueError as exc:
        raise InvalidAssignment(f"{where}: [limits]: {exc}") from None
    forbidden_table = _table(data, "forbidden", where)
    forbidden = Forbidden(
        modules=_str_map(forbidden_table, "modules", where),
        calls=_str_map(forbidden_table, "calls", where),
        attributes=_str_map(forbidden_table, "attributes", where),
    )
    late = _table(data, "late", where)
    try:
        late_policy = LatePolicy(**late)
    except TypeError as exc:
        raise InvalidAssignment(f"{where}: [late]: {exc}") from None
    for name in ("solution.py", "starter.py", "tests/hidden"):
        if not (path / name).exists():
            raise InvalidAssignment(f"{path}: missing {name}")
    # The folder by its real path: tests, bytecode and sys.modules all name it one way,
    # whatever symlink (a `current -> release` deploy) it was reached through.
    return Assignment(
        slug=path.name, path=path.resolve(), title=str(data["title"]), points=float(points), device=device,
        limits=limits, forbidden=forbidden, timing=_timing(data, where),
        due=_due(data.get("due"), where), late=late_policy, topic=str(data.get("topic", "")),
        functions=tuple(data.get("functions", ())), description=_description(data, where),
    )


def _description(data: dict, where: str) -> str:
    """The manifest's optional Markdown `description`; one that is not text is left out, with a warning."""
    value = data.get("description")
    if value is not None and not isinstance(value, str):
        log.warning("%s: description should be a Markdown string; the starter's text is shown", where)
        return ""
    return (value or "").strip()


def assignments_root() -> Path:
    """Where the course's assignments live ($TORCHGRADE_ASSIGNMENTS or the repo's)."""
    return Path(os.environ.get("TORCHGRADE_ASSIGNMENTS", DEFAULT_ROOT))


def discover(root: Path | None = None) -> dict[str, Assignment]:
    """Every assignment under root, by slug, in course order (folder names sort)."""
    root = Path(root or assignments_root())
    found = {}
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if (child / MANIFEST).is_file():
            found[child.name] = load_assignment(child)
    return found


def find(slug: str, root: Path | None = None) -> Assignment:
    """The assignment with this slug, or InvalidAssignment listing the known ones."""
    root = Path(root or assignments_root())
    if (root / slug / MANIFEST).is_file():
        return load_assignment(root / slug)
    known = ", ".join(discover(root)) or "none"
    raise InvalidAssignment(f"no assignment named {slug!r} (known: {known})")
