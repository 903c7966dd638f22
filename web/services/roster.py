"""Roster import: the CSV checked in the request, the accounts made in a background job, one commit.

`parse` refuses a bad file whole (not UTF-8, empty, no `username` column, a username twice,
too many rows) before anything starts, and notes the rows it will skip with their reasons.
`work` hashes each one-time password (argon2: the slow part) with progress, then adds every
student at once; the job runner commits them with the job's result, so an import is all or nothing.
The one-time passwords stay in the job's result for PASSWORDS_KEPT after it finished (or until the
instructor says they are saved), then only the usernames remain.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.errors import ServiceError
from web.models import STUDENT, BackgroundJob, User
from web.services import jobs, users
from web.services.gradebook import safe_cell
from workers.db import as_utc
from workers.models import utcnow

KIND = "roster"
MAX_ROWS = 5000
PASSWORDS_KEPT = timedelta(hours=1)
COLUMNS = ("username", "name", "email")
LIMITS = {"username": 80, "name": 200, "email": 254}  # the columns' sizes in web/models/users.py


class RosterRejected(ServiceError):
    """The roster file was refused whole; nothing was started or stored."""

    status = 400


@dataclass(frozen=True)
class Student:
    """One row of the roster that will become an account."""

    line: int
    username: str
    name: str
    email: str


@dataclass
class RosterPlan:
    """What an import will do: the students to create, and the rows skipped with their reasons."""

    students: list[Student] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def parse(session: Session, data: bytes) -> RosterPlan:
    """Check the CSV and plan the import; RosterRejected (nothing started) when the file is unusable."""
    rows = _rows(_decode(data))
    if len(rows) > MAX_ROWS:
        raise RosterRejected(f"the file has {len(rows)} students; import at most {MAX_ROWS} at a time "
                             "(split the file and import each part)")
    _refuse_duplicates(rows)
    existing = set(session.scalars(select(User.username)))
    plan = RosterPlan()
    for line, row in rows:
        reason = _skip_reason(row, existing)
        if reason:
            plan.skipped.append(dict(line=line, username=row["username"], reason=reason))
        else:
            plan.students.append(Student(line, row["username"], row["name"], row["email"]))
    return plan


def _decode(data: bytes) -> str:
    if not data.strip():
        raise RosterRejected("the file is empty: export the roster as CSV with a header row "
                             "'username,name,email' and one student a line")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterRejected(f"the file is not UTF-8 text (byte {exc.start + 1} is not): save it from your "
                             "spreadsheet as 'CSV UTF-8' and import it again") from None


def _rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """The data rows with their line numbers, keys and values stripped (keys lower-cased)."""
    reader = csv.DictReader(io.StringIO(text), strict=True)  # an unclosed quote is an error
    try:
        header = [(f or "").strip().lower() for f in reader.fieldnames or []]
        if "username" not in header:
            raise RosterRejected("the CSV needs a header row with a 'username' column (and optionally "
                                 "name, email); the first line is the header")
        rows = []
        for row in reader:
            clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            rows.append((reader.line_num, {c: clean.get(c, "") for c in COLUMNS}))
    except csv.Error as exc:
        raise RosterRejected(f"the file is not a readable CSV (after line {reader.line_num}: {exc}); "
                             "export it from your spreadsheet as CSV") from None
    if not rows:
        raise RosterRejected("the file has a header but no students: add one student a line under it")
    return rows


def _refuse_duplicates(rows: list[tuple[int, dict[str, str]]]) -> None:
    first: dict[str, int] = {}
    for line, row in rows:
        name = row["username"]
        if name and name in first:
            raise RosterRejected(f"the username {name!r} is in the file twice (lines {first[name]} and "
                                 f"{line}): keep one of them and import the file again")
        first.setdefault(name, line)


def _skip_reason(row: dict[str, str], existing: set[str]) -> str:
    """Why this row makes no account ("" when it will)."""
    if not row["username"]:
        return "no username"
    for column in COLUMNS:
        if not row[column].isprintable():  # a NUL or a control character: PostgreSQL refuses NUL
            return f"the {column} has a control character"
    if any(ch.isspace() for ch in row["username"]):
        return "a username cannot contain spaces"
    for column, limit in LIMITS.items():
        if len(row[column]) > limit:
            return f"the {column} is longer than {limit} characters"
    if row["username"] in existing:
        return "already has an account"
    return ""


def work(plan: RosterPlan) -> jobs.Work:
    """The background work of importing plan (for jobs.start)."""

    def run(session: Session, progress: jobs.Progress) -> dict[str, Any]:
        hashed = []
        for done, student in enumerate(plan.students, 1):
            password = _one_time_password()
            hashed.append((student, password, users.hash_password(password)))
            progress.step(done)
        return _add_all(session, plan, hashed)

    return run


def _one_time_password() -> str:
    """A new password that starts with a letter or digit, so a spreadsheet shows it as it is typed."""
    password = users.new_password()
    while not password[0].isalnum():
        password = users.new_password()
    return password


def _add_all(session: Session, plan: RosterPlan, hashed: list[tuple[Student, str, str]]) -> dict[str, Any]:
    """Add every account (committed by the job runner with the result); skip names taken meanwhile."""
    wanted = [s.username for s, _, _ in hashed]
    taken = set(session.scalars(select(User.username).where(User.username.in_(wanted)))) if wanted else set()
    created, skipped = [], list(plan.skipped)
    for student, password, password_hash in hashed:
        if student.username in taken:
            skipped.append(dict(line=student.line, username=student.username,
                                reason="an account with this name was made while the import ran"))
            continue
        session.add(User(username=student.username, name=student.name, email=student.email, role=STUDENT,
                         password_hash=password_hash, must_change_password=True))
        created.append(dict(username=student.username, name=student.name, password=password))
    expires = utcnow() + PASSWORDS_KEPT
    return dict(created=created, skipped=sorted(skipped, key=lambda s: s["line"]),
                passwords_until=expires.isoformat(), passwords_gone="")


def passwords_shown(job: BackgroundJob) -> bool:
    """Whether the job's result still holds the one-time passwords."""
    return bool(job.result) and not job.result.get("passwords_gone")


def forget_passwords(session: Session, job: BackgroundJob, why: str) -> None:
    """Wipe the one-time passwords from the job's result (the usernames stay) and commit."""
    if not passwords_shown(job):
        return
    created = [{k: v for k, v in row.items() if k != "password"} for row in job.result["created"]]
    job.result = {**job.result, "created": created, "passwords_gone": why}  # a new dict: JSON columns
    session.commit()


def purge_expired(session: Session) -> int:
    """Wipe the passwords of every import that finished more than PASSWORDS_KEPT ago; how many."""
    cutoff = utcnow() - PASSWORDS_KEPT
    old = session.scalars(select(BackgroundJob).where(BackgroundJob.kind == KIND,
                                                      BackgroundJob.finished_at.is_not(None)))
    expired = [j for j in old if passwords_shown(j) and as_utc(j.finished_at) < cutoff]
    for job in expired:
        forget_passwords(session, job, f"removed {PASSWORDS_KEPT.seconds // 3600} hour after the import")
    return len(expired)


def recent(session: Session, user: User, limit: int = 5) -> list[BackgroundJob]:
    """This instructor's latest imports, newest first."""
    return list(session.scalars(select(BackgroundJob).where(BackgroundJob.kind == KIND,
                                                            BackgroundJob.created_by == user.id)
                                .order_by(BackgroundJob.id.desc()).limit(limit)))


def accounts_csv(job: BackgroundJob) -> str:
    """The import's new accounts with their one-time passwords, as CSV (names guarded from formulas)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "name", "password"])
    for row in job.result["created"]:
        # The password needs no guard: it starts with a letter or digit (_one_time_password).
        writer.writerow([safe_cell(row["username"]), safe_cell(row["name"]), row.get("password", "")])
    return out.getvalue()

