"""The instructor's grading tools on a real database (SQLite and PostgreSQL): the student page,
gradebook search and sort, score overrides with their audit trail, exports, extensions' revocation,
and what the pages poll while a regrade runs."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from web_helpers import PASSWORD, SLUG, csrf_of

from grader.engine import write_gradescope
from grader.results import GradeResult
from web import db
from web.models import Extension, ScoreOverride, User
from web.services.users import create_user
from workers.models import QUEUED, Submission, utcnow

OTHER = "01_tensors"  # a second assignment of the course, for sorting by a column some students lack


def person(app, username: str, name: str = "", email: str = "", role: str = "student") -> User:
    with app.app_context():
        return create_user(db.session(), username=username, password=PASSWORD, role=role, name=name,
                           email=email)


def rows_of(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


@pytest.fixture
def prof(app, client, factory):
    """An instructor, logged in on `client`."""
    user = factory.user("prof", "instructor")
    factory.login(client, "prof")
    return user


def override(client, user_id: int, *, score: str = "", comment: str = "", action: str = "set",
             slug: str = SLUG):
    token = csrf_of(client, f"/instructor/students/{user_id}")
    return client.post(f"/instructor/students/{user_id}/overrides/{slug}",
                       data={f"{slug}-csrf_token": token, f"{slug}-score": score,
                             f"{slug}-comment": comment, f"{slug}-action": action})


def csv_rows(resp) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def gradebook_order(client, query: str) -> list[str]:
    page = client.get("/instructor/" + query).get_data(as_text=True)
    return re.findall(r'<a class="student" href="/instructor/students/\d+">([^<]+)</a>', page)


# -- the student page -----------------------------------------------------------------------------

def test_student_page_shows_scores_submissions_and_extensions_linked_from_the_gradebook(
        app, client, factory, prof):
    ann = person(app, "ann", "Ann Lee", "ann@example.org")
    first = factory.graded(ann, score=4.0, hours_ago=2)
    best = factory.graded(ann, score=9.0, hours_ago=1)
    with app.app_context():
        db.session().add(Extension(user_id=ann.id, assignment=SLUG, due_at=utcnow() + timedelta(days=60),
                                   reason="ill", granted_by=prof.id))
        db.session().commit()
    book = client.get("/instructor/").get_data(as_text=True)
    assert f'href="/instructor/students/{ann.id}">ann</a>' in book
    page = client.get(f"/instructor/students/{ann.id}").get_data(as_text=True)
    assert "Ann Lee" in page and "ann@example.org" in page and 'id="student-username">ann<' in page
    for sub in (first, best):
        assert f'href="/instructor/submissions/{sub}"' in page
    assert f"#{best}</a> counts" in page and ">9.00</strong>" in page  # best policy: the 9 counts
    assert "extended" in page and "ill" in page and "in force" in page
    assert '<section id="account-actions"' in page  # the spot the account buttons go


def test_the_student_page_is_for_students_only(app, client, prof):
    assert client.get("/instructor/students/99999").status_code == 404
    assert client.get(f"/instructor/students/{prof.id}").status_code == 404  # an instructor has no grades


def test_the_new_pages_are_for_instructors(app, client, factory):
    ann = factory.user("ann")
    sub = factory.graded(ann, score=5.0)
    factory.login(client, "ann")
    token = csrf_of(client, "/assignments")
    a = f"/instructor/assignments/{SLUG}"
    for path in (f"/instructor/students/{ann.id}", f"{a}/tests.csv", f"{a}/gradescope.zip",
                 f"{a}/status.json", f"/instructor/submissions/{sub}/results.json"):
        assert client.get(path).status_code == 403, path
        assert app.test_client().get(path).status_code == 302, path  # anonymous: log in first
    for path in (f"/instructor/students/{ann.id}/overrides/{SLUG}", "/instructor/extensions/1/revoke"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    assert rows_of(app, ScoreOverride) == 0


# -- gradebook search and sort --------------------------------------------------------------------

@pytest.fixture
def three(app, factory):
    """Three students: scores on SLUG 3 < 9 < 6.5 by username order; only carl has OTHER."""
    a = person(app, "anna", "Zoe Anna", "anna@uni.example")
    b = person(app, "bert", "Yann Bert", "bert@other.example")
    c = person(app, "carl", "Xavier Carl", "carl@uni.example")
    factory.graded(a, score=3.0)
    factory.graded(b, score=9.0)
    factory.graded(c, score=6.5)
    factory.graded(c, score=1.0, slug=OTHER)
    return a, b, c


def test_gradebook_sorts_by_every_kind_of_column_with_blanks_last(client, prof, three):
    assert gradebook_order(client, "") == ["anna", "bert", "carl"]
    assert gradebook_order(client, "?sort=total&dir=desc") == ["bert", "carl", "anna"]  # 9, 7.5, 3
    assert gradebook_order(client, f"?sort={SLUG}&dir=asc") == ["anna", "carl", "bert"]
    assert gradebook_order(client, "?sort=name&dir=asc") == ["carl", "bert", "anna"]  # Xavier, Yann, Zoe
    assert gradebook_order(client, "?sort=username&dir=desc") == ["carl", "bert", "anna"]
    for direction in ("asc", "desc"):  # who has no score on OTHER comes last either way
        assert gradebook_order(client, f"?sort={OTHER}&dir={direction}")[0] == "carl"
    page = client.get("/instructor/?sort=total&dir=desc").get_data(as_text=True)
    assert re.search(r'<th aria-sort="descending"><a class="sort current" href="[^"]*sort=total&amp;dir=asc',
                     page), "the sorted column says so, and its link turns the order around"
    assert page.count("aria-sort=") == 1


def test_gradebook_search_matches_username_name_or_email(client, prof, three):
    assert gradebook_order(client, "?q=BERT") == ["bert"]  # username, any case
    assert gradebook_order(client, "?q=xavier") == ["carl"]  # name
    assert gradebook_order(client, "?q=uni.example&sort=total&dir=desc") == ["carl", "anna"]  # email, sorted
    page = client.get("/instructor/?q=nobody").get_data(as_text=True)
    assert "No student matches" in page and "0 of 3 students" in page


def test_a_bad_sort_gets_a_message_and_the_default_order(client, prof, three):
    page = client.get("/instructor/?sort=gone_assignment").get_data(as_text=True)
    assert "no column &#39;gone_assignment&#39; to sort by" in page
    assert gradebook_order(client, "?sort=gone_assignment") == ["anna", "bert", "carl"]
    page = client.get("/instructor/?dir=sideways").get_data(as_text=True)
    assert "the sort direction is asc or desc" in page


def test_gradebook_csv_follows_the_sort_and_keeps_every_student(client, prof, three):
    lines = client.get("/instructor/gradebook.csv?sort=total&dir=desc&q=anna").get_data(as_text=True)
    assert [line.split(",")[0] for line in lines.splitlines()[1:]] == ["bert", "carl", "anna"]


# -- score overrides ------------------------------------------------------------------------------

def test_an_override_counts_everywhere_and_removing_it_restores_the_graded_score(app, client, factory, prof):
    ann = factory.user("ann")
    factory.graded(ann, score=4.0)
    resp = override(client, ann.id, score="8,5", comment="regrade request: test 2 was ambiguous")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/instructor/students/{ann.id}#a-{SLUG}")
    book = client.get("/instructor/").get_data(as_text=True)
    assert re.search(r">8\.50</a><span class=\"override-mark\" title=\"overridden by prof: regrade request: "
                     r"test 2 was ambiguous \(graded 4\.00\)\">\*</span>", book)
    (row,) = csv_rows(client.get("/instructor/gradebook.csv"))
    assert row[SLUG] == "8.50" and row["total"] == "8.50"
    assert row["overrides"].startswith(f"{SLUG}: 8.50 (graded 4.00) by prof on ")
    assert row["overrides"].endswith(": regrade request: test 2 was ambiguous")
    stats = client.get(f"/instructor/assignments/{SLUG}").get_data(as_text=True)
    assert "mean 8.50" in stats and "(1 overridden)" in stats
    student = app.test_client()
    factory.login(student, "ann")
    assert "8.50" in student.get("/assignments").get_data(as_text=True)  # the student's own score
    assert override(client, ann.id, action="clear", comment="ambiguity fixed in the suite").status_code == 302
    (row,) = csv_rows(client.get("/instructor/gradebook.csv"))
    assert (row[SLUG], row["overrides"]) == ("4.00", "")
    assert "4.00" in student.get("/assignments").get_data(as_text=True)
    page = client.get(f"/instructor/students/{ann.id}").get_data(as_text=True)
    trail = page[page.index('id="override-trail"'):]
    assert trail.index("8.50 → graded (removed)") < trail.index("graded → 8.50")  # newest first
    assert "ambiguity fixed in the suite" in trail and "regrade request" in trail and ">prof<" in trail
    assert rows_of(app, ScoreOverride) == 2  # append-only: the removal is a row of its own


def test_an_override_without_any_submission_is_a_score(app, client, factory, prof):
    ann = factory.user("ann")
    assert override(client, ann.id, score="7", comment="submitted on paper").status_code == 302
    (row,) = csv_rows(client.get("/instructor/gradebook.csv"))
    assert (row[SLUG], row["total"]) == ("7.00", "7.00")
    assert "(graded none)" in row["overrides"]


@pytest.mark.parametrize("score,comment,action,message", [
    ("11", "too much", "set", "the score must be between 0 and 10"),
    ("-1", "negative", "set", "the score must be between 0 and 10"),
    ("nan", "not a number", "set", "the score must be between 0 and 10"),
    ("abc", "letters", "set", "&#39;abc&#39; is not a number: enter a score such as 7.5"),
    ("", "no score", "set", "enter the score to give, or press Remove override"),
    ("5", "   ", "set", "write a comment that says why the score changes"),
    ("5", "x" * 1001, "set", "keep the comment under 1000 characters"),
    ("", "nothing to remove", "clear", "has no override on"),
    ("5", "which button?", "", "press Set override or Remove override"),
], ids=["above", "below", "nan", "letters", "empty", "no-comment", "long-comment", "clear-none", "no-action"])
def test_a_bad_override_gets_a_message_and_nothing_is_stored(app, client, factory, prof, score, comment,
                                                             action, message):
    ann = factory.user("ann")
    factory.graded(ann, score=4.0)
    resp = override(client, ann.id, score=score, comment=comment, action=action)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in page
    if comment.strip() and len(comment) < 1000:
        assert re.search(rf">\s*{re.escape(comment)}</textarea>", page)  # what was typed is kept to correct
    assert rows_of(app, ScoreOverride) == 0


def test_the_override_service_itself_refuses_a_blank_comment_or_an_instructor(app, factory, prof):
    """The form checks first; the service holds the same rules for any other caller."""
    from web.errors import ServiceError
    from web.services import overrides
    from web.services.course import get_assignment

    ann = factory.user("ann")
    with app.app_context():
        s = db.session()
        ca = get_assignment(s, SLUG, root=None, default_policy="best", default_limit=5)
        with pytest.raises(ServiceError, match="write a comment"):
            overrides.set_override(s, student=s.get(User, ann.id), ca=ca, score=5.0, comment=" \n ",
                                   by=s.get(User, prof.id))
        with pytest.raises(ServiceError, match="prof is an instructor"):
            overrides.set_override(s, student=s.get(User, prof.id), ca=ca, score=5.0, comment="c",
                                   by=s.get(User, prof.id))
    assert rows_of(app, ScoreOverride) == 0


def test_an_override_is_refused_for_an_instructor_or_an_unknown_assignment(app, client, factory, prof):
    ann = factory.user("ann")
    token = csrf_of(client, f"/instructor/students/{ann.id}")
    data = {"x-csrf_token": token, "x-score": "1", "x-comment": "c", "x-action": "set"}
    assert client.post(f"/instructor/students/{prof.id}/overrides/{SLUG}", data=data).status_code == 404
    assert client.post(f"/instructor/students/{ann.id}/overrides/no_such", data=data).status_code == 404
    assert rows_of(app, ScoreOverride) == 0


# -- exports --------------------------------------------------------------------------------------

def _test_rows(*points: float) -> list[dict]:
    names = ["forward", "=backward", "gradient"]
    return [dict(name=n, points=p, max_points=5.0, passed=p == 5.0, visibility="visible", message="m",
                 suite="public") for n, p in zip(names, points, strict=False)]


def test_per_test_csv_has_each_tests_points_late_days_and_the_override(app, client, factory, prof):
    ann, bob = person(app, "ann", "Ann"), person(app, "=bob")
    person(app, "cid")  # no submission: a row of blanks
    sub = factory.graded(ann, score=7.5, tests=_test_rows(5.0, 2.5))
    factory.graded(bob, score=10.0, tests=_test_rows(5.0, 5.0, 0.0), hours_ago=0.1)
    with app.app_context():  # bob's own due date passed a day and a half ago: 2 days late, 0.1 a day
        db.session().add(Extension(user_id=bob.id, assignment=SLUG, due_at=utcnow() - timedelta(hours=36)))
        db.session().commit()
    override(client, ann.id, score="9", comment="=HYPERLINK(\"x\")")
    resp = client.get(f"/instructor/assignments/{SLUG}/tests.csv")
    assert resp.mimetype == "text/csv" and f"{SLUG}-tests.csv" in resp.headers["Content-Disposition"]
    header = resp.get_data(as_text=True).splitlines()[0]
    assert header == ("username,name,submission,forward,'=backward,gradient,tests_total,late_days,graded,"
                      "override,override_comment,score")
    rows = {r["username"]: r for r in csv_rows(resp)}
    assert rows["ann"] == {"username": "ann", "name": "Ann", "submission": str(sub), "forward": "5",
                           "'=backward": "2.5", "gradient": "", "tests_total": "7.50", "late_days": "0",
                           "graded": "7.50", "override": "9.00", "override_comment": "'=HYPERLINK(\"x\")",
                           "score": "9.00"}
    bob_row = rows["'=bob"]
    assert (bob_row["late_days"], bob_row["graded"], bob_row["score"]) == ("2", "8.00", "8.00")
    assert rows["cid"]["submission"] == "" and rows["cid"]["score"] == ""


def test_results_json_of_a_submission_is_what_the_engine_writes(app, client, factory, prof, tmp_path):
    ann = factory.user("ann")
    sub = factory.graded(ann, score=7.5, tests=_test_rows(5.0, 2.5))
    resp = client.get(f"/instructor/submissions/{sub}/results.json")
    assert resp.mimetype == "application/json"
    assert f"{sub}-results.json" in resp.headers["Content-Disposition"]
    with app.app_context():
        result = GradeResult.from_dict(db.session().get(Submission, sub).result)
    write_gradescope(result, tmp_path / "results.json")  # grader --gradescope's own writer
    assert resp.get_data(as_text=True) == (tmp_path / "results.json").read_text()
    data = json.loads(resp.data)
    assert data["score"] == 7.5 and [t["status"] for t in data["tests"]] == ["passed", "failed"]
    assert f'href="/instructor/submissions/{sub}/results.json"' in client.get(
        f"/instructor/submissions/{sub}").get_data(as_text=True)


def test_results_json_of_an_ungraded_submission_says_to_wait(app, client, factory, prof):
    ann = factory.user("ann")
    sub = factory.graded(ann, score=1.0)
    with app.app_context():
        row = db.session().get(Submission, sub)
        row.state, row.result = QUEUED, None
        db.session().commit()
    resp = client.get(f"/instructor/submissions/{sub}/results.json")
    assert resp.status_code == 404 and "has no result yet (queued): wait until its grading ends" in \
        resp.get_data(as_text=True)


def test_gradescope_zip_has_each_students_counted_results_json(app, client, factory, prof):
    ann, odd = factory.user("ann"), factory.user("../odd name")
    factory.graded(ann, score=2.5, tests=_test_rows(2.5), hours_ago=2)
    factory.graded(ann, score=7.5, tests=_test_rows(5.0, 2.5), hours_ago=1)  # best: this one counts
    factory.graded(odd, score=5.0, tests=_test_rows(5.0))
    factory.user("idle")  # nothing graded: no folder
    resp = client.get(f"/instructor/assignments/{SLUG}/gradescope.zip")
    assert resp.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(resp.data)) as z:
        assert sorted(z.namelist()) == ["_odd_name/results.json", "ann/results.json"]
        assert json.loads(z.read("ann/results.json"))["score"] == 7.5
        assert json.loads(z.read("_odd_name/results.json"))["score"] == 5.0


def test_an_empty_gradescope_zip_is_a_message_not_a_file(client, factory, prof):
    factory.user("ann")
    resp = client.get(f"/instructor/assignments/{SLUG}/gradescope.zip")
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "no student has a graded submission of this assignment yet" in page


# -- extensions -----------------------------------------------------------------------------------

def grant(client, username: str, due: str = "2031-05-04T10:30", reason: str = "ill"):
    token = csrf_of(client, "/instructor/extensions")
    return client.post("/instructor/extensions", data={"csrf_token": token, "username": username,
                                                       "assignment": SLUG, "due_at": due, "reason": reason})


def extension_id(app, user: User) -> int:
    with app.app_context():
        return db.session().scalar(select(Extension.id).where(Extension.user_id == user.id))


def test_a_revoked_extension_no_longer_counts_and_can_be_granted_again(app, client, factory, prof):
    ann = factory.user("ann")
    factory.graded(ann, score=10.0)
    past = (utcnow() - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M")  # makes her submission a day late
    assert grant(client, "ann", past).status_code == 302
    assert "L1" in client.get("/instructor/").get_data(as_text=True)
    ext = extension_id(app, ann)
    token = csrf_of(client, f"/instructor/students/{ann.id}")
    resp = client.post(f"/instructor/extensions/{ext}/revoke",
                       data={"csrf_token": token, "back": str(ann.id)})
    assert resp.headers["Location"].endswith(f"/instructor/students/{ann.id}#extensions")
    assert "L1" not in client.get("/instructor/").get_data(as_text=True)
    student = app.test_client()
    factory.login(student, "ann")
    assert past.replace("T", " ") not in student.get("/assignments").get_data(as_text=True)
    listing = client.get("/instructor/extensions").get_data(as_text=True)
    struck = r'<tr class="revoked" id="extension-\d+">.*?<del>' + past.replace("T", " ")
    assert re.search(struck, listing, re.S)
    assert re.search(r"revoked by prof, \d{4}-\d\d-\d\d \d\d:\d\d", listing)
    again = client.post(f"/instructor/extensions/{ext}/revoke", data={"csrf_token": token})
    assert "already revoked" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert grant(client, "ann").status_code == 302  # granted again after the revoke
    assert "2031-05-04 10:30" in student.get("/assignments").get_data(as_text=True)
    listing = client.get("/instructor/extensions").get_data(as_text=True)
    assert 'class="in-force"' in listing
    assert re.search(struck, listing, re.S), "the revoked grant is kept beside the new one"
    assert grant(client, "ann", past).status_code == 302  # a grant over one in force revokes it, kept
    with app.app_context():
        rows = db.session().execute(select(Extension.revoked_at.is_(None), Extension.revoked_by)
                                    .where(Extension.user_id == ann.id).order_by(Extension.id)).all()
    assert rows == [(False, prof.id), (False, prof.id), (True, None)]
    assert "L1" in client.get("/instructor/").get_data(as_text=True)  # the newest is in force
    assert client.post("/instructor/extensions/99999/revoke", data={"csrf_token": token}).status_code == 404


@pytest.mark.parametrize("username,message", [
    ("prof", "prof is an instructor: extensions and overrides are for students"),
    ("nobody", "no such student: &#39;nobody&#39;; check the username on the roster page"),
])
def test_an_extension_for_an_instructor_or_unknown_user_is_refused(app, client, prof, username, message):
    resp = grant(client, username)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert rows_of(app, Extension) == 0


def test_an_extension_without_a_date_says_which_field(app, client, factory, prof):
    factory.user("ann")
    resp = grant(client, "ann", due="")
    assert resp.status_code == 400 and "New due date (UTC)" in resp.get_data(as_text=True)
    assert rows_of(app, Extension) == 0


# -- pages that update themselves after a regrade -------------------------------------------------

def test_after_a_regrade_the_pages_poll_until_nothing_is_queued(app, client, factory, prof):
    ann = factory.user("ann")
    sub = factory.graded(ann, score=6.0)
    quiet = client.get(f"/instructor/assignments/{SLUG}").get_data(as_text=True)
    assert 'id="live"' not in quiet and "instructor.js" in quiet  # nothing in flight: no polling
    status = client.get(f"/instructor/assignments/{SLUG}/status.json").get_json()
    assert status["done"] is True and status["states"] == {"graded": 1}
    token = csrf_of(client, "/instructor/")
    client.post(f"/instructor/submissions/{sub}/regrade", data={"csrf_token": token})
    for page, url in ((f"/instructor/assignments/{SLUG}", f"/instructor/assignments/{SLUG}/status.json"),
                      (f"/instructor/submissions/{sub}", f"/submissions/{sub}/status.json")):
        html = client.get(page).get_data(as_text=True)
        assert f'id="live" class="live" role="status" data-status-url="{url}"' in html, page
        assert client.get(url).get_json()["done"] is False
    status = client.get(f"/instructor/assignments/{SLUG}/status.json").get_json()
    assert (status["pending"], status["states"]) == (1, {"queued": 1})
    assert client.get("/instructor/assignments/no_such/status.json").get_json()["error"]


def _form(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to action, as a browser would send them."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', page, re.S)
    assert match, f"no form posting to {action}"
    return dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', match.group(1)))


def test_the_student_page_buttons_reset_and_disable_the_account(app, client, factory, prof):
    ann = factory.user("ann")
    ann_client = app.test_client()
    factory.login(ann_client, "ann")
    here = f"/instructor/students/{ann.id}"
    page = client.get(here).get_data(as_text=True)
    reset = _form(page, f"/instructor/users/{ann.id}/reset-password")
    assert reset["next"] == here and reset["csrf_token"]
    done = client.post(f"/instructor/users/{ann.id}/reset-password", data=reset)
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and 'id="one-time-password"' in text and f'href="{here}"' in text
    assert ann_client.get("/assignments").status_code == 302  # her session ended with the reset
    page = client.get(here).get_data(as_text=True)
    disable = _form(page, f"/instructor/users/{ann.id}/active")
    assert disable["active"] == "0" and 'id="set-active">Disable account<' in page
    off = client.post(f"/instructor/users/{ann.id}/active", data=disable)
    assert off.status_code == 302 and off.headers["Location"] == here
    page = client.get(here).get_data(as_text=True)
    assert _form(page, f"/instructor/users/{ann.id}/active")["active"] == "1"
    assert 'id="set-active">Enable account<' in page
    with app.app_context():
        assert not db.session().get(User, ann.id).active


def test_the_assignment_page_links_code_similarity_and_each_students_page(app, client, factory, prof):
    ann = factory.user("ann")
    factory.graded(ann, score=5.0)
    factory.graded(prof, score=10.0)  # an instructor's own try: no student page to link
    page = client.get(f"/instructor/assignments/{SLUG}").get_data(as_text=True)
    assert f'href="/instructor/assignments/{SLUG}/similarity"' in page
    assert f'<a href="/instructor/students/{ann.id}">ann</a>' in page
    assert f'/instructor/students/{prof.id}"' not in page and "<td>prof</td>" in page
