"""Students' file names (issue 11 #8): kept in Unicode, bounded in bytes, refused when unsafe, downloaded.

The route tests run on SQLite and on PostgreSQL (a NUL byte used to fail PostgreSQL's insert).
Content-Disposition is read back with the standard library's RFC 2231 parser (email), not ours.
"""

from __future__ import annotations

import unicodedata
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import PurePosixPath

import pytest
from sqlalchemy import func, select
from web_helpers import SLUG, SOLUTION, upload

from web import db
from web.filenames import MAX_NAME_BYTES, ascii_fallback, clean_filename, shorten
from workers.models import Submission

LONG_E = "é" * 150 + ".py"  # 303 bytes: past ext4's 255 ("File name too long" in grading)


def stored(app) -> list[Submission]:
    with app.app_context():
        return list(db.session().scalars(select(Submission).order_by(Submission.id)))


def saved_as(header: str) -> tuple[str, str]:
    """(the name a browser saves under, the ASCII fallback) from a Content-Disposition header.

    RFC 6266 4.3: a client that knows `filename*` takes it over `filename`.
    """
    msg = Message()
    msg["Content-Disposition"] = header
    params = [v for k, v in msg.get_params(header="Content-Disposition") if k == "filename"]
    extended = [collapse_rfc2231_value(v) for v in params if isinstance(v, tuple)]
    plain = [v for v in params if isinstance(v, str)]
    assert len(extended) == 1 and len(plain) == 1, header
    return extended[0], plain[0]


@pytest.mark.parametrize("sent,kept", [
    ("Übung_03.py", "Übung_03.py"),
    ("U\u0308bung_03.py", "Übung_03.py"),  # macOS sends decomposed (NFD) names: stored NFC
    ("作业三.py", "作业三.py"),
    ("C:\\Users\\ann\\hw.py", "hw.py"),  # an old browser's full path: its last component
    ("../../etc/hw.py", "hw.py"),
], ids=["umlaut", "nfd", "cjk", "windows-path", "dot-dot"])
def test_a_unicode_name_is_kept_and_downloaded_under_it(app, client, factory, sent, kept):
    factory.user("ann")
    factory.user("prof", "instructor")
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", sent, SOLUTION)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    (sub,) = stored(app)
    assert sub.filename == kept and unicodedata.is_normalized("NFC", sub.filename)
    mine = client.get(f"/submissions/{sub.id}/download")
    assert mine.status_code == 200 and mine.data == SOLUTION
    header = mine.headers["Content-Disposition"]
    assert header.isascii() and header.startswith("attachment;")
    name, fallback = saved_as(header)
    assert name == kept and fallback.isascii() and fallback.endswith(".py")
    factory.login(client, "prof")
    theirs = client.get(f"/instructor/submissions/{sub.id}/download")
    assert theirs.status_code == 200 and theirs.data == SOLUTION
    assert saved_as(theirs.headers["Content-Disposition"])[0] == f"{sub.id}-{kept}"
    assert kept in client.get(f"/instructor/submissions/{sub.id}").get_data(as_text=True)


def test_a_name_past_200_bytes_is_cut_at_a_character_keeping_its_extension(app, client, factory):
    factory.user("ann")
    factory.login(client, "ann")
    assert upload(client, f"/assignments/{SLUG}", LONG_E, SOLUTION).status_code == 302
    (sub,) = stored(app)
    assert len(sub.filename.encode()) <= MAX_NAME_BYTES and sub.filename.endswith(".py")
    assert sub.filename == "é" * 98 + ".py"  # 196 + 3 bytes: one more é would make 201
    name, _ = saved_as(client.get(f"/submissions/{sub.id}/download").headers["Content-Disposition"])
    assert name == sub.filename


@pytest.mark.parametrize("name,shown", [
    ("hw\x00.py", "U+0000"),
    ("hw\x1b[31m.py", "U+001B"),
    ("hw\u202eyp.exe.py", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("hw\u2028.py", "U+2028 LINE SEPARATOR"),
], ids=["nul", "escape", "bidi-override", "line-separator"])
def test_a_control_character_in_the_name_is_refused_with_a_message(app, client, factory, name, shown):
    factory.user("ann")
    factory.login(client, "ann")
    resp = upload(client, f"/assignments/{SLUG}", name, SOLUTION)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert f"the file name contains a control character ({shown})" in page and "rename the file" in page
    assert stored(app) == []


def test_the_api_refuses_a_nul_name_as_json(app, client, factory):
    import io

    from web.services.tokens import create_token

    ann = factory.user("ann")
    with app.app_context():
        token = create_token(db.session(), ann, "cli")
    resp = client.post("/api/v1/submissions", headers={"Authorization": f"Bearer {token}"},
                       data={"assignment": SLUG, "file": (io.BytesIO(SOLUTION), "a\x00b.py")},
                       content_type="multipart/form-data")
    assert resp.status_code == 400 and "control character (U+0000" in resp.get_json()["error"]
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Submission)) == 0


def test_the_gradebook_csv_is_named_per_rfc_6266(client, factory):
    factory.user("prof", "instructor")
    factory.login(client, "prof")
    header = client.get("/instructor/gradebook.csv").headers["Content-Disposition"]
    assert saved_as(header) == ("gradebook.csv", "gradebook.csv")


def test_shorten_cuts_whole_letters_only():
    for name in ("é" * 150 + ".ipynb", "😀" * 70 + ".py", "x" * 300):
        cut = shorten(name)
        suffix = PurePosixPath(name).suffix
        stem = cut.removesuffix(suffix)
        assert len(cut.encode()) <= MAX_NAME_BYTES
        assert name.startswith(stem) and name.endswith(cut[len(stem):])
    # A letter with two combining marks (3 code points, 5 bytes) is kept whole or not at all.
    letter = "a\u0301\u0323"
    cut = shorten(letter * 60 + ".py").removesuffix(".py")
    assert cut == letter * (len(cut) // 3) and len(cut) % 3 == 0
    assert clean_filename("  hw.py  ") == "hw.py" and clean_filename("") == "submission"


def test_the_ascii_fallback_drops_accents_and_quotes():
    assert ascii_fallback("Übung_03.py") == "Ubung_03.py"
    assert ascii_fallback("作业三.py") == "submission.py"
    assert ascii_fallback('a"b\\c.py') == "a_b_c.py"
