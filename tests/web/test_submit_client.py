"""`grader submit` when the service is briefly away (issue 11 #7): retried with back-off, never twice.

Real parts: the app over real HTTP (werkzeug's threaded server), the private PostgreSQL of
conftest stopped and started under it, and a TCP proxy that really cuts the connection after
the service answered (the one case where a retry could store a second copy). The 502/504 test
uses a stand-in gateway (http.server answering 502, 504, then the service's 201 JSON): a real
reverse proxy in front of a failing backend is what it stands for, and none runs here.
"""

from __future__ import annotations

import http.server
import io
import json
import re
import select as io_select
import socket
import struct
import threading
import time
import uuid
from email.utils import formatdate

import pytest
from sqlalchemy import func, select
from web_helpers import ROOT, SLUG, SOLUTION, LiveServer

from grader.submit import Retry, _retry_after
from grader.submit import main as submit
from tests.tcp import pump
from web import db
from web.services.tokens import create_token
from workers.models import Submission

SOLUTION_PATH = ROOT / "assignments" / SLUG / "solution.py"
FAST = Retry(tries=6, budget_s=60, base_s=0.2, cap_s=2)


def count(app) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(Submission))


def token_for(app, factory, username: str = "ann") -> str:
    user = factory.user(username)
    with app.app_context():
        return create_token(db.session(), user, "cli")


def test_submit_retries_through_a_database_outage_and_stores_once(outage_app, outage_factory, live,
                                                                  private_pg, capsys):
    token = token_for(outage_app, outage_factory)
    private_pg.stop()
    back = threading.Timer(2.5, private_pg.start)  # the database returns while the client retries
    back.start()
    started = time.monotonic()
    code = submit(file=SOLUTION_PATH, assignment=SLUG, url=live.url, token=token, wait_s=0, retry=FAST)
    back.join()
    out = capsys.readouterr()
    assert "the service is unavailable (503: the service is temporarily unavailable (its database cannot " \
           "be reached)" in out.err and "(try 2 of 6)" in out.err
    assert re.search(r"submitted solution\.py as submission \d+ \(queued\)", out.out), out
    assert code == 1 and "still queued after 0 s" in out.err  # no worker here: graded elsewhere
    # Retry-After (1 s) is the least wait, although the back-off alone would start at 0.1-0.2 s.
    waits = [float(w) for w in re.findall(r"retrying in ([\d.]+) s", out.err)]
    assert waits and min(waits) >= 1.0 and time.monotonic() - started >= 2.5
    assert count(outage_app) == 1


def test_submit_gives_up_within_its_bound_with_a_clear_message_and_exit_2(outage_app, outage_factory, live,
                                                                         private_pg, capsys):
    token = token_for(outage_app, outage_factory)
    private_pg.stop()
    started = time.monotonic()
    code = submit(file=SOLUTION_PATH, assignment=SLUG, url=live.url, token=token,
                  retry=Retry(tries=3, budget_s=30, base_s=0.2))
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 10
    assert err.count("retrying in") == 2 and "(try 3 of 3)" in err
    assert "error: the service is unavailable (503:" in err and "gave up after 3 tries" in err
    assert "Your file was not submitted: run the same command again later" in err
    private_pg.start()
    assert count(outage_app) == 0


def test_submit_gives_up_early_when_retry_after_outlasts_its_budget(outage_app, outage_factory, live,
                                                                    private_pg, capsys):
    outage_app.config["UNAVAILABLE_RETRY_AFTER_S"] = 30
    token = token_for(outage_app, outage_factory)
    private_pg.stop()
    started = time.monotonic()
    assert submit(file=SOLUTION_PATH, assignment=SLUG, url=live.url, token=token,
                  retry=Retry(tries=5, budget_s=10, base_s=0.2)) == 2
    assert time.monotonic() - started < 5  # no wait past the budget: it stops at once, and says so
    assert "gave up after 1 try" in capsys.readouterr().err


class CuttingProxy:
    """A TCP proxy to a server that cuts the client off (RST) after the server answered, `cuts` times."""

    def __init__(self, target_port: int, cuts: int = 1) -> None:
        self.target, self.cuts = ("127.0.0.1", target_port), cuts
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.cut = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        if self.cut < self.cuts:
            self.cut += 1
            self._cut(client, upstream)
            return
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    @staticmethod
    def _cut(client: socket.socket, upstream: socket.socket) -> None:
        """Forward the request; at the answer's first byte (the upload is stored), reset the client."""
        while True:  # one thread owns both sockets, so the close below really resets the connection
            readable, _, _ = io_select.select([client, upstream], [], [], 30)
            if upstream in readable:
                break
            if client in readable:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # an RST: the client hears "connection reset", never the answer
        upstream.close()

    def close(self) -> None:
        self.sock.close()


def test_a_retry_after_a_lost_answer_gets_the_first_submission_not_a_second(app, factory, capsys):
    token = token_for(app, factory)
    server = LiveServer(app)
    proxy = CuttingProxy(server.server.server_port)
    try:
        code = submit(file=SOLUTION_PATH, assignment=SLUG, url=proxy.url, token=token, wait_s=0, retry=FAST)
    finally:
        proxy.close()
        server.close()
    out = capsys.readouterr()
    assert proxy.cut == 1 and "the service is unavailable (" in out.err and "retrying in" in out.err
    assert "an earlier try had reached the service: this is that submission, not a second one" in out.out
    assert code == 1 and count(app) == 1


def post(client, token: str, key: str | None, data: bytes = SOLUTION, name: str = "solution.py"):
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    return client.post("/api/v1/submissions", headers=headers, content_type="multipart/form-data",
                       data={"assignment": SLUG, "file": (io.BytesIO(data), name)})


def test_the_api_honours_an_idempotency_key(app, client, factory):
    token = token_for(app, factory)
    key = uuid.uuid4().hex
    first, again = post(client, token, key), post(client, token, key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"] and again.get_json()["replayed"] is True
    assert first.get_json()["replayed"] is False
    other = post(client, token, key, data=SOLUTION + b"\n# changed\n")
    assert other.status_code == 422 and "already used for a different upload" in other.get_json()["error"]
    assert post(client, token, "short").status_code == 400  # a key must be 8-64 safe characters
    assert post(client, token, uuid.uuid4().hex).status_code == 201  # a new key: a new submission
    # Another student's same key is their own: it neither replays nor blocks hers.
    bob = token_for(app, factory, "bob")
    assert post(client, bob, key).status_code == 201
    assert count(app) == 3


def test_concurrent_tries_with_one_key_store_one_submission(app, factory):
    """Two tries racing (the first still running when the client retries): the unique key decides."""
    import urllib.request

    from grader.submit import _multipart

    token = token_for(app, factory)
    server = LiveServer(app)
    body, ctype = _multipart({"assignment": SLUG}, "file", SOLUTION_PATH, SOLUTION)
    key, answers = uuid.uuid4().hex, []
    gate = threading.Barrier(4)

    def one() -> None:
        req = urllib.request.Request(server.url + "/api/v1/submissions", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": ctype, "Idempotency-Key": key})
        gate.wait()
        with urllib.request.urlopen(req, timeout=30) as resp:
            answers.append((resp.status, json.loads(resp.read())["id"]))

    threads = [threading.Thread(target=one) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.close()
    assert len(answers) == 4 and len({sub_id for _, sub_id in answers}) == 1, answers
    assert sorted(status for status, _ in answers).count(201) == 1
    assert count(app) == 1


class Gateway(http.server.BaseHTTPRequestHandler):
    """Stands in for a reverse proxy whose backend restarts: 502, then 504, then the service's answer."""

    answers: list[int] = []
    keys: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.keys.append(self.headers["Idempotency-Key"])
        code = Gateway.answers.pop(0)
        body = json.dumps({"id": 7, "state": "queued", "url": "", "page": ""} if code == 201 else
                          {"error": "bad gateway" if code == 502 else "gateway timeout"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if code == 504:
            self.send_header("Retry-After", formatdate(time.time() + 1, usegmt=True))  # an HTTP date
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_502_and_504_are_retried_with_one_key(tmp_path, capsys):
    Gateway.answers, Gateway.keys = [502, 504, 201], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = submit(file=SOLUTION_PATH, assignment=SLUG, url=f"http://127.0.0.1:{server.server_port}",
                      token="tg_x", wait_s=0, retry=FAST)
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert "(502: bad gateway), retrying in" in err and "(504: gateway timeout), retrying in" in err
    assert code == 1 and len(Gateway.keys) == 3 and len(set(Gateway.keys)) == 1  # the same key each try


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
def test_backoff_doubles_with_jitter_up_to_its_cap_and_respects_retry_after(n):
    retry = Retry(base_s=2, cap_s=30)
    bound = min(30, 2 * 2 ** (n - 1))
    waits = [retry.delay(n, None) for _ in range(200)]
    assert all(bound / 2 <= w <= bound for w in waits) and len({round(w, 6) for w in waits}) > 100
    assert all(retry.delay(n, 45) >= 45 for _ in range(50))


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert _retry_after("12") == 12 and _retry_after(None) is None and _retry_after("soon") is None
    assert 8 <= _retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10


class Recorder(http.server.BaseHTTPRequestHandler):
    """Stands in for the service only to see where `grader submit` sends its upload: it refuses it (400)."""

    paths: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.paths.append(self.path)
        body = json.dumps({"error": "recorded"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def _recorder(port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_submit_goes_where_web_serve_listens_unless_told_otherwise(monkeypatch, capsys):
    """Issue 12 #12: the CLI's default is `python -m web serve`'s default address; TORCHGRADE_URL wins."""
    import web.__main__ as web_main
    from grader.cli import main as grader
    from grader.submit import DEFAULT_URL, default_url

    assert DEFAULT_URL == f"http://{web_main.DEFAULT_HOST}:{web_main.DEFAULT_PORT}" == "http://127.0.0.1:8000"
    monkeypatch.delenv("TORCHGRADE_URL", raising=False)
    assert default_url() == DEFAULT_URL
    Recorder.paths = []
    server = _recorder(0)
    monkeypatch.setenv("TORCHGRADE_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        code = grader(["submit", str(SOLUTION_PATH), "-a", SLUG, "--token", "tg_x"])
    finally:
        server.shutdown()
    assert code == 1 and Recorder.paths == ["/api/v1/submissions"]
    assert "refused the submission (400): recorded" in capsys.readouterr().err
    monkeypatch.delenv("TORCHGRADE_URL")
    try:  # the default itself, on the real port, when this machine leaves it free
        server = _recorder(web_main.DEFAULT_PORT)
    except OSError:
        pytest.skip(f"port {web_main.DEFAULT_PORT} is in use here; the default was checked above")
    try:
        assert grader(["submit", str(SOLUTION_PATH), "-a", SLUG, "--token", "tg_x"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert Recorder.paths == ["/api/v1/submissions"] * 2
