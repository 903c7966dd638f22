"""CSRF rejected on every form, hostile text rendered inert on the server side, headers set."""

from __future__ import annotations

import base64
import io
import json

import pytest
from sqlalchemy import func, select
from web_helpers import PASSWORD, SLUG, SOLUTION, csrf_of

from web import db, notebook
from web.models import ApiToken, Extension, User
from workers.models import QUEUED, Submission

HOSTILE_NAME = '<img src=x onerror="window.__xss=1">.py'


def _count(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("path,data,model", [
    (f"/assignments/{SLUG}", {"file": (SOLUTION, "s.py")}, Submission),
    ("/account/tokens", {"name": "t"}, ApiToken),
    ("/instructor/extensions", {"username": "ann", "assignment": SLUG, "due_at": "2030-01-01T00:00"},
     Extension),
    ("/instructor/roster", {"file": (b"username\nzed\n", "r.csv")}, User),
])
def test_forms_without_a_csrf_token_are_rejected(app, client, factory, path, data, model):
    factory.user("ann")
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    before = _count(app, model)
    data = {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}
    resp = client.post(path, data=data, content_type="multipart/form-data")
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    assert _count(app, model) == before
    data = {k: (io.BytesIO(b"x"), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}
    bad = client.post(path, data={**data, "csrf_token": "forged"}, content_type="multipart/form-data")
    assert bad.status_code == 400


def test_button_forms_without_csrf_change_nothing(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    sub_id = factory.graded(ann, score=3.0)
    factory.login(client, "prof")
    for path in (f"/instructor/submissions/{sub_id}/regrade", f"/instructor/assignments/{SLUG}/regrade",
                 "/logout"):
        assert client.post(path).status_code == 400
    with app.app_context():
        assert db.session().get(Submission, sub_id).state != QUEUED
    assert client.get("/instructor/").status_code == 200  # still logged in
    token = csrf_of(client, "/instructor/")
    ok = client.post(f"/instructor/submissions/{sub_id}/regrade", data={"csrf_token": token})
    assert ok.status_code == 302


def test_login_form_needs_csrf(client, factory):
    factory.user("ann")
    resp = client.post("/login", data={"username": "ann", "password": PASSWORD})
    assert resp.status_code == 400 and client.get("/assignments").status_code == 302


def test_hostile_file_name_is_escaped_everywhere(client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    sub_id = factory.graded(ann, score=1.0, filename=HOSTILE_NAME)
    factory.login(client, "prof")
    for path in (f"/instructor/submissions/{sub_id}", f"/instructor/assignments/{SLUG}"):
        page = client.get(path).get_data(as_text=True)
        assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
        assert client.get(path).headers["Content-Security-Policy"].startswith("default-src 'self'")


def hostile_notebook() -> str:
    """A notebook whose source, outputs and metadata all try to run script."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "<script>window.__xss=1</script>"},
        {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1,
         "source": "print('<script>window.__xss=2</script>')",
         "outputs": [
             {"output_type": "stream", "name": "stdout", "text": "<script>window.__xss=3</script>\n"},
             {"output_type": "display_data", "metadata": {},
              "data": {"text/html": "<img src=x onerror='window.__xss=4'>",
                       "application/javascript": "window.__xss=5"}},
             {"output_type": "display_data", "metadata": {},
              "data": {"image/svg+xml": "<svg onload='window.__xss=6'/>", "text/plain": "<svg plain>"}},
             {"output_type": "display_data", "metadata": {},
              "data": {"image/png": png + '" onerror="window.__xss=7'}},
             {"output_type": "display_data", "metadata": {}, "data": {"image/png": png}},
             {"output_type": "error", "ename": "E", "evalue": "<b>x</b>",
              "traceback": ["\x1b[31m<script>window.__xss=8</script>\x1b[0m"]}]}]})


def test_notebook_render_is_inert():
    html = str(notebook.render(hostile_notebook()))
    assert "<script" not in html and "onerror=" not in html.replace("onerror=&#", "") and "<svg" not in html
    assert "&lt;script&gt;window.__xss=3&lt;/script&gt;" in html
    assert "(an output of type application/javascript, text/html is not shown)" in html
    assert "&lt;svg plain&gt;" in html  # the plain-text form of the SVG output instead
    assert html.count("<img ") == 1 and 'src="data:image/png;base64,' in html  # the forged one dropped
    assert "\x1b" not in html


def test_api_rejects_a_token_in_the_query_or_a_cookie_only(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    assert client.get("/api/v1/assignments").status_code == 401
    assert client.get("/api/v1/assignments?token=x").status_code == 401


def test_account_forms_without_csrf_change_nothing(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    new = "Velvet-Canyon-5502-oar"
    assert client.post("/account/password", data={"current": PASSWORD, "new": new, "repeat": new}
                       ).status_code == 400
    assert client.post(f"/instructor/users/{ann.id}/active", data={"active": "0"}).status_code == 400
    assert client.post(f"/instructor/users/{ann.id}/reset-password").status_code == 400
    with app.app_context():
        user = db.session().get(User, ann.id)
        assert user.active and not user.must_change_password
    assert factory.login(app.test_client(), "prof").status_code == 302  # his password is unchanged
    assert factory.login(app.test_client(), "ann").status_code == 302
