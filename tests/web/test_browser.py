"""The main paths in a real browser (Debian's chromium, driven by Playwright); screenshots for review.

Screenshots go to screenshots/web/ (or $TORCHGRADE_SCREENSHOTS). Playwright never downloads a
browser here: it drives /usr/bin/chromium (the `browser` and `page` fixtures are in conftest.py).
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect
from test_security import hostile_notebook
from web_helpers import ROOT, SLUG, login, shot

pytestmark = pytest.mark.slow
XSS_NAME = '<img src=x onerror="window.__xss=9">.ipynb'


def test_student_uploads_watches_the_status_and_reads_feedback(service, page):
    password = service.create_user("browser_student")
    login(page, service, "browser_student", password)
    shot(page, "01_student_assignments")
    page.click(f"a[href='/assignments/{SLUG}']")
    page.set_input_files("input[type=file]", str(ROOT / "assignments" / SLUG / "solution.py"))
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/submissions/*")
    page.evaluate("window.__sameDocument = 1")  # gone if the page reloads
    state = page.locator("#state")
    assert state.inner_text() in ("queued", "running", "graded")
    shot(page, "02_student_submission_waiting")
    expect(page.locator("#state")).to_have_text("graded", timeout=90_000)
    page.wait_for_selector("#score")
    assert page.evaluate("window.__sameDocument") == 1, "the page reloaded instead of updating itself"
    assert page.inner_text("#score") == "10.00"
    feedback = page.inner_text("#feedback")
    assert "forward" in feedback and "hidden test(s) show only the kind of mistake" in feedback
    shot(page, "03_student_feedback")
    page.goto(service.url + f"/assignments/{SLUG}")
    shot(page, "04_student_assignment")


def test_instructor_gradebook_regrade_and_csv_export(service, page, tmp_path):
    password = service.create_user("browser_grader_target")
    from web_helpers import Http

    from grader.submit import main as submit

    token = Http(service.url).login("browser_grader_target", password).new_token()
    assert submit(file=ROOT / "assignments" / SLUG / "solution.py", assignment=SLUG, url=service.url,
                  token=token, wait_s=120, poll_s=0.3) == 0
    login(page, service, "admin", service.ADMIN_PASSWORD)
    page.goto(service.url + "/instructor/")
    row = page.locator("tr", has_text="browser_grader_target")
    assert "10.00" in row.inner_text()
    shot(page, "05_instructor_gradebook")
    with page.expect_download() as download:
        page.click("#export-csv")
    csv_path = tmp_path / "gradebook.csv"
    download.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("username,name,") and any(
        line.startswith("browser_grader_target,") and "10.00" in line for line in lines)
    row.locator("a", has_text="10.00").click()
    page.click("#regrade")
    page.wait_for_selector("text=queued for regrading")
    for _ in range(120):
        page.reload()
        if page.inner_text("#state") == "graded" and page.locator("#history tbody tr").count() == 2:
            break
        page.wait_for_timeout(500)
    assert page.locator("#history tbody tr").count() == 2
    shot(page, "06_instructor_submission_after_regrade")
    page.goto(service.url + f"/instructor/assignments/{SLUG}")
    assert page.locator("svg.plot").count() == 3
    shot(page, "07_instructor_statistics")
    page.goto(service.url + "/instructor/extensions")
    shot(page, "08_instructor_extensions")


def test_hostile_notebook_and_file_name_stay_inert(service, page, tmp_path):
    password = service.create_user("browser_mallory")
    login(page, service, "browser_mallory", password)
    page.add_init_script("window.__xss = undefined;")
    nb = json.loads(hostile_notebook())
    for cell in nb["cells"]:  # the engine runs code cells: keep them runnable, their output hostile
        if cell["cell_type"] == "code":
            cell["source"] = "print('<script>window.__xss=2</script>')"
    page.goto(service.url + f"/assignments/{SLUG}")
    page.set_input_files("input[type=file]", files=[{"name": XSS_NAME, "mimeType": "application/json",
                                                     "buffer": json.dumps(nb).encode()}])
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/submissions/*")
    sub_url = page.url
    expect(page.locator("#state")).to_have_text(re.compile("graded|failed"), timeout=120_000)
    assert XSS_NAME in page.inner_text("code.filename")  # shown as text
    login(page, service, "admin", service.ADMIN_PASSWORD)
    page.goto(sub_url.replace("/submissions/", "/instructor/submissions/"))
    text = page.inner_text("body")
    assert "<script>window.__xss=1</script>" in text  # the markdown cell's source, as text
    assert XSS_NAME in text
    for url in (sub_url, page.url, service.url + f"/instructor/assignments/{SLUG}"):
        page.goto(url)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__xss") is None, f"a script ran on {url}"
    assert page.dialogs == []
    page.goto(sub_url.replace("/submissions/", "/instructor/submissions/"))
    shot(page, "09_instructor_hostile_notebook_inert")



def test_a_unicode_name_downloads_under_it_and_a_missing_gpu_worker_is_told(service, page):
    """Chromium saves "Übung_03.py" (not "download"); no GPU worker: student and instructor are told."""
    from workers.db import make_engine
    from workers.service import beat

    password = service.create_user("browser_gpu_student")
    login(page, service, "browser_gpu_student", password)
    page.goto(service.url + "/assignments/09_gpu")
    page.set_input_files("input[type=file]", files=[{
        "name": "Übung_03.py", "mimeType": "text/x-python",
        "buffer": (ROOT / "assignments" / "09_gpu" / "solution.py").read_bytes()}])
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/submissions/*")
    assert page.inner_text("code.filename") == "Übung_03.py"
    expect(page.locator("#pending")).to_contain_text("No GPU grader is running right now. Your submission is "
                                                     "saved and will be graded when one starts")
    shot(page, "10_student_no_gpu_worker_notice")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "Übung_03.py"

    engine = make_engine(f"sqlite:///{service.tmp / 'instance' / 'torchgrade.sqlite'}")
    try:  # a GPU worker's heartbeat arrives: the open page changes its message by itself
        beat(engine, hostname="gpu@browser-test", queues="gpu", pid=1, concurrency=1, gpus=1)
        page.evaluate("window.__sameDocument = 1")
        expect(page.locator("#pending")).to_have_text("Waiting for a grader… this page updates by itself.",
                                                      timeout=20_000)
        assert page.evaluate("window.__sameDocument") == 1
    finally:
        beat(engine, hostname="gpu@browser-test", queues="gpu", pid=1, concurrency=1, gpus=1, stopped=True)
        engine.dispose()

    login(page, service, "admin", service.ADMIN_PASSWORD)
    page.goto(service.url + "/instructor/")
    banner = page.locator("p.banner")
    expect(banner).to_contain_text("No worker is taking the gpu queue:")
    expect(banner).to_contain_text("Start a GPU worker: grader worker --queue gpu")
    expect(page.locator("#workers")).to_contain_text("gpu@browser-test")
    shot(page, "11_instructor_unserved_gpu_queue")
