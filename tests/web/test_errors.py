"""Errors that fit: the site's page (navigation, a message, a way back) for people, JSON under /api/.

Also the stylesheet's contrast: every text colour in style.css against its background, by WCAG's formula.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from flask import abort
from sqlalchemy import func, select
from web_helpers import ROOT, SLUG, SOLUTION, csrf_of, upload

from web import db
from web.models import ApiToken
from web.services import tokens
from workers.models import Submission

STYLE = ROOT / "web" / "static" / "style.css"
NAV = '<nav aria-label="Main">'
BACK = re.compile(r'<a id="go-back" href="([^"]+)">')


def _count(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


def _page(resp, status: int) -> str:
    """The error page's text, after checking it is the site's page with the status and a message."""
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, text
    assert resp.mimetype == "text/html" and f"<h1>Error {status}</h1>" in text
    assert 'id="error-message"' in text and "Skip to content" in text
    return text


# -- pages -------------------------------------------------------------------------------------------

def test_page_errors_show_the_navigation_a_message_and_a_way_back(client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    cases = [
        (client.get("/no/such/page"), 404, "no such page"),
        (client.get("/instructor/"), 403, "you do not have access"),
        (client.get("/logout"), 405, "does not accept that kind of request"),
        (client.post("/account/tokens", data={"name": "t"}), 400, "security token (csrf)"),
    ]
    for resp, status, words in cases:
        text = _page(resp, status)
        assert NAV in text and "Log out" in text, status  # logged in: the site's navigation shows
        assert words in text.lower(), status
        assert BACK.search(text).group(1) == "/", status  # no referrer: home
    assert client.get("/logout").headers["Allow"] == "OPTIONS, POST"


def test_the_way_back_is_the_previous_page_only_when_it_is_on_this_site(client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    here = client.get("/nope", headers={"Referer": f"http://localhost/assignments/{SLUG}"})
    assert BACK.search(_page(here, 404)).group(1) == f"http://localhost/assignments/{SLUG}"
    away = client.get("/nope", headers={"Referer": "https://evil.example/phish"})
    assert BACK.search(_page(away, 404)).group(1) == "/"
    itself = client.get("/nope", headers={"Referer": "http://localhost/nope"})  # a loop back to itself
    assert BACK.search(_page(itself, 404)).group(1) == "/"


def test_a_visitor_who_is_not_logged_in_gets_the_page_with_a_login_link(client):
    text = _page(client.get("/no/such/page"), 404)
    assert NAV not in text and '<a href="/login">Log in</a>' in text


def test_a_too_large_upload_says_its_size_and_the_limit_and_stores_nothing(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    data = b"#" * 6_000_000
    text = _page(upload(client, f"/assignments/{SLUG}", "big.py", data), 413)
    limit = app.config["MAX_SUBMISSION_BYTES"] / 1e6
    size = re.search(r"Your upload is ([\d.]+) MB; the limit is ([\d.]+) MB", text)
    assert size, text
    assert float(size.group(1)) == pytest.approx(6.0, abs=0.05) and size.group(2) == f"{limit:.1f}"
    assert NAV in text and _count(app, Submission) == 0


def test_a_server_error_is_a_generic_page_and_the_traceback_goes_to_the_log(app, client, factory, caplog):
    @app.route("/boom")  # routes added for this test only
    def boom():
        raise RuntimeError("SECRET-INTERNAL-DETAIL")

    @app.route("/api/v1/boom")
    def api_boom():
        raise RuntimeError("SECRET-INTERNAL-DETAIL")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    factory.user("ann")
    factory.login(client, "ann")
    text = _page(client.get("/boom"), 500)
    assert "it has been logged" in text and NAV in text and "SECRET" not in text
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.is_json and "SECRET" not in api.get_data(as_text=True)
    assert "internal error" in api.get_json()["error"]
    assert "SECRET-INTERNAL-DETAIL" in caplog.text and "Traceback" in caplog.text


def test_too_many_requests_is_a_page_that_says_to_wait(app, client):
    @app.route("/busy")  # a limit without a handler of its own (the login form has one)
    def busy():
        abort(429)

    text = _page(client.get("/busy"), 429)
    assert "Wait a minute, then try again" in text


# -- the API -----------------------------------------------------------------------------------------

def _token(app, user) -> str:
    with app.app_context():
        return tokens.create_token(db.session(), user, "cli")


def test_every_api_error_is_json_with_the_right_status(app, client, factory):
    ann = factory.user("ann")
    auth = {"Authorization": f"Bearer {_token(app, ann)}"}
    cases = [
        (client.get("/api/v1/no-such", headers=auth), 404, "no such API address: /api/v1/no-such"),
        (client.get("/api/nothing"), 404, "no such API address"),
        (client.delete("/api/v1/assignments", headers=auth), 405, "DELETE is not allowed"),
        (client.get("/api/v1/assignments"), 401, "Authorization: Bearer"),
        (client.get("/api/v1/assignments", headers={"Authorization": "Bearer wrong"}), 401, ""),
        (client.get("/api/v1/submissions/999999", headers=auth), 404, "999999"),
        (client.post("/api/v1/submissions", headers=auth, data={}), 400, "multipart"),
    ]
    for resp, status, words in cases:
        assert resp.status_code == status and resp.is_json, (status, resp.get_data(as_text=True))
        assert set(resp.get_json()) >= {"error"} and words in resp.get_json()["error"], status
    assert client.delete("/api/v1/assignments", headers=auth).headers["Allow"] == "GET, HEAD, OPTIONS"


def test_an_api_upload_over_the_limit_is_json_with_the_real_numbers(app, client, factory):
    ann = factory.user("ann")
    resp = client.post("/api/v1/submissions", headers={"Authorization": f"Bearer {_token(app, ann)}"},
                       data={"assignment": SLUG, "file": (io.BytesIO(b"#" * 7_000_000), "big.py")},
                       content_type="multipart/form-data")
    assert resp.status_code == 413 and resp.is_json
    limit = app.config["MAX_SUBMISSION_BYTES"] / 1e6
    assert re.match(rf"your upload is 7\.0 MB; the limit is {limit:.1f} MB", resp.get_json()["error"])
    assert _count(app, Submission) == 0


def test_the_api_needs_no_csrf_token_even_with_a_session_cookie(app, client, factory):
    """A browser session on the same client must not make the API ask for a form's CSRF token."""
    ann = factory.user("ann")
    factory.login(client, "ann")
    csrf_of(client, "/account/tokens")  # the session now holds a CSRF secret, as a browser's would
    resp = client.post("/api/v1/submissions", headers={"Authorization": f"Bearer {_token(app, ann)}"},
                       data={"assignment": SLUG, "file": (io.BytesIO(SOLUTION), "solution.py")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert _count(app, Submission) == 1 and _count(app, ApiToken) == 1


def test_a_pages_json_poll_gets_json_errors(client, factory):
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    resp = client.get("/instructor/jobs/424242.json")
    assert resp.status_code == 404 and resp.is_json and "No such job" in resp.get_json()["error"]


# -- contrast ----------------------------------------------------------------------------------------

def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rgb or #rrggbb colour, or of an rgb()/rgba() string."""
    if colour.startswith("rgb"):
        channels = [int(float(c)) for c in re.findall(r"[\d.]+", colour)[:3]]
    else:
        hexes = colour.lstrip("#")
        hexes = "".join(c * 2 for c in hexes) if len(hexes) == 3 else hexes
        channels = [int(hexes[i:i + 2], 16) for i in (0, 2, 4)]
    lin = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def css_rules(path: Path) -> dict[str, dict[str, str]]:
    """selector -> {property: value} for every rule (inside @media too; comments dropped)."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        decls = dict((k.strip(), v.strip()) for k, v in
                     (d.split(":", 1) for d in body.split(";") if ":" in d))
        for sel in selectors.split(","):
            rules.setdefault(" ".join(sel.split()), {}).update(decls)
    return rules


def _colour(value: str | None) -> str | None:
    match = re.search(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b", value or "")
    return match.group(0) if match else None


def text_pairs(rules: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for every rule that sets a text colour or a background.

    A rule without its own background is read on the page's backgrounds (body's, and white cards
    and tables), or on the header's inside the header; one without its own colour has body's text.
    """
    body_fg, body_bg = _colour(rules["body"]["color"]), _colour(rules["body"]["background"])
    header_bg = _colour(rules["header"]["background"])
    pairs = []
    for sel, decls in rules.items():
        fg, bg = _colour(decls.get("color")), _colour(decls.get("background"))
        if fg is None and bg is None:
            continue
        if bg is not None:
            pairs.append((sel, fg or body_fg, bg))
        elif sel.startswith("header"):
            pairs.append((sel, fg, header_bg))
        else:
            pairs += [(sel, fg, body_bg), (sel, fg, "#fff")]
    return pairs


def test_every_text_colour_in_the_stylesheet_has_at_least_4_5_to_1_contrast():
    rules = css_rules(STYLE)
    pairs = text_pairs(rules)
    checked = {sel for sel, _, _ in pairs}
    # The pairs the pages rely on are all in the sweep (a rename must not drop them silently).
    assert {"body", "header", "header a", ".late", ".nb-label", ".flash.error", ".flash.info",
            ".flash.warning", ".state.queued", ".state.failed", ".skip-link", ".hint"} <= checked
    low = [(sel, fg, bg, round(contrast(fg, bg), 2)) for sel, fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert not low, f"text under 4.5:1: {low}"


def test_the_contrast_formula_matches_wcags_reference_values():
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777777", "#fff") == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey
    assert contrast("#888", "#fff") < 4.5 < contrast("#595959", "#fff")
