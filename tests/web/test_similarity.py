"""Code similarity: the detection on real code, and its pages (each route test on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from web_helpers import ROOT, SLUG, SOLUTION

from grader.assignment import load_assignment
from grader.notebooks import module_to_notebook
from web import db
from web.services import course, similarity
from workers.models import GRADED, Submission

ASSIGNMENT = load_assignment(ROOT / "assignments" / SLUG)
STARTER = similarity.starter_kgrams(ASSIGNMENT)
STARTER_PY = (ROOT / "assignments" / SLUG / "starter.py").read_bytes()
STARTER_NB = (ROOT / "assignments" / SLUG / "starter.ipynb").read_bytes()

# The reference solution with every variable renamed, the functions in another order, its
# docstrings gone and a comment added: what a student hiding a copy does first.
COPY = b'''import numpy as np


def train(inputs, targets, first, second, learning_rate=1e-6, steps=500):
    # my own training loop
    first, second = first.copy(), second.copy()
    trace = []
    for _ in range(steps):
        trace.append(loss(forward(inputs, first, second), targets))
        gradient_first, gradient_second = backward(inputs, targets, first, second)
        first -= learning_rate * gradient_first
        second -= learning_rate * gradient_second
    return first, second, trace


def backward(inputs, targets, first, second):
    hidden = inputs.dot(first)
    hidden_relu = np.maximum(hidden, 0)
    prediction = hidden_relu.dot(second)
    grad_prediction = 2.0 * (prediction - targets)
    grad_second = hidden_relu.T.dot(grad_prediction)
    grad_hidden = grad_prediction.dot(second.T)
    grad_hidden[hidden < 0] = 0
    grad_first = inputs.T.dot(grad_hidden)
    return grad_first, grad_second


def forward(inputs, first, second):
    return np.maximum(inputs.dot(first), 0).dot(second)


def loss(prediction, targets):
    return float(np.square(prediction - targets).sum())
'''

# Two solutions written independently of the reference and of each other.
HONEST_A = b'''"""My two-layer network, gradients by hand."""

import numpy as np


def forward(x, w1, w2):
    hidden = x @ w1
    hidden[hidden < 0] = 0.0
    return hidden @ w2


def loss(y_pred, y):
    diff = y_pred - y
    total = 0.0
    for value in diff.ravel():
        total += value * value
    return float(total)


def backward(x, y, w1, w2):
    pre = x @ w1
    act = np.where(pre > 0, pre, 0.0)
    out = act @ w2
    d_out = 2 * (out - y)
    g2 = act.T @ d_out
    d_act = d_out @ w2.T
    d_pre = d_act * (pre > 0)
    g1 = x.T @ d_pre
    return g1, g2


def train(x, y, w1, w2, learning_rate=1e-6, steps=500):
    a = np.array(w1, dtype=np.float64)
    b = np.array(w2, dtype=np.float64)
    history = []
    step = 0
    while step < steps:
        history.append(loss(forward(x, a, b), y))
        ga, gb = backward(x, y, a, b)
        a = a - learning_rate * ga
        b = b - learning_rate * gb
        step += 1
    return a, b, history
'''

HONEST_B = b'''import numpy as np


def relu(z):
    return np.maximum(z, 0)


def forward(x, w1, w2):
    """Forward pass."""
    return relu(np.dot(x, w1)).dot(w2)


def loss(y_pred, y):
    return float(((y_pred - y) ** 2).sum())


def backward(x, y, w1, w2):
    z = np.dot(x, w1)
    a = relu(z)
    err = np.dot(a, w2) - y
    grad_out = 2.0 * err
    grad_w2 = np.dot(a.T, grad_out)
    grad_a = np.dot(grad_out, w2.T)
    grad_z = grad_a.copy()
    grad_z[z <= 0] = 0
    return np.dot(x.T, grad_z), grad_w2


def train(x, y, w1, w2, learning_rate=1e-6, steps=500):
    w1 = w1.copy()
    w2 = w2.copy()
    losses = []
    for t in range(steps):
        losses.append(loss(forward(x, w1, w2), y))
        g1, g2 = backward(x, y, w1, w2)
        w1 -= learning_rate * g1
        w2 -= learning_rate * g2
    return w1, w2, losses
'''

# The copy with a colon missing (it cannot run) and markup in a string the page must show as text.
BROKEN = COPY.replace(b"def forward(inputs, first, second):", b"def forward(inputs, first, second)").replace(
    b"# my own training loop", b'tag = "</pre><script>window.__x=1</script>"')
# Python's tokenizer stops at the unclosed triple quote: the file is read by the fallback tokenizer.
UNTOKENIZABLE = COPY + b'\n\n"""an unclosed docstring\n'


def doc(n: int, content: bytes, name: str = "hw.py") -> similarity.Document:
    return similarity.document(n, str(n), name, content, STARTER)


def notebook_of(source: bytes, magics: str) -> bytes:
    return json.dumps(module_to_notebook(f"# %%\n{magics}\n\n" + source.decode())).encode()


def pair_of(pairs: list[similarity.Pair], a: int, b: int) -> similarity.Pair | None:
    return next((p for p in pairs if {p.a.submission_id, p.b.submission_id} == {a, b}), None)


# --- the detection, on real code -------------------------------------------------------------------

def test_a_renamed_reordered_copy_ranks_above_honest_solutions():
    docs = [doc(1, SOLUTION), doc(2, HONEST_A), doc(3, HONEST_B), doc(4, COPY)]
    pairs = similarity.rank(docs, floor=0.0)
    top = pairs[0]
    assert {top.a.submission_id, top.b.submission_id} == {1, 4}
    assert top.share_a > 0.6 and top.share_b > 0.6
    honest = [p for p in pairs if p is not top]
    assert honest and max(p.score for p in honest) < 0.4 < top.score - 0.3


def test_renaming_alone_changes_no_fingerprint():
    renamed = SOLUTION.replace(b"grad_w1", b"gw_one").replace(b"h_relu", b"act").replace(b"y_pred", b"p")
    assert renamed != SOLUTION
    assert doc(1, renamed).fingerprints == doc(2, SOLUTION).fingerprints


def test_the_starter_is_left_out():
    filled_in_like_the_starter = STARTER_PY.replace(b"# %% [markdown]", b"# my notes")
    docs = [doc(1, STARTER_PY), doc(2, STARTER_NB, "hw.ipynb"), doc(3, filled_in_like_the_starter)]
    assert all(not d.fingerprints and "nothing of its own beyond the starter" in d.note for d in docs)
    assert similarity.rank(docs, floor=0.0) == []
    # Without the exclusion the same files are near-identical: the exclusion is what brings them to 0.
    bare = [similarity.document(i, str(i), "hw.py", STARTER_PY, frozenset()) for i in (1, 2)]
    assert similarity.rank(bare, floor=0.0)[0].score == 1.0


def test_a_notebook_is_compared_with_a_module_on_its_code_cells():
    nb = notebook_of(COPY, "%matplotlib inline\n!pip install numpy\nfiles = !ls\n%%bash")
    code, note = similarity.extract_code("hw.ipynb", nb)
    assert note is None and "matplotlib" not in code and "pip install" not in code and "!ls" not in code
    assert "def backward(inputs, targets, first, second):" in code
    shell_cell = json.loads(nb)
    shell_cell["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [],
                                   "execution_count": None, "source": "%%bash\necho this is not python\n"})
    code, _ = similarity.extract_code("hw.ipynb", json.dumps(shell_cell).encode())
    assert "echo" not in code
    pairs = similarity.rank([doc(1, SOLUTION), doc(2, nb, "hw.ipynb"), doc(3, HONEST_A)], floor=0.0)
    assert {pairs[0].a.submission_id, pairs[0].b.submission_id} == {1, 2} and pairs[0].score > 0.6


def test_files_python_cannot_read_are_compared_with_a_note():
    broken, untokenizable = doc(2, BROKEN), doc(3, UNTOKENIZABLE)
    assert "syntax error on line 28" in broken.note
    assert "tokenizer stopped" in untokenizable.note
    pairs = similarity.rank([doc(1, SOLUTION), broken, untokenizable], floor=0.0)
    assert pair_of(pairs, 1, 2).score > 0.6 and pair_of(pairs, 1, 3).score > 0.6
    unreadable = doc(4, b'{"cells": 7}', "hw.ipynb")
    assert not unreadable.fingerprints and "not a readable notebook" in unreadable.note


def test_fingerprints_are_the_same_in_every_process():
    # Python's hash() of a string differs between processes; two web workers must agree on a score.
    code = ("import sys; from web.services import similarity as s; "
            "print(sorted(s.document(1, '1', 'hw.py', sys.stdin.buffer.read(), frozenset()).fingerprints))")
    runs = [subprocess.run([sys.executable, "-c", code], input=COPY, capture_output=True, check=True,
                           cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": s}).stdout for s in ("1", "2")]
    assert runs[0] == runs[1] and len(runs[0]) > 10


# --- the pages --------------------------------------------------------------------------------------

def submit(app, user, content: bytes, *, filename: str = "hw.py", score: float = 10.0,
           slug: str = SLUG) -> int:
    """A graded submission with this content, as the workers leave it."""
    with app.app_context():
        s = db.session()
        sub = Submission(assignment=slug, owner=str(user.id), filename=filename, content=content,
                         state=GRADED, queue="cpu", score=score, max_score=10.0)
        s.add(sub)
        s.commit()
        return sub.id


def rows(html: str) -> list[str]:
    body = html.split('<tbody>', 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr.*?</tr>", body, re.S)


def test_ranking_then_side_by_side(app, client, factory):
    factory.user("prof", role="instructor")
    ann, bob, cat, dan = (factory.user(n) for n in ("ann", "bob", "cat", "dan"))
    factory.user("eve")  # never submitted
    a = submit(app, ann, SOLUTION)
    b = submit(app, bob, COPY)
    submit(app, cat, HONEST_A)
    d = submit(app, dan, BROKEN, score=0.0)
    factory.login(client, "prof")
    resp = client.get(f"/instructor/assignments/{SLUG}/similarity")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "similarity.css" in html
    links = [re.search(r"/similarity/(\d+)/(\d+)", r).groups() for r in rows(html)]
    # ann's solution, bob's disguised copy and dan's broken copy of it: those three pairs first.
    copies = {frozenset(map(str, p)) for p in ((a, b), (a, d), (b, d))}
    assert {frozenset(p) for p in links[:3]} == copies and all(frozenset(p) not in copies for p in links[3:])
    assert re.search(r'id="sim-notes".*dan</a> \(hw.py\): syntax error on line 28', html, re.S)
    assert "No graded submission, so not compared: eve" in html
    page = client.get(f"/instructor/assignments/{SLUG}/similarity/{a}/{b}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'href="/instructor/submissions/{a}"' in text and f'href="/instructor/submissions/{b}"' in text
    marked = "".join(re.findall(r'<mark class="m\d">(.*?)</mark>', text, re.S))
    assert "grad_prediction.dot(second.T)" in marked and "grad_h = grad_y_pred.dot(w2.T)" in marked
    assert "raise NotImplementedError" not in marked
    # Markup in a student's file is shown as text, never run (also inside a highlighted passage).
    broken = client.get(f"/instructor/assignments/{SLUG}/similarity/{a}/{d}").get_data(as_text=True)
    assert "&lt;/pre&gt;&lt;script&gt;window.__x=1&lt;/script&gt;" in broken
    assert "<script>window" not in broken


def test_the_counted_submission_follows_the_score_policy(app, client, factory):
    factory.user("prof", role="instructor")
    ann, bob = factory.user("ann"), factory.user("bob")
    a = submit(app, ann, SOLUTION)
    copied = submit(app, bob, COPY, score=10.0)
    honest = submit(app, bob, HONEST_B, score=4.0)  # newer, lower
    factory.login(client, "prof")
    url = f"/instructor/assignments/{SLUG}/similarity"
    assert f"/similarity/{a}/{copied}" in rows(client.get(url).get_data(as_text=True))[0]
    with app.app_context():
        course.update_settings(db.session(), SLUG, score_policy="last", hourly_limit=None)
    html = client.get(url).get_data(as_text=True)
    assert f"/similarity/{a}/{copied}" not in html
    assert [f"/similarity/{a}/{honest}" in r for r in rows(html)] == [True]  # bob's newest counts now


def test_top_limits_the_rows_and_a_bad_value_says_so(app, client, factory):
    factory.user("prof", role="instructor")
    for name, content in (("ann", SOLUTION), ("bob", COPY), ("cat", COPY)):
        submit(app, factory.user(name), content)
    factory.login(client, "prof")
    url = f"/instructor/assignments/{SLUG}/similarity"
    one = client.get(url + "?top=1").get_data(as_text=True)
    assert len(rows(one)) == 1 and "The top 1 of 3 are shown." in one and 'id="sim-more"' in one
    bad = client.get(url + "?top=lots")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "top must be a whole number from 1 to 1000" in html
    assert len(rows(html)) == 3


def test_only_instructors_and_unknown_things_are_404(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", role="instructor")
    a, b = submit(app, ann, SOLUTION), submit(app, ann, COPY)
    other = submit(app, ann, SOLUTION, slug="01_tensors")
    url = f"/instructor/assignments/{SLUG}/similarity"
    assert client.get(url).status_code == 302  # to the login page
    factory.login(client, "ann")
    assert client.get(url).status_code == 403
    assert client.get(f"{url}/{a}/{b}").status_code == 403
    client = app.test_client()
    factory.login(client, "prof")
    assert client.get(f"{url}/{a}/{b}").status_code == 200
    assert client.get("/instructor/assignments/99_nothing/similarity").status_code == 404
    for x, y in ((a, 999999), (a, other), (a, a)):
        assert client.get(f"{url}/{x}/{y}").status_code == 404, (x, y)


@pytest.mark.parametrize("name", ["hw.py", "hw.ipynb"])
def test_an_empty_class_and_a_starter_only_class_say_so(app, client, factory, name):
    factory.user("prof", role="instructor")
    factory.login(client, "prof")
    url = f"/instructor/assignments/{SLUG}/similarity"
    assert "Fewer than two students have a graded submission" in client.get(url).get_data(as_text=True)
    for n in ("ann", "bob"):
        submit(app, factory.user(n), STARTER_NB if name.endswith("ipynb") else STARTER_PY, filename=name)
    html = client.get(url).get_data(as_text=True)
    assert "No pair shares 20% or more" in html and html.count("nothing of its own beyond the starter") == 2
