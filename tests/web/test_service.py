"""End to end: the one-command service as a subprocess, an upload over HTTP, graded by its own worker."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from web_helpers import ROOT, SLUG, Http

from grader.submit import Retry
from grader.submit import main as submit

pytestmark = pytest.mark.slow


def api_get(service, path: str, token: str) -> dict:
    req = urllib.request.Request(service.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_upload_over_http_is_graded_by_the_embedded_worker_and_regraded(service, capsys):
    password = service.create_user("e2e_student")
    student = Http(service.url).login("e2e_student", password)
    token = student.new_token()
    # `grader submit` itself: multipart over urllib, then polls until graded.
    code = submit(file=ROOT / "assignments" / SLUG / "solution.py", assignment=SLUG, url=service.url,
                  token=token, wait_s=120, poll_s=0.3)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "score: 10 / 10" in out and "hidden tests counted; they show only the kind of mistake" in out
    sub_id = int(re.search(r"as submission (\d+)", out).group(1))
    body = api_get(service, f"/api/v1/submissions/{sub_id}", token)
    assert (body["state"], body["score"], body["max_score"]) == ("graded", 10.0, 10.0)
    # Hidden tests show their name, points and kind of mistake only (issue 9 #10).
    withheld = [t for t in body["feedback"]["tests"] if t["visibility"] != "visible"]
    assert withheld and all(t["withheld"] and "timing" not in t and "duration_s" not in t
                            for t in withheld)
    assert "10.00" in student.get("/assignments")

    admin = Http(service.url).login("admin", service.ADMIN_PASSWORD)
    assert re.search(r"e2e_student.*?>10\.00<", admin.get("/instructor/"), re.S)
    admin.post(f"/instructor/submissions/{sub_id}/regrade", {}, csrf_from=f"/instructor/submissions/{sub_id}")
    deadline = time.monotonic() + 120
    while api_get(service, f"/api/v1/submissions/{sub_id}", token)["state"] != "graded":
        assert time.monotonic() < deadline, "the regrade never finished"
        time.sleep(0.3)
    page = admin.get(f"/instructor/submissions/{sub_id}")
    history = page.split('id="history"', 1)[1].split("</table>", 1)[0]
    assert history.count("<tr><td>") == 2 and history.count(">10.00<") == 2  # same seed, same score


def test_grader_submit_reports_a_rejected_file(service, tmp_path, capsys):
    password = service.create_user("e2e_bad")
    token = Http(service.url).login("e2e_bad", password).new_token()
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert submit(file=bad, assignment=SLUG, url=service.url, token=token) == 1
    assert "submit a .py module or a .ipynb notebook" in capsys.readouterr().err
    assert submit(file=bad, assignment=SLUG, url=service.url, token="tg_wrong") == 1
    # Nobody listens on port 9: connection refused, retried (briefly here), then exit status 2.
    assert submit(file=bad, assignment=SLUG, url="http://127.0.0.1:9", token=token,
                  retry=Retry(tries=2, base_s=0.1)) == 2
    err = capsys.readouterr().err
    assert "retrying in" in err and "gave up after 2 tries" in err and "was not submitted" in err
