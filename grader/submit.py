"""`grader submit FILE --assignment SLUG`: upload to the course's service and wait for the score.

Standard library only (urllib): the engine never imports web/, and a student's laptop needs
nothing more than the grader itself. The token comes from the service's "API tokens" page.
"""

from __future__ import annotations

import json
import mimetypes
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from grader.errors import InvalidSubmission
from grader.submission import read_file_no_follow

FINAL = ("graded", "failed")


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
    out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
               f'filename="{safe_name}"\r\nContent-Type: {mime}\r\n\r\n'.encode())
    out.append(data)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _call(url: str, token: str, *, data: bytes | None = None, content_type: str | None = None,
          timeout: float = 60) -> dict[str, Any]:
    """One API call; the JSON answer, or urllib.error.HTTPError with the service's message."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/json")
    if content_type:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the course's own URL)
        return json.loads(resp.read().decode())


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read().decode()).get("error", exc.reason)
    except (ValueError, AttributeError):
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
         poll_s: float = 1.0) -> int:
    """Upload file for grading and print its score; 0 graded, 1 rejected or failed, 2 unreachable."""
    file = Path(file)
    try:
        # Read as the grader reads: no links, one read; the service checks the format.
        data = read_file_no_follow(file)
    except InvalidSubmission as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    base = url.rstrip("/")
    body, ctype = _multipart({"assignment": assignment}, "file", file, data)
    try:
        sub = _call(f"{base}/api/v1/submissions", token, data=body, content_type=ctype)
    except urllib.error.HTTPError as exc:
        print(f"error: the service refused the submission ({exc.code}): {_error_message(exc)}",
              file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {base}: {exc}", file=sys.stderr)
        return 2
    print(f"submitted {file.name} as submission {sub['id']} ({sub['state']}); {sub.get('page', '')}")
    deadline, state = time.monotonic() + wait_s, sub["state"]
    while time.monotonic() < deadline:
        try:
            body_now = _call(sub["url"], token)
        except (urllib.error.URLError, OSError) as exc:
            print(f"  (could not read the status: {exc}; retrying)", file=sys.stderr)
            time.sleep(poll_s * 3)
            continue
        if body_now["state"] != state:
            state = body_now["state"]
            print(f"  {state}")
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
