"""Code similarity in a real browser: the ranking and one pair side by side, at 1280 and 375 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_similarity import COPY, HONEST_A, notebook_of
from web_helpers import ROOT, SLUG, Http, login, shots

pytestmark = pytest.mark.slow


def test_instructor_ranks_the_pairs_and_reads_one_side_by_side(service, page, tmp_path):
    from grader.submit import main as submit

    files = {"sim_ann": ("solution.py", (ROOT / "assignments" / SLUG / "solution.py").read_bytes()),
             "sim_bob": ("hw.py", COPY),
             "sim_cat": ("hw.ipynb", notebook_of(HONEST_A, "%matplotlib inline"))}
    for name, (filename, data) in files.items():
        token = Http(service.url).login(name, service.create_user(name)).new_token()
        path = tmp_path / name / filename
        path.parent.mkdir()
        path.write_bytes(data)
        assert submit(file=path, assignment=SLUG, url=service.url, token=token, wait_s=180, poll_s=0.3) == 0
    csp = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, service, "admin", service.ADMIN_PASSWORD)
    page.goto(service.url + f"/instructor/assignments/{SLUG}/similarity")
    row = page.locator("#sim-pairs tbody tr", has=page.locator("a", has_text="sim_ann")).filter(
        has=page.locator("a", has_text="sim_bob"))
    expect(row).to_have_count(1)
    mean = int(row.locator("td.num strong").inner_text().rstrip("%"))
    assert mean >= 60, mean
    cat_rows = page.locator("#sim-pairs tbody tr", has=page.locator("a", has_text="sim_cat"))
    assert all(int(r.locator("strong").inner_text().rstrip("%")) < mean for r in cat_rows.all())
    widths = shots(page, "similarity_ranking")
    assert widths[1280] <= 1280 and widths[375] <= 375, widths

    row.locator("a.sim-compare").click()
    page.wait_for_url("**/similarity/*/*")
    expect(page.locator("h1")).to_contain_text("sim_ann")
    expect(page.locator("h1")).to_contain_text("sim_bob")
    for side in ("#sim-side-1", "#sim-side-2"):
        assert page.locator(f"{side} mark").count() >= 3
    # The same passage carries the same colour on both sides.
    left = page.locator("#sim-side-1 mark", has_text="grad_y_pred.dot(w2.T)").first
    right = page.locator("#sim-side-2 mark", has_text="grad_prediction.dot(second.T)").first
    assert left.get_attribute("class") == right.get_attribute("class")
    widths = shots(page, "similarity_pair")
    assert widths[1280] <= 1280 and widths[375] <= 375, widths
    page.set_viewport_size({"width": 1280, "height": 900})
    one, two = (page.locator(s).bounding_box() for s in ("#sim-side-1", "#sim-side-2"))
    assert one["y"] == two["y"] and two["x"] > one["x"] + one["width"] - 1  # side by side
    page.set_viewport_size({"width": 375, "height": 900})
    one, two = (page.locator(s).bounding_box() for s in ("#sim-side-1", "#sim-side-2"))
    assert two["y"] >= one["y"] + one["height"]  # stacked on a phone
    assert csp == []
