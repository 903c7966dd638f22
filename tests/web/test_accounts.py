"""Accounts that hold (issue 12 #1-4): server-side sessions, password policy, change and reset, login limits.

Real parts: the app on SQLite and PostgreSQL (conftest's db_url), zxcvbn, argon2, and the login
limit's storage both in memory and in the real Redis at 127.0.0.1:6379 (a key prefix per test).
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from flask import Flask
from sqlalchemy import select
from web_helpers import PASSWORD, ROOT, SLUG, Factory, Service, csrf_of

from web import create_app, db
from web.models import Base, User, UserSession
from web.services import passwords, sessions, users
from web.services.tokens import create_token
from workers.db import make_engine
from workers.models import utcnow

REDIS = "redis://127.0.0.1:6379/0"
NEW_PASSWORD = "Velvet-Canyon-5502-oar"


def cookie(client) -> str:
    return client.get_cookie("session").value


def replay(app: Flask, value: str):
    """A new browser that sends a copied session cookie."""
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def logged_in(client) -> bool:
    return client.get("/assignments").status_code == 200


def change(client, current: str, new: str, repeat: str | None = None):
    token = csrf_of(client, "/account/password")
    return client.post("/account/password", data={"csrf_token": token, "current": current, "new": new,
                                                  "repeat": new if repeat is None else repeat})


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --- sessions ---------------------------------------------------------------------------------------

def test_a_cookie_copied_before_logout_is_dead_after_it(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    copied = cookie(client)
    assert logged_in(replay(app, copied))  # the copy works while the session lives
    client.post("/logout", data={"csrf_token": csrf_of(client, "/assignments")})
    stale = replay(app, copied).get("/assignments")
    assert stale.status_code == 302 and stale.headers["Location"].startswith("/login")
    with app.app_context():
        row = db.session().scalars(select(UserSession)).one()
        assert row.revoked_at is not None and len(row.token_hash) == 64
        assert row.token_hash != copied  # only the hash of the token is stored


def test_a_cookie_that_carries_only_a_user_id_no_longer_authenticates(app, factory):
    ann = factory.user("ann")
    forged = app.session_interface.get_signing_serializer(app).dumps({"user_id": ann.id})
    resp = replay(app, forged).get("/assignments")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_password_change_ends_the_other_sessions_and_rotates_this_one(app, client, factory):
    factory.user("ann")
    other = app.test_client()
    factory.login(client, "ann")
    factory.login(other, "ann")
    before = cookie(client)
    resp = change(client, PASSWORD, NEW_PASSWORD)
    assert resp.status_code == 302
    assert "Your password was changed" in text(client.get("/assignments"))
    assert logged_in(client)  # this browser goes on, with a new session
    assert not logged_in(other)  # the other browser is logged out
    assert not logged_in(replay(app, before))  # and so is a copy of this one's old cookie
    assert factory.login(app.test_client(), "ann").status_code == 401
    assert factory.login(app.test_client(), "ann", NEW_PASSWORD).status_code == 302
    with app.app_context():
        ann = db.session().scalar(select(User).where(User.username == "ann"))
        assert ann.password_changed_at is not None and not ann.must_change_password


def test_disabling_an_account_ends_its_sessions_and_enabling_lets_it_log_in(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    factory.login(client, "ann")
    prof = app.test_client()
    factory.login(prof, "prof")
    token = csrf_of(prof, "/instructor/")
    resp = prof.post(f"/instructor/users/{ann.id}/active",
                     data={"csrf_token": token, "active": "0", "next": "/instructor/roster"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/instructor/roster"
    assert "ann&#39;s account is disabled" in text(prof.get("/instructor/roster"))
    assert not logged_in(client)
    with app.app_context():
        assert sessions.live_count(db.session(), ann.id) == 0  # ended on the server, not only refused
    refused = factory.login(app.test_client(), "ann")
    assert refused.status_code == 401 and "wrong username or password" in text(refused)
    resp = prof.post(f"/instructor/users/{ann.id}/active",
                     data={"csrf_token": token, "active": "1", "next": "https://evil.example/"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/instructor/"  # not another site
    assert factory.login(app.test_client(), "ann").status_code == 302
    bad = prof.post(f"/instructor/users/{ann.id}/active", data={"csrf_token": token, "active": "yes"})
    # (the error page capitalises the message's first letter)
    assert bad.status_code == 400 and "ctive must be 0 (disable) or 1 (enable)" in text(bad)


def test_an_idle_or_old_session_ends(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    with app.app_context():
        s = db.session()
        row = s.scalars(select(UserSession)).one()
        row.last_seen_at = utcnow() - timedelta(seconds=app.config["LOGIN_SESSION_IDLE_S"] + 60)
        s.commit()
    assert not logged_in(client)
    factory.login(client, "ann")
    with app.app_context():
        s = db.session()
        row = s.scalars(select(UserSession).where(UserSession.revoked_at.is_(None))).one()
        row.created_at = utcnow() - timedelta(seconds=app.config["LOGIN_SESSION_MAX_S"] + 60)
        s.commit()
    assert not logged_in(client)


def test_last_seen_is_written_at_most_once_a_minute(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")

    def last_seen():
        with app.app_context():
            return db.session().scalars(select(UserSession)).one().last_seen_at

    first = last_seen()
    client.get("/assignments")
    assert last_seen() == first  # within the minute: a read, no write
    with app.app_context():
        s = db.session()
        s.scalars(select(UserSession)).one().last_seen_at = utcnow() - timedelta(minutes=2)
        s.commit()
    client.get("/assignments")
    assert utcnow() - sessions.as_utc(last_seen()) < timedelta(seconds=30)


def test_pages_of_a_logged_in_user_and_the_login_page_are_not_stored(client, factory):
    factory.user("ann")
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    factory.login(client, "ann")
    for path in ("/assignments", f"/assignments/{SLUG}", "/account/tokens", "/account/password"):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path
    # The same stylesheet for everyone: cacheable.
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")


# --- password policy ---------------------------------------------------------------------------------

@pytest.mark.parametrize("password,why", [
    ("a", "too short (1 characters)"),
    ("password123", "too easy to guess: This is a very common password"),
    ("qwertyuiopas", "too easy to guess"),
    ("annabelle-2024", "mostly your username"),
    ("Annabelle-summer", "mostly your username"),
    ("x" * 201, "too long (201 characters)"),
])
def test_the_policy_refuses_short_common_personal_and_huge_passwords(password, why):
    with pytest.raises(passwords.WeakPassword, match=re.escape(why)):
        passwords.check(password, username="annabelle")


def test_the_test_passwords_and_generated_ones_pass_the_policy():
    passwords.check(PASSWORD, username="ann")
    passwords.check(Service.ADMIN_PASSWORD, username="admin")  # has "admin" in it, and a strong rest
    passwords.check("ann-Velvet-Canyon-5502", username="ann")
    passwords.check(NEW_PASSWORD, username="ann")
    for _ in range(100):
        passwords.check(users.new_password("ann"), username="ann")


def test_create_user_refuses_a_weak_password_and_stores_nothing(app):
    with app.app_context():
        with pytest.raises(passwords.WeakPassword, match="too short"):
            users.create_user(db.session(), username="ann", password="hunter2")
        assert db.session().scalar(select(User)) is None


@pytest.mark.parametrize("new,repeat,message", [
    ("short", None, "That password is too short (5 characters)"),
    ("iloveyou12345", None, "too easy to guess"),
    ("ann-1234567890", None, "mostly your username"),
    (NEW_PASSWORD, NEW_PASSWORD + "x", "the two new passwords differ"),
    (PASSWORD, None, "the same as the current one"),
])
def test_the_change_page_refuses_a_weak_or_mistyped_password(app, client, factory, new, repeat, message):
    factory.user("ann")
    factory.login(client, "ann")
    resp = change(client, PASSWORD, new, repeat)
    assert resp.status_code == 400 and message in text(resp)
    assert factory.login(app.test_client(), "ann").status_code == 302  # the old password still works


def test_the_change_page_wants_the_current_password(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    resp = change(client, "not-my-password", NEW_PASSWORD)
    assert resp.status_code == 400 and "your current password is not the one you typed" in text(resp)
    assert factory.login(app.test_client(), "ann").status_code == 302


def run_web(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in __import__("os").environ.items()
                   if k not in ("DATABASE_URL", "BROKER_URL", "TORCHGRADE_DATABASE", "TORCHGRADE_BROKER",
                                "TORCHGRADE_ADMIN_PASSWORD")}
    environment.update(TORCHGRADE_INSTANCE=str(tmp_path / "instance"), PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "web", *args], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_the_operators_commands_apply_the_policy(tmp_path):
    weak = run_web(tmp_path, "init-db", TORCHGRADE_ADMIN_PASSWORD="password123")
    assert weak.returncode == 2
    assert "error: TORCHGRADE_ADMIN_PASSWORD is refused: That password is too easy to guess" in weak.stderr
    first = run_web(tmp_path, "init-db")  # no password given: a one-time one, changed at first login
    assert first.returncode == 0 and "one-time password '" in first.stdout
    created = run_web(tmp_path, "create-user", "bob", "--password", "bob")
    assert created.returncode == 2 and "error: That password is too short (3 characters)" in created.stderr
    assert run_web(tmp_path, "create-user", "bob", "--password", PASSWORD).returncode == 0
    reset = run_web(tmp_path, "reset-password", "admin")
    assert reset.returncode == 0 and "now has the one-time password" in reset.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'instance' / 'torchgrade.sqlite'}")
    with engine.connect() as conn:
        rows = dict(conn.execute(select(User.username, User.must_change_password)).all())
    engine.dispose()
    assert rows == {"admin": True, "bob": False}


# --- forced change, reset ----------------------------------------------------------------------------

def reset(prof, user_id: int, next_page: str = "/instructor/"):
    token = csrf_of(prof, "/instructor/")
    return prof.post(f"/instructor/users/{user_id}/reset-password",
                     data={"csrf_token": token, "next": next_page})


def test_a_reset_gives_a_one_time_password_that_must_be_replaced(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    factory.login(client, "ann")
    with app.app_context():
        api_token = create_token(db.session(), ann, "cli")
    prof = app.test_client()
    factory.login(prof, "prof")
    page = reset(prof, ann.id, "/instructor/roster")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    one_time = re.search(r'id="one-time-password">([^<]+)<', text(page)).group(1)
    assert 'id="back" href="/instructor/roster"' in text(page)
    assert not logged_in(client)  # her session ended
    assert factory.login(app.test_client(), "ann").status_code == 401  # the old password is gone
    ann_client = app.test_client()
    first = factory.login(ann_client, "ann", one_time)
    assert first.status_code == 302 and first.headers["Location"] == "/account/password"
    for path in ("/assignments", "/", f"/assignments/{SLUG}", "/account/tokens"):
        resp = ann_client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"] == "/account/password", path
    forced = ann_client.get("/account/password")
    assert forced.status_code == 200 and "You logged in with a one-time password" in text(forced)
    assert ann_client.get("/static/style.css").status_code == 200
    # Her API tokens died with the reset (a taken-over account is recovered this way) ...
    api = app.test_client().get("/api/v1/assignments", headers={"Authorization": f"Bearer {api_token}"})
    assert api.status_code == 401
    assert "API tokens were revoked" in text(page)
    # ... and the token API is not a page: a new token answers while her new password is due.
    with app.app_context():
        fresh = create_token(db.session(), db.session().get(User, ann.id), "new")
    api = app.test_client().get("/api/v1/assignments", headers={"Authorization": f"Bearer {fresh}"})
    assert api.status_code == 200
    assert change(ann_client, one_time, NEW_PASSWORD).status_code == 302
    assert logged_in(ann_client)
    with app.app_context():
        assert not db.session().get(User, ann.id).must_change_password


def test_logout_still_works_while_a_new_password_is_due(app, factory):
    ann = factory.user("ann")
    with app.app_context():
        s = db.session()
        s.get(User, ann.id).must_change_password = True
        s.commit()
    c = app.test_client()
    factory.login(c, "ann")
    resp = c.post("/logout", data={"csrf_token": csrf_of(c, "/account/password")})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert c.get("/account/password").status_code == 302


def test_who_may_reset_and_disable(app, factory):
    ann = factory.user("ann")
    bob = factory.user("bob")
    prof = factory.user("prof", "instructor")
    other = factory.user("other_prof", "instructor")
    student = app.test_client()
    factory.login(student, "bob")
    assert reset(student, ann.id).status_code == 403  # students: never (INSTRUCTOR_ONLY)
    c = app.test_client()
    factory.login(c, "prof")
    theirs = reset(c, other.id)
    assert theirs.status_code == 403 and "another instructor&#39;s account here" in text(theirs)
    own = reset(c, prof.id)
    assert own.status_code == 403 and "change your own password on the Change password page" in text(own)
    token = csrf_of(c, "/instructor/")
    off = c.post(f"/instructor/users/{other.id}/active", data={"csrf_token": token, "active": "0"})
    assert off.status_code == 403
    assert reset(c, 999_999).status_code == 404
    no_csrf = c.post(f"/instructor/users/{bob.id}/reset-password")
    assert no_csrf.status_code == 400
    assert factory.login(app.test_client(), "bob").status_code == 302  # nothing was reset
    anonymous = app.test_client().post(f"/instructor/users/{bob.id}/reset-password")
    assert anonymous.status_code in (302, 400)
    page = reset(c, bob.id, "//evil.example/x")
    assert 'id="back" href="/instructor/"' in text(page)  # an unsafe next: back to the gradebook


# --- login rate limit --------------------------------------------------------------------------------

LIMITS = {"LOGIN_LIMIT_ACCOUNT": "3/minute;10/hour", "LOGIN_LIMIT_ADDRESS": "6/minute"}


@pytest.fixture(params=["memory", "redis"])
def limited(request, db_url: str, broker_url: str) -> Iterator[Flask]:
    """The app with small login limits, counted in memory or in the real Redis under a fresh prefix."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    prefix = f"tgtest-{uuid.uuid4().hex[:12]}"
    storage = REDIS if request.param == "redis" else "memory://"
    app = create_app({"DATABASE_URL": db_url, "BROKER_URL": broker_url, **LIMITS,
                      "RATELIMIT_STORAGE_URI": storage, "RATELIMIT_KEY_PREFIX": prefix})
    app.limit_storage = request.param
    app.limit_prefix = prefix
    yield app
    app.extensions["torchgrade.engine"].dispose()
    if request.param == "redis":
        r = redis.Redis.from_url(REDIS)
        for key in r.scan_iter(f"*{prefix}*"):
            r.delete(key)


def test_failed_logins_are_limited_per_account_and_then_even_the_right_password_waits(limited):
    f = Factory(limited)
    f.user("ann")
    f.user("bob")
    c = limited.test_client()
    for name in ("ann", "ANN", " Ann "):  # one account, however it is typed
        assert f.login(c, name, "wrong").status_code == 401
    refused = f.login(c, "ann")  # the right password, but the account is limited
    body = text(refused)
    assert refused.status_code == 429, body
    assert "Too many failed attempts for this account. Wait " in body and " seconds and try again" in body
    assert 'name="username"' in body and "ask your instructor to reset it" in body  # the login form again
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"
    assert f.login(c, "bob").status_code == 302  # another account from the same address is not held
    if limited.limit_storage == "redis":
        keys = list(redis.Redis.from_url(REDIS).scan_iter(f"*{limited.limit_prefix}*"))
        assert keys and any(b"account" in k for k in keys), keys  # counted in Redis, not in this process


def test_successful_logins_never_count(limited):
    f = Factory(limited)
    f.user("ann")
    for _ in range(8):  # more than both limits
        assert f.login(limited.test_client(), "ann").status_code == 302
    assert f.login(limited.test_client(), "ann", "wrong").status_code == 401


def test_failed_logins_are_limited_per_address(limited):
    f = Factory(limited)
    f.user("zed")
    c = limited.test_client()
    for i in range(6):  # six accounts, one failure each: under every account's limit
        assert f.login(c, f"guess{i}", "wrong").status_code == 401
    refused = f.login(c, "zed")
    assert refused.status_code == 429
    assert "Too many failed attempts from your network address" in text(refused)
    elsewhere = limited.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert f.login(elsewhere, "zed").status_code == 302


def test_x_forwarded_for_is_trusted_only_when_configured(limited):
    f = Factory(limited)
    f.user("zed")
    c = limited.test_client()
    for i in range(6):  # a forged header per try does not escape the address limit
        c.environ_base["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{i}"
        assert f.login(c, f"guess{i}", "wrong").status_code == 401
    assert f.login(c, "zed").status_code == 429
    limited.config["TRUSTED_PROXIES"] = 1  # one proxy in front: the address it saw is the client's
    c.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.9"
    assert f.login(c, "zed").status_code == 302


def test_wrong_current_passwords_on_the_change_page_are_limited(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    for _ in range(5):  # LOGIN_LIMIT_ACCOUNT's default: 5 a minute
        assert change(client, "not-my-password", NEW_PASSWORD).status_code == 400
    held = change(client, PASSWORD, NEW_PASSWORD)
    assert held.status_code == 429 and "Too many failed attempts for this account" in text(held)
    assert factory.login(app.test_client(), "ann").status_code == 302  # unchanged


def test_the_default_limit_store_follows_the_broker(monkeypatch, tmp_path):
    from web.config import Config

    monkeypatch.delenv("TORCHGRADE_RATELIMIT_STORAGE", raising=False)
    monkeypatch.delenv("TORCHGRADE_BROKER", raising=False)
    monkeypatch.setenv("BROKER_URL", "redis://cache:6379/1")
    assert Config.from_env(tmp_path)["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/1"
    monkeypatch.delenv("BROKER_URL")
    assert Config.from_env(tmp_path)["RATELIMIT_STORAGE_URI"] == "memory://"
    monkeypatch.setenv("TORCHGRADE_RATELIMIT_STORAGE", "redis://limits:6379/2")
    assert Config.from_env(tmp_path)["RATELIMIT_STORAGE_URI"] == "redis://limits:6379/2"
