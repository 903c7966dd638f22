"""Routes and services on a real database (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from web_helpers import PASSWORD, SLUG, SOLUTION, STARTER_NB, csrf_of, upload

from grader.submission import MAX_BYTES
from web import db
from web.models import Extension, GradeRecord, User
from workers.models import QUEUED, Submission, utcnow


def count(app, model=Submission) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


def extend(app, user, hours_from_now: float) -> None:
    with app.app_context():
        s = db.session()
        s.add(Extension(user_id=user.id, assignment=SLUG, due_at=utcnow() + timedelta(hours=hours_from_now)))
        s.commit()


def test_login_wrong_password_then_right_then_logout(client, factory):
    factory.user("ann")
    bad = factory.login(client, "ann", "wrong")
    assert bad.status_code == 401 and "wrong username or password" in bad.get_data(as_text=True)
    ok = factory.login(client, "ann")
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert client.get("/assignments").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_of(client, "/assignments")})
    assert client.get("/assignments").status_code == 302


def test_upload_is_stored_committed_and_sent_to_the_broker(app, client, factory):
    ann = factory.user("ann")
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", "solution.py", SOLUTION)
    assert resp.status_code == 302
    sub_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        sub = db.session().get(Submission, sub_id)
        assert (sub.owner, sub.state, sub.content, sub.queue) == (str(ann.id), QUEUED, SOLUTION, "cpu")
        assert sub.enqueued_at is not None  # the broker accepted the message after the commit
    page = client.get(f"/submissions/{sub_id}").get_data(as_text=True)
    assert "queued" in page and "status.js" in page


def test_a_notebook_is_accepted(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    assert upload(client, f"/assignments/{SLUG}", "hw.ipynb", STARTER_NB).status_code == 302
    assert count(app) == 1


@pytest.mark.parametrize("name,data,message", [
    ("plot.png", b"\x89PNG\r\n\x1a\n\x00\x00binary", "not UTF-8 text"),
    ("hw.txt", b"def forward(x):\n    return x\n", "submit a .py module or a .ipynb notebook"),
    ("hw.ipynb", b'{"cells": [', "notebook"),
    ("hw.ipynb", b'{"cells": [{"cell_type": "code", "source": "", "metadata": {}}], "metadata": {}, '
                 b'"nbformat": 4, "nbformat_minor": 5}', "does not follow the notebook format"),
    ("hw.py", b'{"cells": [], "nbformat": 4}', "rename it to .ipynb"),
    ("hw.py", b"   \n", "empty"),
    ("hw.py", b"#" * (MAX_BYTES + 10), "the limit is"),
], ids=["binary", "txt", "broken-json", "invalid-notebook", "notebook-named-py", "empty", "too-large"])
def test_bad_upload_gets_a_message_and_nothing_is_stored(app, client, factory, name, data, message):
    factory.user("ann")
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", name, data)
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert count(app) == 0


def test_status_json_and_feedback_withhold_hidden_tests(client, factory):
    ann = factory.user("ann")
    sub_id = factory.graded(ann, score=7.0)
    factory.login(client, "ann")
    status = client.get(f"/submissions/{sub_id}/status.json").get_json()
    assert status == {"id": sub_id, "state": "graded", "done": True, "score": 7.0, "max_score": 10.0,
                      "reason": None, "notice": None}
    for path in (f"/submissions/{sub_id}", f"/submissions/{sub_id}/feedback"):
        page = client.get(path).get_data(as_text=True)
        assert "forward" in page and "7.00" in page
        assert "HIDDEN-DETAIL" not in page and "LOG-TEXT" not in page
        assert "secret_backward" in page  # its name, not its message (issue 9 #10)
        assert "1 hidden test(s) show only the kind of mistake" in page


def test_late_submission_is_marked_penalised_and_closed_after_the_last_day(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    extend(app, ann, -36)  # her own due date passed 36 hours ago: two days late, 0.1 a day
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", "solution.py", SOLUTION)
    assert resp.status_code == 302
    assert "Late by 2 day(s)" in client.get(resp.headers["Location"]).get_data(as_text=True)
    factory.graded(ann, score=10.0)
    prof = factory.app.test_client()
    factory.login(prof, "prof")
    book = prof.get("/instructor/").get_data(as_text=True)
    assert "8.00" in book and "L2" in book
    with app.app_context():
        db.session().query(Extension).delete()
        db.session().commit()
    extend(app, ann, -24 * 4)  # past the 3 late days the policy accepts
    closed = upload(client, f"/assignments/{SLUG}", "solution.py", SOLUTION)
    assert closed.status_code == 400 and "is closed" in closed.get_data(as_text=True)
    assert count(app) == 2  # the accepted upload and the graded row; nothing from the closed one


def test_an_extension_in_the_future_means_on_time(app, client, factory):
    ann = factory.user("ann")
    extend(app, ann, +48)
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", "solution.py", SOLUTION)
    assert "Late by" not in client.get(resp.headers["Location"]).get_data(as_text=True)


def test_submissions_per_hour_are_limited(app, client, factory):
    ann = factory.user("ann")
    for _ in range(4):
        factory.graded(ann, score=1.0, hours_ago=0.2)
    factory.graded(ann, score=1.0, hours_ago=2)  # outside the hour: does not count
    factory.login(client, "ann")
    assert upload(client, f"/assignments/{SLUG}", "a.py", SOLUTION).status_code == 302  # the 5th this hour
    refused = upload(client, f"/assignments/{SLUG}", "b.py", SOLUTION)
    assert refused.status_code == 429 and "try again later" in refused.get_data(as_text=True)
    assert count(app) == 6


def test_gradebook_best_then_last_policy_and_csv_export(client, factory):
    ann, bob = factory.user("ann"), factory.user("=cmd|bob")
    factory.user("prof", "instructor")
    factory.graded(ann, score=9.0, hours_ago=2)
    factory.graded(ann, score=4.0, hours_ago=1)
    factory.graded(bob, score=6.5)
    factory.login(client, "prof")
    assert re.search(r">9\.00<", client.get("/instructor/").get_data(as_text=True))
    token = csrf_of(client, f"/instructor/assignments/{SLUG}")
    client.post(f"/instructor/assignments/{SLUG}/settings",
                data={"csrf_token": token, "score_policy": "last", "hourly_limit": "3"})
    page = client.get("/instructor/").get_data(as_text=True)
    assert re.search(r">4\.00<", page) and not re.search(r">9\.00<", page)
    csv = client.get("/instructor/gradebook.csv")
    assert csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("username,name,") and SLUG in lines[0]
    assert any(line.startswith("ann,,") and ",4.00," in line for line in lines)
    assert any(line.startswith("'=cmd|bob") for line in lines)  # no formula reaches a spreadsheet


def test_api_token_upload_status_and_revocation(app, client, factory):
    factory.user("ann")
    bob = factory.user("bob")
    bob_sub = factory.graded(bob, score=5.0)
    factory.login(client, "ann")
    page = client.post("/account/tokens", data={"csrf_token": csrf_of(client, "/account/tokens"),
                                                "name": "laptop"}).get_data(as_text=True)
    token = re.search(r'id="new-token">([^<]+)<', page).group(1)
    api = app.test_client()  # no session cookie: the token alone authenticates
    auth = {"Authorization": f"Bearer {token}"}
    resp = api.post("/api/v1/submissions", headers=auth,
                    data={"assignment": SLUG, "file": (io.BytesIO(SOLUTION), "solution.py")})
    assert resp.status_code == 201, resp.get_json()
    sub_id = resp.get_json()["id"]
    assert api.get(f"/api/v1/submissions/{sub_id}", headers=auth).get_json()["state"] == "queued"
    assert api.get(f"/api/v1/submissions/{bob_sub}", headers=auth).status_code == 404
    bad = api.post("/api/v1/submissions", headers=auth,
                   data={"assignment": SLUG, "file": (io.BytesIO(b"\x00\x01"), "x.bin")})
    assert bad.status_code == 400 and "error" in bad.get_json()
    assert api.get("/api/v1/assignments", headers=auth).get_json()[0]["slug"]
    assert api.get("/api/v1/assignments").status_code == 401
    token_id = int(re.search(r"/account/tokens/(\d+)/revoke", page).group(1))
    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_of(client, "/account/tokens")})
    assert api.get(f"/api/v1/submissions/{sub_id}", headers=auth).status_code == 401


def test_regrade_keeps_the_old_score_in_the_history(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    sub_id = factory.graded(ann, score=6.0)
    factory.login(client, "prof")
    token = csrf_of(client, "/instructor/extensions")  # not the submission's page: it records too
    client.post(f"/instructor/submissions/{sub_id}/regrade", data={"csrf_token": token})
    with app.app_context():
        s = db.session()
        assert s.get(Submission, sub_id).state == QUEUED
        (rec,) = s.scalars(select(GradeRecord))
        assert (rec.score, rec.suite_version, [t.name for t in rec.tests]) == (6.0, "v1",
                                                                               ["forward", "secret_backward"])
    token = csrf_of(client, f"/instructor/assignments/{SLUG}")
    client.post(f"/instructor/assignments/{SLUG}/regrade", data={"csrf_token": token})
    assert count(app, GradeRecord) == 1  # a queued submission is not regraded twice


def test_roster_import_creates_students_who_can_log_in(app, client, factory):
    factory.user("prof", "instructor")
    factory.user("old")
    factory.login(client, "prof")
    csv = b"username,name,email\nnew1,New One,n1@example.org\nold,Old,\n,Nobody,\n"
    started = client.post("/instructor/roster", data={"csrf_token": csrf_of(client, "/instructor/roster"),
                                                      "file": (io.BytesIO(csv), "roster.csv")},
                          content_type="multipart/form-data")
    job = started.headers["Location"]  # the import runs in the background (tests/web/test_roster.py)
    for _ in range(300):
        page = client.get(job).get_data(as_text=True)
        if "Done:" in page:
            break
        time.sleep(0.1)
    password = re.search(r"<td>new1</td><td>New One</td><td><code>([^<]+)</code>", page).group(1)
    assert "Skipped 2 rows" in page and "<td>old</td><td>already has an account</td>" in page
    other = app.test_client()
    assert factory.login(other, "new1", password).status_code == 302
    bad = client.post("/instructor/roster", data={"csrf_token": csrf_of(client, "/instructor/roster"),
                                                  "file": (io.BytesIO(b"name\nx\n"), "r.csv")},
                      content_type="multipart/form-data")
    assert "username" in bad.get_data(as_text=True) and count(app, User) == 3


def test_extension_form_changes_the_students_due_date(client, factory):
    factory.user("prof", "instructor")
    factory.user("ann")
    factory.login(client, "prof")
    client.post("/instructor/extensions", data={"csrf_token": csrf_of(client, "/instructor/extensions"),
                                                "username": "ann", "assignment": SLUG,
                                                "due_at": "2031-05-04T10:30", "reason": "ill"})
    assert "2031-05-04 10:30" in client.get("/instructor/extensions").get_data(as_text=True)
    other = factory.app.test_client()
    factory.login(other, "ann")
    assert "2031-05-04 10:30" in other.get("/assignments").get_data(as_text=True)


def test_statistics_page_has_three_plots(client, factory):
    factory.user("prof", "instructor")
    for i, score in enumerate([10.0, 5.0, 0.0]):
        factory.graded(factory.user(f"s{i}"), score=score)
    factory.login(client, "prof")
    page = client.get(f"/instructor/assignments/{SLUG}").get_data(as_text=True)
    assert page.count("<svg") == 3
    assert "Pass rate of each test" in page and "forward: 33" in page  # one of three passed


def test_instructor_sees_full_result_log_and_source(client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    sub_id = factory.graded(ann, score=7.0)
    factory.login(client, "prof")
    page = client.get(f"/instructor/submissions/{sub_id}").get_data(as_text=True)
    assert "secret_backward" in page and "HIDDEN-DETAIL" in page and "LOG-TEXT" in page
    assert "def forward" in page
    dl = client.get(f"/instructor/submissions/{sub_id}/download")
    assert dl.data == SOLUTION and "attachment" in dl.headers["Content-Disposition"]


def test_password_is_stored_as_argon2(app, factory):
    factory.user("ann")
    with app.app_context():
        user = db.session().scalar(select(User))
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_a_broken_assignment_is_left_out_and_named_to_the_instructor(app, client, factory, tmp_path):
    import shutil

    from web_helpers import ROOT

    shutil.copytree(ROOT / "assignments" / SLUG, tmp_path / SLUG)
    (tmp_path / "99_broken").mkdir()
    (tmp_path / "99_broken" / "assignment.toml").write_text("title = \n")
    app.config["ASSIGNMENTS_ROOT"] = tmp_path
    factory.user("ann")
    factory.user("prof", "instructor")
    factory.login(client, "ann")
    page = client.get("/assignments")
    assert page.status_code == 200 and SLUG in page.get_data(as_text=True)
    assert "99_broken" not in page.get_data(as_text=True)
    factory.login(client, "prof")
    book = client.get("/instructor/").get_data(as_text=True)
    assert "99_broken" in book and "is left out until it loads" in book


def test_an_upload_past_the_request_limit_gets_a_page_not_a_crash(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", "big.py", b"#" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    assert resp.status_code == 413 and "the limit is 5.2 MB" in resp.get_data(as_text=True)
    assert count(app) == 0


def test_student_index_shows_the_penalised_score_and_instructor_sees_workers(app, client, factory):
    from workers.service import beat

    ann = factory.user("ann")
    factory.user("prof", "instructor")
    extend(app, ann, -36)
    factory.graded(ann, score=10.0)
    factory.login(client, "ann")
    assert "8.00 / 10" in client.get("/assignments").get_data(as_text=True)  # 2 days late at 0.1 a day
    with app.app_context():
        beat(db.engine(), hostname="cpu@node1", queues="cpu", pid=1, concurrency=2, gpus=0)
    factory.login(client, "prof")
    workers = client.get("/instructor/").get_data(as_text=True).split('id="workers"', 1)[1]
    assert "cpu@node1" in workers and '<td class="status alive"' in workers


def _token(client, factory, username: str) -> dict[str, str]:
    factory.login(client, username)
    page = client.post("/account/tokens", data={"csrf_token": csrf_of(client, "/account/tokens"),
                                                "name": "cli"}).get_data(as_text=True)
    token = re.search(r'id="new-token">([^<]+)<', page).group(1)
    return {"Authorization": f"Bearer {token}"}


def test_a_failed_gradings_reason_is_for_staff_only(app, client, factory):
    """Issue 11 #9: a failure's reason can name the course's files (a broken manifest's
    path, an internal error's text): the student reads that the course's side failed."""
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    sub_id = factory.graded(ann, score=0.0)
    reason = ("the assignment 'a' cannot be loaded: /srv/course/assignments/a/assignment.toml: "
              "Expected '=' after a key")
    with app.app_context():
        s = db.session()
        row = s.get(Submission, sub_id)
        row.state, row.reason, row.result, row.score = "failed", reason, None, None
        s.commit()
    student_api = _token(client, factory, "ann")
    seen = [client.get(f"/submissions/{sub_id}").get_data(as_text=True),
            client.get(f"/submissions/{sub_id}/feedback").get_data(as_text=True),
            str(client.get(f"/submissions/{sub_id}/status.json").get_json()),
            str(app.test_client().get(f"/api/v1/submissions/{sub_id}", headers=student_api).get_json())]
    for text in seen:
        assert "/srv/course" not in text and "assignment.toml" not in text, text[-2000:]
        assert "course&#39;s side" in text or "course's side" in text, text[-2000:]
    client.get("/logout")
    staff_api = _token(client, factory, "prof")
    assert app.test_client().get(f"/api/v1/submissions/{sub_id}",
                                 headers=staff_api).get_json()["reason"] == reason
    assert "assignment.toml" in client.get(f"/instructor/submissions/{sub_id}").get_data(as_text=True)
