"""Every page on a phone (375 px) and a laptop, the skip link, contrast as the browser computes it,
and a 150-student roster import watched in the browser. Screenshots: screenshots/web/layout-*.png.

The page lists are the ones to extend when a page is added: each entry is a path (or a key filled in
by the test, for pages whose address holds an id) and a screenshot name.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from test_errors import contrast
from web_helpers import ROOT, SLUG, login, shots

pytestmark = pytest.mark.slow
PHONE = 375

STUDENT_PAGES = [
    ("/assignments", "student-assignments"),
    (f"/assignments/{SLUG}", "student-assignment"),
    ("{submission}", "student-submission"),
    ("/account/tokens", "student-tokens"),
    ("/account/password", "student-password"),
    ("/no/such/page", "error-404"),
]
INSTRUCTOR_PAGES = [
    ("/instructor/", "instructor-gradebook"),
    (f"/instructor/assignments/{SLUG}", "instructor-assignment"),
    ("/instructor/submissions/{submission_id}", "instructor-submission"),
    ("/instructor/extensions", "instructor-extensions"),
    ("/instructor/roster", "instructor-roster"),
    ("{roster_job}", "instructor-roster-job"),
    ("{student_page}", "instructor-student"),
    (f"/instructor/assignments/{SLUG}/similarity", "instructor-similarity"),
]

# The colours of an element's text and of the first ancestor (or itself) with an opaque background.
COLOURS_JS = """el => {
  const fg = getComputedStyle(el).color;
  for (let e = el; e; e = e.parentElement) {
    const bg = getComputedStyle(e).backgroundColor;
    if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') { return [fg, bg]; }
  }
  return [fg, 'rgb(255, 255, 255)'];
}"""


def check_page(page, url: str, name: str) -> None:
    """The page fits 375 px (no sideways scroll) with Log out on screen and clickable; screenshots."""
    page.goto(url)
    widths = shots(page, f"layout-{name}")
    assert widths[PHONE] <= PHONE, f"{name} is {widths[PHONE]} px wide on a {PHONE} px phone"
    page.set_viewport_size({"width": PHONE, "height": 900})
    logout = page.get_by_role("button", name="Log out")
    expect(logout).to_be_visible()
    box = logout.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE, f"{name}: Log out at {box}"
    logout.click(trial=True)  # every check of a real click (visible, enabled, not covered), without leaving
    for selector in ("header a.brand", "header nav a", "span.who", "main h1"):
        fg, bg = page.locator(selector).first.evaluate(COLOURS_JS)
        assert contrast(fg, bg) >= 4.5, f"{name}: {selector} is {fg} on {bg}"
    page.set_viewport_size({"width": 1280, "height": 900})


def check_skip_link(page) -> None:
    """Tab from the top of the page focuses "Skip to content", visibly; Enter moves focus to main."""
    page.set_viewport_size({"width": PHONE, "height": 900})
    page.locator("body").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.textContent, document.activeElement.className]")
    assert focused == ["Skip to content", "skip-link"]
    link = page.locator("a.skip-link")
    box = link.bounding_box()
    assert box["y"] >= 0 and box["x"] + box["width"] <= PHONE, f"the focused skip link is off screen: {box}"
    fg, bg = link.evaluate(COLOURS_JS)
    assert contrast(fg, bg) >= 4.5
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # a visible focus
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_every_page_fits_a_phone_with_log_out_reachable_and_a_working_skip_link(service, page, tmp_path):
    password = service.create_user("layout_student")
    login(page, service, "layout_student", password)
    page.click(f"a[href='/assignments/{SLUG}']")
    page.set_input_files("input[type=file]", str(ROOT / "assignments" / SLUG / "solution.py"))
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/submissions/*")
    submission = page.url
    submission_id = re.search(r"/submissions/(\d+)", submission).group(1)
    check_skip_link(page)
    for path, name in STUDENT_PAGES:
        check_page(page, service.url + path.format(submission=submission.removeprefix(service.url)), name)

    page.context.clear_cookies()
    login(page, service, "admin", service.ADMIN_PASSWORD)
    roster = tmp_path / "layout-roster.csv"
    roster.write_text("username,name,email\nlayout_a,A Person With A Rather Long Name,a@example.org\n"
                      "layout_student,Already There,\n")
    page.goto(service.url + "/instructor/roster")
    page.set_input_files("input[type=file]", str(roster))
    page.click("button:has-text('Import')")
    page.wait_for_url("**/instructor/roster/jobs/*")
    expect(page.locator("#job-text")).to_contain_text("Done", timeout=120_000)
    job = page.url.removeprefix(service.url)
    page.goto(service.url + "/instructor/?q=layout_student")
    link = page.locator("a[href^='/instructor/students/']", has_text="layout_student")
    student_page = link.first.get_attribute("href")
    for path, name in INSTRUCTOR_PAGES:
        check_page(page, service.url + path.format(submission_id=submission_id, roster_job=job,
                                                   student_page=student_page), name)


def test_a_150_student_import_shows_its_progress_live_and_its_students_can_log_in(service, page, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("username,name,email\n" + "".join(f"bulk{i:03d},Bulk Student {i},b{i}@example.org\n"
                                                        for i in range(150)))
    login(page, service, "admin", service.ADMIN_PASSWORD)
    page.goto(service.url + "/instructor/roster")
    page.set_input_files("input[type=file]", str(roster))
    page.click("button:has-text('Import')")
    page.wait_for_url("**/instructor/roster/jobs/*")
    page.evaluate("window.__sameDocument = 1")  # gone if the page reloads
    bar = page.locator("#job-progress")
    assert page.locator("#job-status[aria-live=polite]").count() == 1
    start = int(bar.get_attribute("value"))
    assert start < 150, "the import finished before the page could show it running"
    expect(page.locator("#job-actions")).to_be_hidden()  # no passwords to download or delete yet
    # The CSP forbids wait_for_function's eval: poll the bar's value from here instead.
    for _ in range(600):
        if page.evaluate("document.getElementById('job-progress').value") > start:
            break
        page.wait_for_timeout(200)
    moved = page.evaluate("document.getElementById('job-progress').value")
    assert start < moved, f"the progress bar never moved from {start}"
    shots(page, "layout-roster-import-running")
    expect(page.locator("#job-text")).to_have_text("Done: 150 of 150.", timeout=300_000)
    assert page.evaluate("window.__sameDocument") == 1, "the page reloaded instead of updating itself"
    rows = page.locator("#new-accounts tbody tr")
    expect(rows).to_have_count(150)
    expect(page.locator("#job-actions")).to_be_visible()
    shots(page, "layout-roster-import-done")
    cells = rows.filter(has_text="bulk077").locator("td")
    password = cells.nth(2).inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]\S{7,}", password), password  # starts as a spreadsheet shows it

    page.context.clear_cookies()
    login(page, service, "bulk077", password)
