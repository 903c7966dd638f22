"""The instructor's grading tools in a real browser against the real one-command service: search and
sort the gradebook, open a student, override a score, revoke an extension, download the exports, and
watch the pages update themselves after a regrade. Screenshots (1280 and 375 px) go to screenshots/web/.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from web_helpers import ROOT, SLUG, Http, login, shots

from grader.submit import main as submit

pytestmark = pytest.mark.slow
PHONE = 375


def graded_submission(service, username: str, file: str = "solution.py") -> None:
    """A student of the service submits with `grader submit` and waits until it is graded."""
    password = service.create_user(username)
    token = Http(service.url).login(username, password).new_token()
    path = ROOT / "assignments" / SLUG / file
    assert submit(file=path, assignment=SLUG, url=service.url, token=token, wait_s=120, poll_s=0.3) == 0


def fits_a_phone(widths: dict[int, int], name: str) -> None:
    assert widths[PHONE] <= PHONE, f"{name} scrolls sideways on a phone ({widths[PHONE]} px)"


def watch_swaps(page) -> None:  # noqa: ANN001 (playwright types)
    """Mark the document (gone if it reloads) and count instructor.js's in-place updates."""
    page.evaluate("window.__sameDocument = 1; window.__swaps = 0;"
                  "document.addEventListener('live:updated', () => { window.__swaps += 1; })")


def download(page, selector: str, tmp_path, name: str):  # noqa: ANN001, ANN201 (playwright types)
    with page.expect_download() as dl:
        page.click(selector)
    path = tmp_path / name
    dl.value.save_as(path)
    return dl.value.suggested_filename, path


def test_instructor_grades_with_the_gradebook_student_page_exports_and_live_regrades(service, page, tmp_path):
    graded_submission(service, "gi_ann")  # 10 points
    service.create_user("gi_bob")  # nothing submitted
    login(page, service, "admin", service.ADMIN_PASSWORD)

    # An extension to revoke later (a date in the future: her submission stays on time either way).
    page.goto(service.url + "/instructor/extensions")
    page.fill("input[name=username]", "gi_ann")
    page.select_option("select[name=assignment]", SLUG)
    page.fill("input[name=due_at]", (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("textarea[name=reason]", "family emergency")
    page.click("button:has-text('Grant')")
    expect(page.locator("p.flash.info")).to_have_text("extension granted to gi_ann")

    # Search, then sort by total, highest first, then lowest first (the header links toggle).
    page.goto(service.url + "/instructor/")
    page.fill("#gb-q", "gi_")
    page.click("form.gb-search button")
    names = page.locator("a.student")
    expect(names).to_have_text(["gi_ann", "gi_bob"])
    page.click("th a.sort:has-text('Total')")
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    expect(names).to_have_text(["gi_ann", "gi_bob"])
    page.click("th a.sort:has-text('Total')")
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    expect(names).to_have_text(["gi_bob", "gi_ann"])
    assert "q=gi_" in page.url and "sort=total" in page.url and "dir=asc" in page.url  # a shareable link
    fits_a_phone(shots(page, "20_instructor_gradebook_search_sort"), "the gradebook")

    # The student's page: override her score with a comment.
    page.click("a.student:has-text('gi_ann')")
    expect(page.locator("#student-username")).to_have_text("gi_ann")
    assert page.locator("section#account-actions").count() == 1
    form = page.locator(f"#override-{SLUG}")
    form.locator("summary").click()  # each assignment's form is folded until opened
    form.locator("input[name$=-score]").fill("7.5")
    form.locator("textarea").fill("plagiarised helper function, agreed in office hours")
    form.locator("button:has-text('Set override')").click()
    expect(page.locator("p.flash.info")).to_contain_text("override of")
    expect(page.locator("#override-trail")).to_contain_text("graded → 7.50")
    expect(page.locator("#override-trail")).to_contain_text("plagiarised helper function")
    expect(page.locator(f"#a-{SLUG}")).to_contain_text("7.50")

    # Revoke her extension from her page: it stays in the list, struck through, with who and when.
    ext = page.locator("table.extensions tr.in-force", has_text=SLUG)
    ext.locator("button:has-text('Revoke')").click()
    revoked = page.locator("table.extensions tr.revoked", has_text=SLUG)
    expect(revoked).to_contain_text("revoked by admin")
    assert revoked.locator("del").count() == 1
    fits_a_phone(shots(page, "21_instructor_student_page"), "the student page")

    # The gradebook marks the overridden cell, and its CSV says so.
    page.goto(service.url + "/instructor/?q=gi_ann")
    mark = page.locator("tr", has_text="gi_ann").locator(".override-mark")
    expect(mark).to_have_attribute("title", re.compile("plagiarised helper function.*graded 10.00"))
    _, path = download(page, "#export-csv", tmp_path, "gradebook.csv")
    row = next(r for r in csv.DictReader(path.open()) if r["username"] == "gi_ann")
    assert row[SLUG] == "7.50" and "7.50 (graded 10.00)" in row["overrides"]

    # The assignment's per-test CSV and a submission's results.json.
    page.goto(service.url + f"/instructor/assignments/{SLUG}")
    name, path = download(page, "#export-tests", tmp_path, "tests.csv")
    assert name == f"{SLUG}-tests.csv"
    row = next(r for r in csv.DictReader(path.open()) if r["username"] == "gi_ann")
    assert (row["tests_total"], row["override"], row["score"]) == ("10.00", "7.50", "7.50")
    assert any(k not in ("username", "name", "submission") and v == "2" for k, v in row.items()), row
    fits_a_phone(shots(page, "22_instructor_assignment_page"), "the assignment page")

    # Regrade all: the assignment page updates by itself (no reload) until nothing is queued.
    page.click("#regrade-all")
    expect(page.locator("p.flash.info")).to_contain_text("queued for regrading")
    watch_swaps(page)
    expect(page.locator("#live")).to_contain_text("this page updates by itself")  # the regrade is in flight
    expect(page.locator("#live")).to_have_count(0, timeout=120_000)
    expect(page.locator("#states")).not_to_contain_text("queued")
    assert page.evaluate("window.__sameDocument") == 1, "the page reloaded instead of updating itself"
    assert page.evaluate("window.__swaps") >= 1

    page.goto(service.url + "/instructor/?q=gi_ann")
    page.locator("tr", has_text="gi_ann").locator("td.num a").first.click()
    name, path = download(page, "#results-json", tmp_path, "results.json")
    assert re.fullmatch(r"\d+-results\.json", name)
    results = json.loads(path.read_text())
    assert results["score"] == 10 and {t["status"] for t in results["tests"]} == {"passed"}

    # Regrade one submission: its page shows the new grading in its history without a reload.
    history = page.locator("#history tbody tr")
    before = history.count()
    page.click("#regrade")
    expect(page.locator("p.flash.info")).to_have_text("queued for regrading")
    watch_swaps(page)
    expect(page.locator("#live")).to_contain_text("this page updates by itself")
    expect(history).to_have_count(before + 1, timeout=120_000)
    expect(page.locator("#state")).to_have_text("graded")
    expect(page.locator("#live")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") == 1, "the page reloaded instead of updating itself"
    assert page.evaluate("window.__swaps") >= 1
    expect(page.locator("p.flash.info")).to_have_text("queued for regrading")  # the swap keeps the flash
