"""The assignment page as a handout, and the student's own work (route tests run on SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from web_helpers import SLUG, SOLUTION, STARTER_NB, upload

from grader.assignment import load_assignment
from grader.release import release
from web import db
from web.services import handout
from workers.models import GRADED, Submission, utcnow

SECTION = re.compile(r'<section class="description" id="description"[^>]*>(.*?)</section>', re.S)
COMMAND = re.compile(r'<pre class="command" id="check-command">(.*?)</pre>', re.S)
SPY_MARK = "ARGS-SEEN"


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _first_markdown(path: Path) -> str:
    nb = json.loads(path.read_text())
    return next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def _student(client, factory, name: str = "ann"):
    user = factory.user(name)
    factory.login(client, name)
    return user


def test_every_assignment_page_is_a_handout(client, factory, course):
    _student(client, factory)
    slugs = sorted(p.parent.name for p in course.glob("*/assignment.toml"))
    assert len(slugs) == 9
    for slug in slugs:
        page = client.get(f"/assignments/{slug}").get_data(as_text=True)
        a = load_assignment(course / slug)
        described = _text(SECTION.search(page).group(1))
        # The starter's own words, not a placeholder: its second paragraph (the first is the title).
        source = _first_markdown(course / slug / "starter.ipynb")
        second = " ".join(source.split("\n\n")[1].split()[:8]).replace("**", "").replace("`", "")
        assert second in described, f"{slug}: {second!r} not in the description"
        assert len(described) > 300 and a.title not in described  # the h1 says the title once
        for href in ("starter.py", "starter.ipynb", "public-tests.zip"):
            assert f'href="/assignments/{slug}/{href}"' in page
        assert f">{slug}.zip</a>" in page
        shown = html.unescape(COMMAND.search(page).group(1))
        assert shown.splitlines() == handout.check_commands(a)
        assert f"unzip {slug}.zip && cd {slug}" in shown
        assert html.unescape(page).count(handout.check_elsewhere(a)) == 1


def test_markdown_in_the_description_is_rendered_and_sanitised(client, factory):
    _student(client, factory)
    page = client.get(f"/assignments/{SLUG}").get_data(as_text=True)
    described = SECTION.search(page).group(1)
    assert "<strong>by hand</strong>" in described  # **by hand** in the starter
    assert "<pre><code>h = x.dot(w1);" in described  # its indented formula block


def _assignment_copy(tmp_path: Path) -> Path:
    folder = tmp_path / SLUG
    shutil.copytree(Path(__file__).resolve().parents[2] / "assignments" / SLUG, folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_description_sources_in_order_manifest_notebook_module_docstring(tmp_path):
    folder = _assignment_copy(tmp_path)
    manifest = folder / "assignment.toml"
    toml = manifest.read_text()
    manifest.write_text('description = """\nTrain it **well**. <script>window.__x=1</script>\n'
                        '[more](javascript:alert(1))\n"""\n' + toml)
    html_ = str(handout.description(load_assignment(folder)))
    assert html_.startswith("<p>Train it <strong>well</strong>. &lt;script&gt;")
    assert 'href="javascript' not in html_ and "<script" not in html_
    manifest.write_text("description = 3\n" + toml)  # not text: the starter's words instead
    assert "A fully connected ReLU network" in handout.description_source(load_assignment(folder))
    manifest.write_text(toml.replace('title = "Manual backprop', 'title = "Backprop'))
    assert handout.description_source(load_assignment(folder)).startswith(  # another heading: an h2
        "## Manual backprop in NumPy: a two-layer ReLU network\n\nA fully connected ReLU network")
    manifest.write_text(toml)
    (folder / "starter.ipynb").unlink()
    a = load_assignment(folder)
    assert handout.description_source(a).startswith("A fully connected ReLU network")  # starter.py's cell
    body = "def fit(x, y):\n    raise NotImplementedError\n"
    (folder / "starter.py").write_text(f'"""Fit a line with NumPy."""\n\n{body}')
    assert handout.description_source(a) == "Fit a line with NumPy."
    (folder / "starter.py").write_text(body)
    assert handout.description_source(a) == ""


def test_starter_downloads_are_attachments_named_for_the_assignment(client, factory, course):
    _student(client, factory)
    for kind, body in (("py", (course / SLUG / "starter.py").read_bytes()), ("ipynb", STARTER_NB)):
        resp = client.get(f"/assignments/{SLUG}/starter.{kind}")
        assert resp.status_code == 200 and resp.data == body
        assert resp.headers["Content-Disposition"].startswith(f'attachment; filename="{SLUG}.{kind}";')
    missing = client.get(f"/assignments/{SLUG}/starter.txt")
    assert missing.status_code == 404 and "there is a .py and an .ipynb" in missing.get_data(as_text=True)
    assert client.get("/assignments/99_nothing/starter.py").status_code == 404
    assert client.get("/assignments/99_nothing/public-tests.zip").status_code == 404


def test_downloads_need_a_login(client):
    for path in (f"/assignments/{SLUG}/starter.py", f"/assignments/{SLUG}/public-tests.zip"):
        assert client.get(path).status_code == 302


def test_public_tests_zip_is_the_release_and_holds_nothing_secret(client, factory, course, tmp_path):
    _student(client, factory)
    resp = client.get(f"/assignments/{SLUG}/public-tests.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"].startswith(f'attachment; filename="{SLUG}.zip";')
    zf = zipfile.ZipFile(io.BytesIO(resp.data))
    files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    released = tmp_path / "released"
    release(load_assignment(course / SLUG), released)
    expected = {p.relative_to(released).as_posix(): p.read_bytes()
                for p in released.rglob("*") if p.is_file()}
    assert files == expected  # byte for byte what `grader release` writes
    assert f"{SLUG}/tests/hidden/" in zf.namelist()  # the empty folder `grader check` needs
    secrets = [(course / SLUG / "solution.py").read_bytes(),
               *(p.read_bytes() for p in (course / SLUG / "tests" / "hidden").rglob("*.py"))]
    assert not any(body in secrets for body in files.values())
    assert not [n for n in files if "/tests/hidden/" in n or "/examples/" in n]
    assert b"def forward" not in files[f"{SLUG}/solution.py"]  # only release's stub, never the reference


def test_the_check_command_on_the_page_runs_as_shown(course, tmp_path):
    # Runs the lines the page shows, in a shell, on the starter: the public tests run (and fail).
    a = load_assignment(course / SLUG)
    (tmp_path / handout.zip_name(a)).write_bytes(handout.public_zip(a))
    shutil.copyfile(course / SLUG / "starter.ipynb", tmp_path / f"{SLUG}.ipynb")  # the notebook download
    env = {**os.environ, "TORCHGRADE_CLI_SERVER": "0",  # no warm server left behind by the test
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for script, name in (("\n".join(handout.check_commands(a)), "my_work.py"),
                         (handout.check_elsewhere(a), f"{SLUG}.ipynb")):
        run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
        out = run.stdout + run.stderr
        assert f"Checking {name} against {a.title} (public tests)" in out, out
        assert "[3/3] FAIL" in out and run.returncode == 1, out  # the starter scores zero


def test_student_sees_their_module_and_notebook_before_grading(app, client, factory):
    _student(client, factory)
    source = SOLUTION + b"\n# <script>window.__x=1</script>\n"
    sub = upload(client, f"/assignments/{SLUG}", "mine.py", source).headers["Location"]
    page = client.get(sub).get_data(as_text=True)
    assert '<p id="status-line" role="status" aria-live="polite"' in page
    assert "Your module" in page and "# &lt;script&gt;window.__x=1&lt;/script&gt;" in page
    sub = upload(client, f"/assignments/{SLUG}", "hw.ipynb", STARTER_NB).headers["Location"]
    page = client.get(sub).get_data(as_text=True)
    assert "Your notebook, as you uploaded it" in page and "Once it has been graded" in page
    assert "<h1>Manual backprop in NumPy: a two-layer ReLU network</h1>" in page  # its Markdown, rendered
    assert "raise NotImplementedError(&#34;forward" in page  # its code, as text


SPY_CELLS = (
    "_forward = forward\n\n"
    "def forward(x, w1, w2):\n"
    f"    print('{SPY_MARK}', x.shape, float(x.sum()))  # whoever calls it, with whatever inputs\n"
    "    return _forward(x, w1, w2)\n",
    "import numpy as np\nforward(np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 2))).shape",
)


@pytest.fixture(scope="module")
def spy(course, tmp_path_factory):
    """A notebook whose forward prints its inputs, graded for real (every hidden test included)."""
    from grader.engine import LOCAL, grade

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("My **own** notes <script>window.__x=1</script>"),
                nbformat.v4.new_code_cell(SOLUTION.decode()),
                *(nbformat.v4.new_code_cell(c) for c in SPY_CELLS)]
    path = tmp_path_factory.mktemp("spy") / "spy.ipynb"
    nbformat.write(nb, str(path))
    result = grade(path, load_assignment(course / SLUG), mode=LOCAL)
    hidden_forward = [t for t in result.tests if t.suite == "hidden" and "forward" in t.name]
    assert result.score == result.max_score and hidden_forward and hidden_forward[0].passed, result.messages
    return path.read_bytes(), result.to_dict()


def _graded_row(app, user, content: bytes, result: dict, filename: str) -> int:
    with app.app_context():
        s = db.session()
        sub = Submission(assignment=SLUG, owner=str(user.id), filename=filename, content=content,
                         state=GRADED, queue="cpu", score=result["score"], max_score=result["max_score"],
                         result=result, suite_version=result["suite_version"], seed=result["seed"],
                         finished_at=utcnow())
        s.add(sub)
        s.commit()
        return sub.id


def test_executed_notebook_shows_only_what_the_cells_printed_as_it_loaded(app, client, factory, spy):
    content, result = spy
    sub_id = _graded_row(app, _student(client, factory), content, result, "spy.ipynb")
    # The page, and the fragment its script fetches when grading ends.
    for path in (f"/submissions/{sub_id}", f"/submissions/{sub_id}/feedback"):
        page = client.get(path).get_data(as_text=True)
        assert "Your notebook, as it ran" in page and 'id="executed-notebook"' in page
        # The notebook's own call printed (2, 3) as it loaded; the hidden tests called forward on
        # the material's sizes (N=64, D_in=1000) with inputs from the secret seed: none of that shows.
        streams = re.findall(r'<pre class="nb-stream">(.*?)</pre>', page, re.S)
        assert streams == [f"{SPY_MARK} (2, 3) 6.0\n"]
        assert "(64, 1000)" not in page and page.count(SPY_MARK) == 2  # the print above, and its source
        assert "(2, 2)" in page  # the cell's last expression, its execute_result
        assert "My <strong>own</strong> notes &lt;script&gt;" in page  # Markdown cell rendered, sanitised


def test_every_earlier_submission_is_listed_and_downloadable(app, client, factory):
    _student(client, factory)
    first, second = SOLUTION + b"\n# first\n", SOLUTION + b"\n# second\n"
    ids = [int(upload(client, f"/assignments/{SLUG}", name, body).headers["Location"].rsplit("/", 1)[1])
           for name, body in (("first.py", first), ("Zweite Lösung.py", second))]
    page = client.get(f"/assignments/{SLUG}").get_data(as_text=True)
    links = re.findall(r'<a class="download" href="(/submissions/(\d+)/download)"', page)
    assert [int(i) for _, i in links] == ids[::-1]  # newest first, each with its download
    for (href, _), body, name in zip(links, (second, first), ("Zweite Lösung.py", "first.py"), strict=True):
        resp = client.get(href)
        assert resp.data == body and resp.headers["Content-Disposition"].startswith("attachment;")
        assert name in page
    _student(client, factory, "bob")  # another student reaches neither the files nor the pages
    assert client.get(links[0][0]).status_code == 404
    assert client.get(f"/submissions/{ids[0]}").status_code == 404
    assert "No submissions yet." in client.get(f"/assignments/{SLUG}").get_data(as_text=True)
