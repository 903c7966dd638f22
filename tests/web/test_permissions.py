"""The permission matrix: anonymous, student A, student B and an instructor over every route."""

from __future__ import annotations

import pytest
from web_helpers import SLUG, csrf_of

from web import db
from web.models import ApiToken
from web.services.tokens import create_token

# (method, path template, expected status for anonymous, student A, student B, instructor).
# {a_sub} is student A's submission, {a_token} A's API token id, {a_user}/{b_user} the students' user ids.
# 302 to /login means "log in first"; 404 for another student's submission, so its existence leaks nothing.
LOGIN = "login"
MATRIX = [
    ("GET", "/", LOGIN, 302, 302, 302),
    ("GET", "/login", 200, 200, 200, 200),
    ("GET", "/assignments", LOGIN, 200, 200, 200),
    ("GET", f"/assignments/{SLUG}", LOGIN, 200, 200, 200),
    ("GET", "/assignments/no_such_one", LOGIN, 404, 404, 404),
    ("GET", "/submissions/{a_sub}", LOGIN, 200, 404, 200),
    ("GET", "/submissions/{a_sub}/feedback", LOGIN, 200, 404, 200),
    ("GET", "/submissions/{a_sub}/status.json", LOGIN, 200, 404, 200),
    ("GET", "/submissions/{a_sub}/download", LOGIN, 200, 404, 200),
    ("GET", f"/assignments/{SLUG}/starter.py", LOGIN, 200, 200, 200),
    ("GET", f"/assignments/{SLUG}/starter.ipynb", LOGIN, 200, 200, 200),
    ("GET", f"/assignments/{SLUG}/public-tests.zip", LOGIN, 200, 200, 200),
    ("GET", "/account/tokens", LOGIN, 200, 200, 200),
    ("GET", "/account/password", LOGIN, 200, 200, 200),
    ("POST", "/account/tokens/{a_token}/revoke", LOGIN, 302, 404, 404),
    ("GET", "/instructor/", LOGIN, 403, 403, 200),
    ("GET", "/instructor/gradebook.csv", LOGIN, 403, 403, 200),
    ("GET", "/instructor/students/{a_user}", LOGIN, 403, 403, 200),
    ("POST", f"/instructor/students/{{a_user}}/overrides/{SLUG}", LOGIN, 403, 403, 400),  # no action: refused
    ("GET", f"/instructor/assignments/{SLUG}/tests.csv", LOGIN, 403, 403, 200),
    ("GET", f"/instructor/assignments/{SLUG}/gradescope.zip", LOGIN, 403, 403, 200),  # before the regrade
    ("GET", f"/instructor/assignments/{SLUG}/status.json", LOGIN, 403, 403, 200),
    ("GET", "/instructor/submissions/{a_sub}/results.json", LOGIN, 403, 403, 200),
    ("POST", "/instructor/extensions/999999/revoke", LOGIN, 403, 403, 404),
    ("GET", f"/instructor/assignments/{SLUG}", LOGIN, 403, 403, 200),
    ("POST", f"/instructor/assignments/{SLUG}/settings", LOGIN, 403, 403, 302),
    ("POST", f"/instructor/assignments/{SLUG}/regrade", LOGIN, 403, 403, 302),
    ("GET", "/instructor/submissions/{a_sub}", LOGIN, 403, 403, 200),
    ("GET", "/instructor/submissions/{a_sub}/download", LOGIN, 403, 403, 200),
    ("POST", "/instructor/submissions/{a_sub}/regrade", LOGIN, 403, 403, 302),
    ("GET", "/instructor/extensions", LOGIN, 403, 403, 200),
    ("GET", "/instructor/roster", LOGIN, 403, 403, 200),
    ("GET", "/instructor/roster/jobs/999", LOGIN, 403, 403, 404),
    ("GET", "/instructor/jobs/999.json", LOGIN, 403, 403, 404),
    ("GET", "/instructor/roster/jobs/999/accounts.csv", LOGIN, 403, 403, 404),
    ("POST", "/instructor/roster/jobs/999/forget", LOGIN, 403, 403, 404),
    ("GET", f"/instructor/assignments/{SLUG}/similarity", LOGIN, 403, 403, 200),
    ("GET", f"/instructor/assignments/{SLUG}/similarity/{{a_sub}}/999999", LOGIN, 403, 403, 404),
    # The API ignores session cookies: without a bearer token every role gets 401.
    ("GET", "/api/v1/assignments", 401, 401, 401, 401),
    ("POST", "/api/v1/submissions", 401, 401, 401, 401),
    ("GET", "/api/v1/submissions/{a_sub}", 401, 401, 401, 401),
    ("POST", "/instructor/users/{b_user}/active", LOGIN, 403, 403, 400),  # no `active` field: 400, a message
    # Ends B's sessions: late in the list.
    ("POST", "/instructor/users/{b_user}/reset-password", LOGIN, 403, 403, 200),
    ("POST", "/logout", LOGIN, LOGIN, LOGIN, LOGIN),  # last: it ends the sessions
]
ROLES = ("anonymous", "student_a", "student_b", "instructor")
TOKEN_MATRIX = [  # with each role's own API token
    ("GET", "/api/v1/submissions/{a_sub}", None, 200, 404, 200),
    ("GET", "/api/v1/assignments", None, 200, 200, 200),
]


@pytest.fixture
def world(app, factory):
    a, b = factory.user("alice"), factory.user("bob")
    prof = factory.user("prof", "instructor")
    a_sub = factory.graded(a, score=5.0)
    clients = {"anonymous": app.test_client()}
    for role, user in (("student_a", a), ("student_b", b), ("instructor", prof)):
        clients[role] = app.test_client()
        factory.login(clients[role], user.username)
    with app.app_context():
        tokens = {role: create_token(db.session(), u, "t") for role, u in
                  (("student_a", a), ("student_b", b), ("instructor", prof))}
        a_token = db.session().query(ApiToken).filter_by(user_id=a.id).one().id
    ids = dict(a_sub=a_sub, a_token=a_token, a_user=a.id, b_user=b.id)
    return dict(clients=clients, ids=ids, tokens=tokens)


def _call(client, method, path, *, headers=None):
    if method == "GET":
        return client.get(path, headers=headers)
    token = csrf_of(client, "/login")  # a valid token for this client's session: only the role decides
    return client.post(path, data={"csrf_token": token, "score_policy": "best"}, headers=headers)


def test_every_route_is_in_the_matrix_and_marked(app):
    adapter = app.url_map.bind("localhost")
    ids = dict(a_sub=1, a_token=1, a_user=1, b_user=1)
    covered = {adapter.match(p.format(**ids), method=m)[0] for m, p, *_ in MATRIX}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        assert getattr(app.view_functions[rule.endpoint], "access", None), f"{rule} has no access mark"
        assert rule.endpoint in covered, f"{rule.rule} is not in the permission matrix"


def test_permission_matrix(world):
    """One world, every row (a world per row would cost argon2 hashes for nothing)."""
    wrong = []
    for method, template, *expected in MATRIX:
        path = template.format(**world["ids"])
        for role, want in zip(ROLES, expected, strict=True):
            resp = _call(world["clients"][role], method, path)
            got = LOGIN if resp.status_code == 302 and "/login" in resp.headers.get("Location", "") \
                else resp.status_code
            if got != want:
                wrong.append(f"{role} {method} {path}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)


def test_api_matrix_with_tokens(app, world):
    api = app.test_client()
    for _method, template, *expected in TOKEN_MATRIX:
        path = template.format(**world["ids"])
        for role, want in zip(ROLES[1:], expected[1:], strict=True):
            resp = api.get(path, headers={"Authorization": f"Bearer {world['tokens'][role]}"})
            assert resp.status_code == want, (role, path)


def test_a_student_never_sees_hidden_tests_of_their_own_submission(world):
    page = world["clients"]["student_a"].get("/submissions/{a_sub}".format(**world["ids"]))
    assert "HIDDEN-DETAIL" not in page.get_data(as_text=True)
    api = world["clients"]["anonymous"]
    body = api.get("/api/v1/submissions/{a_sub}".format(**world["ids"]),
                   headers={"Authorization": f"Bearer {world['tokens']['student_a']}"}).get_data(as_text=True)
    assert "HIDDEN-DETAIL" not in body and "LOG-TEXT" not in body
    assert "secret_backward" in body, "a hidden test shows its name, never its message (issue 9 #10)"
