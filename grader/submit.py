"""`grader submit FILE --assignment SLUG`: upload to the course's service and wait for the score.

Standard library only (urllib): the engine never imports web/, and a student's laptop needs
nothing more than the grader itself. The token comes from the service's "API tokens" page.

When the service is briefly away (connection refused or reset, no answer, or 502/503/504) the
upload is tried again with exponential back-off and jitter, at least Retry-After apart, at most
5 tries in about 2 minutes (Retry), then given up with exit status 2. Every try carries one
Idempotency-Key, which the service stores with the submission: a try whose answer was lost
after the service stored it gets that submission back, never a second one.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import mimetypes
import os
import random
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import InvalidSubmission
from grader.submission import read_file_no_follow

FINAL = ("graded", "failed")
# Where `python -m web serve` listens by default (its --host and --port), so that one machine's
# service and `grader submit` agree without a flag; a course's server is set with --url or TORCHGRADE_URL.
DEFAULT_URL = "http://127.0.0.1:8000"


def default_url() -> str:
    """The service to submit to: TORCHGRADE_URL, else DEFAULT_URL."""
    return os.environ.get("TORCHGRADE_URL") or DEFAULT_URL


def _multipart(fields: dict[str, str], file_field: str, path: Path,
               data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n".encode())
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    safe_name = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    # UTF-8, as browsers send it (a name not valid UTF-8 on this disk goes with '?' for its odd bytes).
    out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
               f'filename="{safe_name}"\r\nContent-Type: {mime}\r\n\r\n'.encode("utf-8", "replace"))
    out.append(data)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Retry:
    """How hard to try when the service is briefly away: tries, a total time bound, the back-off.

    The n-th wait is base_s * 2**(n-1), capped at cap_s, with "equal jitter" (half fixed,
    half random) so that many students cut off by the same outage do not return together;
    a Retry-After from the service is the least wait. No wait goes past budget_s in all.
    """

    tries: int = 5
    budget_s: float = 120.0
    base_s: float = 2.0
    cap_s: float = 30.0

    def delay(self, n: int, retry_after_s: float | None) -> float:
        """Seconds to wait before try n + 1 (n >= 1)."""
        b = min(self.cap_s, self.base_s * 2 ** (n - 1))
        wait = b / 2 + random.uniform(0, b / 2)
        if retry_after_s is not None:
            wait = max(wait, retry_after_s * random.uniform(1.0, 1.2))
        return wait


class Unavailable(Exception):
    """The service did not answer this try, or answered 502/503/504: worth trying again."""

    def __init__(self, why: str, retry_after_s: float | None = None, maybe_stored: bool = False) -> None:
        super().__init__(why)
        self.why, self.retry_after_s, self.maybe_stored = why, retry_after_s, maybe_stored
        self.tries, self.spent_s = 1, 0.0  # filled in when the retries give up


RETRY_STATUSES = (502, 503, 504)
# No answer at all: refused (the service is restarting), reset or cut off, or too slow.
NO_ANSWER = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
             http.client.RemoteDisconnected, http.client.IncompleteRead, TimeoutError, socket.timeout)


def _retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _call(url: str, token: str, *, data: bytes | None = None, content_type: str | None = None,
          headers: dict[str, str] | None = None, timeout: float = 60) -> dict[str, Any]:
    """One API call: the JSON answer; Unavailable when worth a retry, else urllib.error.HTTPError."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/json")
    if content_type:
        req.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the course's own URL)
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.code in RETRY_STATUSES:  # a gateway's 502/504 may come after the service stored it
            raise Unavailable(f"{exc.code}: {_error_message(exc)}",
                              _retry_after(exc.headers.get("Retry-After")),
                              maybe_stored=exc.code != 503) from exc
        raise
    except urllib.error.URLError as exc:  # the request could not be sent: nothing reached the service
        if isinstance(exc.reason, NO_ANSWER):
            raise Unavailable(_describe(exc.reason)) from exc
        raise
    except NO_ANSWER as exc:  # sent, but the answer was lost: the service may have stored it
        raise Unavailable(_describe(exc), maybe_stored=True) from exc


def _secs(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _with_retries(call: Callable[[], dict[str, Any]], retry: Retry) -> dict[str, Any]:
    """call(), tried again on Unavailable with back-off until retry's tries or time run out."""
    started, maybe_stored = time.monotonic(), False
    for n in range(1, retry.tries + 1):
        try:
            return call()
        except Unavailable as exc:
            maybe_stored = maybe_stored or exc.maybe_stored
            wait = retry.delay(n, exc.retry_after_s)
            spent = time.monotonic() - started
            if n == retry.tries or spent + wait > retry.budget_s:
                exc.tries, exc.spent_s, exc.maybe_stored = n, spent, maybe_stored
                raise
            print(f"the service is unavailable ({exc.why}), retrying in {_secs(wait)} "
                  f"(try {n + 1} of {retry.tries})", file=sys.stderr, flush=True)
            time.sleep(wait)
    raise AssertionError("not reached")


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read().decode()).get("error", exc.reason)
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


def _print_feedback(body: dict[str, Any]) -> None:
    fb = body.get("feedback") or {}
    for message in fb.get("messages", []):
        print(f"  note: {message}")
    for t in fb.get("tests", []):
        mark = "PASS" if t.get("passed") else "FAIL"
        print(f"  {mark} {t.get('name')}: {t.get('points', 0):g}/{t.get('max_points', 0):g}"
              + (f"  {t['message'].splitlines()[0]}" if t.get("message") else ""))
    if fb.get("withheld_tests"):
        print(f"  ({fb['withheld_tests']} hidden tests counted; they show only the kind of "
              "mistake, never their inputs)")


def main(*, file: Path, assignment: str, url: str, token: str, wait_s: float = 600.0,
         poll_s: float = 1.0, retry: Retry | None = None) -> int:
    """Upload file for grading and print its score; 0 graded, 1 rejected or failed, 2 unreachable.

    While the service is briefly away (no answer, or 502/503/504) the upload is tried again
    under retry's bounds; every try carries the same Idempotency-Key, so a try whose answer
    was lost after the service stored it cannot make a second submission.
    """
    file, retry = Path(file), retry or Retry()
    try:
        # Read as the grader reads: no links, one read; the service checks the format.
        data = read_file_no_follow(file)
    except InvalidSubmission as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    base = url.rstrip("/")
    body, ctype = _multipart({"assignment": assignment}, "file", file, data)
    key = uuid.uuid4().hex  # one upload, however many tries
    try:
        sub = _with_retries(lambda: _call(f"{base}/api/v1/submissions", token, data=body, content_type=ctype,
                                          headers={"Idempotency-Key": key}), retry)
    except urllib.error.HTTPError as exc:
        print(f"error: the service refused the submission ({exc.code}): {_error_message(exc)}",
              file=sys.stderr)
        return 1
    except Unavailable as exc:
        print(f"error: the service is unavailable ({exc.why}); gave up after {exc.tries} "
              f"{'try' if exc.tries == 1 else 'tries'} in {_secs(exc.spent_s)}. "
              + ("It may have stored the upload before its answer was lost: look at your submissions "
                 "page before you submit again." if exc.maybe_stored else
                 "Your file was not submitted: run the same command again later, and tell your "
                 "instructor if the service stays away."), file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {base}: {exc}", file=sys.stderr)
        return 2
    print(f"submitted {file.name} as submission {sub['id']} ({sub['state']}); {sub.get('page', '')}")
    if sub.get("replayed"):
        print("  (an earlier try had reached the service: this is that submission, not a second one)")
    if sub.get("notice"):
        print(f"  note: {sub['notice']}")
    return _wait_for_grade(sub, token, wait_s=wait_s, poll_s=poll_s, retry=retry)


def _wait_for_grade(sub: dict[str, Any], token: str, *, wait_s: float, poll_s: float, retry: Retry) -> int:
    """Poll the submission until it is graded or failed, or wait_s passes."""
    deadline, state, notice, outage = time.monotonic() + wait_s, sub["state"], sub.get("notice"), 0
    while time.monotonic() < deadline:
        try:
            body_now = _call(sub["url"], token)
            outage = 0
        except Unavailable as exc:
            outage += 1
            wait = min(retry.delay(outage, exc.retry_after_s), max(0.0, deadline - time.monotonic()))
            print(f"  (the service is unavailable ({exc.why}); reading the status again in {_secs(wait)})",
                  file=sys.stderr, flush=True)
            time.sleep(wait)
            continue
        except urllib.error.HTTPError as exc:
            print(f"error: the service refused the status ({exc.code}): {_error_message(exc)}; "
                  f"see {sub.get('page', '')}", file=sys.stderr)
            return 1
        except (urllib.error.URLError, OSError) as exc:
            print(f"  (could not read the status: {exc}; retrying)", file=sys.stderr)
            time.sleep(poll_s * 3)
            continue
        if body_now["state"] != state:
            state = body_now["state"]
            print(f"  {state}")
        if body_now.get("notice") and body_now["notice"] != notice:
            print(f"  note: {body_now['notice']}")
        notice = body_now.get("notice")
        if state in FINAL:
            if state == "failed":
                print(f"grading failed: {body_now.get('reason')}", file=sys.stderr)
                return 1
            _print_feedback(body_now)
            print(f"score: {body_now['score']:g} / {body_now['max_score']:g}")
            return 0
        time.sleep(poll_s)
    print(f"still {state} after {wait_s:g} s; see {sub.get('page', '')}", file=sys.stderr)
    return 1
