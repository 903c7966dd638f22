"""A student in a real browser: the handout, its downloads, a notebook submitted, run and downloaded again.

Screenshots (1280 and 375 px) go to screenshots/web/ as student_handout-*.png and
student_submission_notebook-*.png.
"""

from __future__ import annotations

import zipfile

import nbformat
import pytest
from playwright.sync_api import expect
from test_handout import SPY_CELLS, SPY_MARK
from web_helpers import SLUG, SOLUTION, login, shots

pytestmark = pytest.mark.slow


def _download(page, selector: str, tmp_path):
    with page.expect_download() as info:
        page.click(selector)
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def _spy_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## My notes\n\nThe forward pass, **by hand**."),
                nbformat.v4.new_code_cell(SOLUTION.decode()),
                *(nbformat.v4.new_code_cell(c) for c in SPY_CELLS)]
    path = tmp_path / "my_notebook.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_student_reads_the_handout_submits_a_notebook_and_gets_their_work_back(service, page, course,
                                                                               tmp_path):
    csp = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    password = service.create_user("handout_student")
    login(page, service, "handout_student", password)
    page.goto(service.url + f"/assignments/{SLUG}")
    expect(page.locator("#description")).to_contain_text("A fully connected ReLU network")
    expect(page.locator("#check-command")).to_contain_text(f"unzip {SLUG}.zip && cd {SLUG}")
    widths = shots(page, "student_handout")
    assert all(scroll <= width for width, scroll in widths.items()), widths

    starter = _download(page, "#starter-py", tmp_path)
    assert starter.name == f"{SLUG}.py"
    assert starter.read_bytes() == (course / SLUG / "starter.py").read_bytes()
    bundle = _download(page, "#public-tests", tmp_path)
    assert bundle.name == f"{SLUG}.zip"
    names = zipfile.ZipFile(bundle).namelist()  # unzipped, and nothing in it is run
    assert f"{SLUG}/tests/public/test_public.py" in names and f"{SLUG}/starter.ipynb" in names
    assert not [n for n in names if n.startswith(f"{SLUG}/tests/hidden/") and not n.endswith("/")]

    # An earlier submission (a module), then the notebook.
    page.set_input_files("input[type=file]", files=[{"name": "first_try.py", "mimeType": "text/x-python",
                                                     "buffer": SOLUTION}])
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/submissions/*")
    page.goto(service.url + f"/assignments/{SLUG}")
    page.set_input_files("input[type=file]", str(_spy_notebook(tmp_path)))
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/submissions/*")
    live = page.locator("#status-line")
    assert live.get_attribute("role") == "status" and live.get_attribute("aria-live") == "polite"
    expect(page.locator("#state")).to_have_text("graded", timeout=90_000)
    # The page updated itself: the executed notebook replaced the uploaded one.
    notebook = page.locator("#executed-notebook")
    expect(notebook).to_be_visible()
    expect(notebook.locator("h2", has_text="My notes")).to_be_visible()  # its Markdown, rendered
    printed = [t.strip() for t in notebook.locator("pre.nb-stream").all_inner_texts()]
    assert printed == [f"{SPY_MARK} (2, 3) 6.0"]
    assert "(64, 1000)" not in page.content()  # what the hidden tests passed in stays with them
    widths = shots(page, "student_submission_notebook")
    assert all(scroll <= width for width, scroll in widths.items()), widths

    page.goto(service.url + f"/assignments/{SLUG}")
    rows = page.locator("#submissions tbody tr")
    expect(rows).to_have_count(2)
    earlier = _download(page, "#submissions tbody tr:nth-child(2) a.download", tmp_path)
    assert earlier.name == "first_try.py" and earlier.read_bytes() == SOLUTION
    assert not csp, csp  # no inline style or script anywhere on these pages
