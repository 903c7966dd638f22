"""Roster import: refused whole in the request, or run in a background thread with progress, one commit.

On SQLite and PostgreSQL (`app` is parametrized). The thread is the real one of web/services/jobs.py,
hashing with the real argon2; the tests poll the job's JSON as jobs.js does.
"""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from web_helpers import Factory, csrf_of

from web import db
from web.models import BackgroundJob, User
from web.services import jobs, roster
from workers.models import utcnow


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model).where(*where))


def post_roster(client, data: bytes, name: str = "roster.csv"):
    """Send a roster file through the form, with its CSRF token."""
    return client.post("/instructor/roster", data={"csrf_token": csrf_of(client, "/instructor/roster"),
                                                   "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def wait_for(client, job_id: int, timeout_s: float = 240) -> tuple[dict, list[int]]:
    """Poll the job's JSON (as jobs.js does) until it finishes; its last answer and every `done` seen."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/instructor/jobs/{job_id}.json").get_json()
        seen.append(body["done"])
        if body["finished"]:
            return body, seen
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished in {timeout_s} s: {body}")


def job_id_of(resp) -> int:
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return int(re.search(r"/instructor/roster/jobs/(\d+)$", resp.headers["Location"]).group(1))


def test_a_150_student_import_answers_at_once_shows_progress_and_commits_once(app, client, factory, db_url):
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    csv = "username,name,email\n" + "".join(f"s{i:03d},Student {i},s{i}@example.org\n" for i in range(150))
    token = csrf_of(client, "/instructor/roster")
    started = time.monotonic()
    resp = client.post("/instructor/roster", data={"csrf_token": token,
                                                   "file": (io.BytesIO(csv.encode()), "roster.csv")},
                       content_type="multipart/form-data")
    to_redirect = time.monotonic() - started
    job_id = job_id_of(resp)
    # No timed assertion (the machine's load is not the code's): an import done in the request
    # would be finished at the first poll below, and that fails.
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'role="status" aria-live="polite"' in page and '<progress id="job-progress" max="150"' in page
    partial = []
    while not partial:  # in the middle, nothing is stored yet: one commit at the end
        body = client.get(f"/instructor/jobs/{job_id}.json").get_json()
        if 0 < body["done"] < 150:
            partial.append(count(app, User))
        assert not body["finished"], "finished before any progress was seen"
        time.sleep(0.1)
    body, seen = wait_for(client, job_id)
    to_done = time.monotonic() - started
    print(f"\n150-student import on {db_url.split(':')[0]}: redirect {to_redirect * 1000:.0f} ms, "
          f"done {to_done:.1f} s")
    assert partial == [1] and body["state"] == "done" and body["done"] == body["total"] == 150
    assert len(set(seen)) >= 3, f"progress never moved: {seen}"  # updated along the way, not only at the end
    assert count(app, User, User.must_change_password.is_(True)) == 150
    created = {a["username"]: a["password"] for a in body["result"]["created"]}
    assert len(created) == 150 and body["result"]["skipped"] == []
    page = client.get(f"/instructor/roster/jobs/{job_id}").get_data(as_text=True)
    assert f"<td>s149</td><td>Student 149</td><td><code>{created['s149']}</code></td>" in page
    student = app.test_client()
    assert Factory(app).login(student, "s042", created["s042"]).status_code == 302
    assert "s042" in student.get("/", follow_redirects=True).get_data(as_text=True)


@pytest.mark.parametrize("data,words", [
    (b"", "the file is empty"),
    (b"   \n\n", "the file is empty"),
    ("username,name\nzoë,Zoë\n".encode("latin-1"), "not UTF-8 text (byte 17 is not)"),
    (b"name,email\nann,a@example.org\n", "needs a header row with a &#39;username&#39; column"),
    (b"username,name\n", "a header but no students"),
    (b"username\nann\nbob\nann\n", "&#39;ann&#39; is in the file twice (lines 2 and 4)"),
    (("username\n" + "".join(f"u{i}\n" for i in range(5001))).encode(), "the file has 5001 students; import "
                                                                          "at most 5000"),
    (b'username\nann\n"unclosed\n', "not a readable CSV (after line 2: unexpected end of data)"),
])
def test_a_bad_roster_is_refused_whole_with_what_to_do_and_nothing_started(app, client, factory, data, words):
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    resp = post_roster(client, data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Roster not imported" in page and words in page, page
    assert count(app, BackgroundJob) == 0 and count(app, User) == 1


def test_no_file_is_a_clear_message(app, client, factory):
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    resp = client.post("/instructor/roster", data={"csrf_token": csrf_of(client, "/instructor/roster")})
    assert resp.status_code == 400 and "Choose a CSV file to import" in resp.get_data(as_text=True)
    assert count(app, BackgroundJob) == 0


def test_skipped_rows_are_listed_with_their_line_and_reason(app, client, factory):
    factory.user("prof", "instructor")
    factory.user("old")
    factory.login(client, "prof")
    csv = ("Username , Name,EMAIL\nnew1,New One,n1@example.org\nold,Old,\n,Nobody,\nhas space,X,\n"
           f"{'x' * 81},Long,\nnew2,{'N' * 201},\nnul\x00,,\n")
    body, _ = wait_for(client, job_id_of(post_roster(client, csv.encode())))
    assert [a["username"] for a in body["result"]["created"]] == ["new1"]
    assert [(s["line"], s["reason"]) for s in body["result"]["skipped"]] == [
        (3, "already has an account"), (4, "no username"), (5, "a username cannot contain spaces"),
        (6, "the username is longer than 80 characters"), (7, "the name is longer than 200 characters"),
        (8, "the username has a control character")]
    page = client.get(f"/instructor/roster/jobs/{body['id']}").get_data(as_text=True)
    assert "Skipped 6 rows" in page and "<td>a username cannot contain spaces</td>" in page
    with app.app_context():
        new = db.session().scalar(select(User).where(User.username == "new1"))
        assert (new.name, new.email, new.role, new.must_change_password) == ("New One", "n1@example.org",
                                                                             "student", True)


def test_the_passwords_go_when_the_instructor_says_or_after_an_hour(app, client, factory):
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    first, _ = wait_for(client, job_id_of(post_roster(client, b"username\nann\n")))
    second, _ = wait_for(client, job_id_of(post_roster(client, b"username\nbob\n")))
    password = first["result"]["created"][0]["password"]
    csv = client.get(f"/instructor/roster/jobs/{first['id']}/accounts.csv")
    assert csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True) == f"username,name,password\r\nann,,{password}\r\n"
    token = csrf_of(client, f"/instructor/roster/jobs/{first['id']}")
    client.post(f"/instructor/roster/jobs/{first['id']}/forget", data={"csrf_token": token})
    page = client.get(f"/instructor/roster/jobs/{first['id']}").get_data(as_text=True)
    assert password not in page and "removed at your request" in page and "<td>ann</td>" in page
    assert client.get(f"/instructor/roster/jobs/{first['id']}/accounts.csv").status_code == 302
    with app.app_context():
        s = db.session()
        assert "password" not in s.get(BackgroundJob, first["id"]).result["created"][0]
        assert "password" in s.get(BackgroundJob, second["id"]).result["created"][0]
        old = utcnow() - roster.PASSWORDS_KEPT - timedelta(minutes=1)
        s.get(BackgroundJob, second["id"]).finished_at = old
        s.commit()
    client.get("/instructor/roster")  # any roster page purges what is past its hour
    with app.app_context():
        result = db.session().get(BackgroundJob, second["id"]).result
        assert "password" not in result["created"][0] and "1 hour" in result["passwords_gone"]
    polled = client.get(f"/instructor/jobs/{second['id']}.json").get_json()
    assert "password" not in polled["result"]["created"][0]


def test_an_import_is_seen_only_by_the_instructor_who_started_it(app, client, factory):
    factory.user("prof", "instructor")
    factory.user("other", "instructor")
    factory.login(client, "prof")
    body, _ = wait_for(client, job_id_of(post_roster(client, b"username\nann\n")))
    other = app.test_client()
    factory.login(other, "other")
    for path in (f"/instructor/roster/jobs/{body['id']}", f"/instructor/jobs/{body['id']}.json",
                 f"/instructor/roster/jobs/{body['id']}/accounts.csv"):
        assert other.get(path).status_code == 404, path
    password = body["result"]["created"][0]["password"]
    assert password not in other.get("/instructor/roster").get_data(as_text=True)


def test_a_failing_job_is_marked_failed_and_stores_nothing(app, factory):
    prof = factory.user("prof", "instructor")

    def work(session, progress):
        session.add(User(username="half", password_hash="x"))
        progress.step(1)
        raise RuntimeError("SECRET-DETAIL")

    with app.app_context():
        job = jobs.start(app, db.session(), kind="test", total=2, user=prof, work=work)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with app.app_context():
            row = db.session().get(BackgroundJob, job.id)
            if row.state != jobs.RUNNING:
                break
        time.sleep(0.1)
    assert row.state == jobs.FAILED and row.done == 1 and row.finished_at is not None
    assert "internal error (RuntimeError); nothing was stored" in row.message and "SECRET" not in row.message
    assert count(app, User, User.username == "half") == 0


def test_a_job_whose_process_died_reads_as_interrupted(app, client, factory):
    prof = factory.user("prof", "instructor")
    factory.login(client, "prof")
    with app.app_context():
        s = db.session()
        quiet = utcnow() - jobs.STALE_AFTER - timedelta(seconds=5)
        job = BackgroundJob(kind=roster.KIND, state=jobs.RUNNING, total=10, done=4, created_by=prof.id,
                            created_at=quiet, updated_at=quiet)
        s.add(job)
        s.commit()
    body = client.get(f"/instructor/jobs/{job.id}.json").get_json()
    assert (body["state"], body["finished"], body["done"]) == ("interrupted", True, 4)
    assert "Start it again" in body["message"]
    page = client.get(f"/instructor/roster/jobs/{job.id}").get_data(as_text=True)
    assert "The import did not finish" in page and "the web service restarted" in page
    assert "interrupted, 4 of 10" in client.get("/instructor/roster").get_data(as_text=True)
    with app.app_context():  # a running job that is still moving is not interrupted
        s = db.session()
        s.get(BackgroundJob, job.id).updated_at = utcnow()
        s.commit()
    assert client.get(f"/instructor/jobs/{job.id}.json").get_json()["state"] == "running"
