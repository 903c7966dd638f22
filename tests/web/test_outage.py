"""The database goes away (issue 11 #7): every API route answers JSON 503 with Retry-After, pages a 503 page.

The outage is real: the app runs on a private PostgreSQL (conftest.PrivatePostgres) that the test
stops with `pg_ctl -m immediate` while the app holds pooled connections, and starts again. A port
nobody listens on would only show a refused first connect; this also cuts connections the pool
already holds, and shows the app recovering by itself when the server returns. Requests go over
real HTTP (werkzeug's threaded server) with urllib, as `grader submit` sends them.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from web_helpers import CSRF, PASSWORD, SLUG, SOLUTION

from grader.submit import _multipart
from web import db
from web.services.tokens import create_token
from workers.models import Submission


def call(url: str, *, token: str | None = None, data: bytes | None = None, ctype: str | None = None,
         opener: urllib.request.OpenerDirector | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP request; error statuses are answers too."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def count(app) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(Submission))


@pytest.fixture
def world(outage_app, outage_factory):
    """A student with an API token, made while the database is up."""
    ann = outage_factory.user("ann")
    with outage_app.app_context():
        token = create_token(db.session(), ann, "cli")
    return dict(ann=ann, token=token)


def login(live, username: str) -> tuple[urllib.request.OpenerDirector, str]:
    """A cookie-keeping opener logged in over HTTP, and a CSRF token of its session."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    _, _, page = call(live.url + "/login", opener=opener)
    token = CSRF.search(page.decode()).group(1)
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token}).encode()
    status, _, page = call(live.url + "/login", data=body, ctype="application/x-www-form-urlencoded",
                           opener=opener)
    assert status == 200 and "Log out" in page.decode()
    return opener, CSRF.search(call(live.url + f"/assignments/{SLUG}", opener=opener)[2].decode()).group(1)


def test_every_api_route_answers_json_503_with_retry_after_and_stores_nothing(outage_app, live, world,
                                                                              private_pg):
    token = world["token"]
    body, ctype = _multipart({"assignment": SLUG}, "file", Path("solution.py"), SOLUTION)
    status, _, created = call(live.url + "/api/v1/submissions", token=token, data=body, ctype=ctype)
    assert status == 201
    sub_id = json.loads(created)["id"]

    private_pg.stop()
    requests = [("GET", "/api/v1/assignments"), ("GET", f"/api/v1/submissions/{sub_id}"),
                ("POST", "/api/v1/submissions")]
    for method, path in requests:
        data = body if method == "POST" else None
        status, headers, answer = call(live.url + path, token=token, data=data, ctype=ctype if data else None,
                                       headers={"Idempotency-Key": uuid.uuid4().hex})
        assert status == 503, (path, answer[:300])
        assert headers["Content-Type"] == "application/json" and headers["Retry-After"] == "1"
        error = json.loads(answer)["error"]
        assert "temporarily unavailable" in error and "database cannot be reached" in error
        assert "try again in 1 s" in error

    private_pg.start()  # the app recovers by itself: its pool drops the dead connections
    assert call(live.url + "/api/v1/assignments", token=token)[0] == 200
    assert count(outage_app) == 1  # the upload sent during the outage left nothing behind


def test_pages_answer_a_503_page_in_the_sites_look_and_an_upload_is_not_half_stored(
        outage_app, live, world, private_pg, outage_factory):
    sub_id = outage_factory.graded(world["ann"], score=5.0)
    opener, csrf = login(live, "ann")
    private_pg.stop()
    status, headers, answer = call(live.url + f"/submissions/{sub_id}/status.json", opener=opener,
                                   headers={"Accept": "application/json"})  # what status.js polls
    assert status == 503 and headers["Content-Type"] == "application/json"
    assert "temporarily unavailable" in json.loads(answer)["error"]
    status, headers, page = call(live.url + "/assignments", opener=opener)
    text = page.decode()
    assert status == 503 and headers["Retry-After"] == "1" and headers["Content-Type"].startswith("text/html")
    assert "<h1>Temporarily unavailable</h1>" in text and "/static/style.css" in text  # base.html's look
    assert "tries again by itself in 1 seconds" in text and '<meta http-equiv="refresh" content="1">' in text

    form, ctype = _multipart({"csrf_token": csrf}, "file", Path("solution.py"), SOLUTION)
    status, _, page = call(live.url + f"/assignments/{SLUG}", data=form, ctype=ctype, opener=opener)
    text = page.decode()
    assert status == 503 and "was <strong>not saved</strong>" in text and "upload it again" in text
    assert "http-equiv" not in text  # a reload would not resend the file: no automatic refresh

    private_pg.start()
    assert count(outage_app) == 1  # the graded one made before: nothing from the upload
    status, _, page = call(live.url + "/assignments", opener=opener)
    assert status == 200 and "Log out" in page.decode()  # the same session works once it is back


def test_an_instructor_page_in_an_outage_is_the_503_page_not_a_crash(live, outage_factory, private_pg):
    outage_factory.user("prof", "instructor")
    opener, _ = login(live, "prof")
    private_pg.stop()
    for path in ("/instructor/", f"/instructor/assignments/{SLUG}", "/instructor/gradebook.csv"):
        status, _, page = call(live.url + path, opener=opener)
        assert status == 503 and "Temporarily unavailable" in page.decode(), path


def test_the_outage_handler_leaves_other_errors_alone(app, client):
    """A bug is still a 500 (logged with its traceback), not dressed up as an outage."""
    from sqlalchemy.exc import IntegrityError

    @app.route("/boom")
    def boom():  # a route added for this test only
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = client.get("/boom")
    assert resp.status_code == 500 and "Retry-After" not in resp.headers
    assert "Temporarily unavailable" not in resp.get_data(as_text=True)


def test_the_database_going_away_mid_request_still_gets_the_503_page(outage_app, outage_factory, private_pg):
    """The user's row was loaded, then the server died: the page must not touch that row again."""
    from flask import g
    from sqlalchemy import text

    outage_factory.user("prof", "instructor")

    @outage_app.route("/test-only/outage-mid-request")  # a route of this test: the outage strikes inside it
    def mid_request():
        assert g.user is not None and g.user.username == "prof"
        private_pg.stop()
        db.session().execute(text("SELECT 1"))  # the pooled connection the user was read on is cut now
        return "not reached"

    client = outage_app.test_client()
    outage_factory.login(client, "prof")
    resp = client.get("/test-only/outage-mid-request")
    assert resp.status_code == 503 and "Temporarily unavailable" in resp.get_data(as_text=True)
    assert "Log out" not in resp.get_data(as_text=True)  # no user on the page: it could not be read
