"""Worker health on the instructor's pages; the student told when no worker takes the queue (issue 11 #3, #4).

Heartbeats are written by the workers' own `beat` (what a running worker does every few
seconds); a dead node is one whose last heartbeat is old. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import update
from web_helpers import SOLUTION

from web import db
from web.services.health import age
from web.services.tokens import create_token
from workers.models import QUEUED, Submission, WorkerHeartbeat, utcnow
from workers.service import beat

GPU_SLUG = "09_gpu"
GPU_NOTICE = ("No GPU grader is running right now. Your submission is saved and will be graded when one "
              "starts; your instructor can see this.")


def heartbeat(app, hostname: str, queues: str, *, seconds_ago: float = 0, stopped: bool = False) -> None:
    """A worker's heartbeat as `workers.service.beat` writes it, optionally aged."""
    with app.app_context():
        engine = db.engine()
        beat(engine, hostname=hostname, queues=queues, pid=4242, concurrency=2,
             gpus=1 if "gpu" in queues else 0, stopped=stopped)
        if seconds_ago:
            H = WorkerHeartbeat.__table__
            with engine.begin() as conn:
                conn.execute(update(H).where(H.c.hostname == hostname)
                             .values(last_seen_at=utcnow() - timedelta(seconds=seconds_ago)))


def queued(app, user, *, slug: str = GPU_SLUG, queue: str = "gpu", minutes_ago: float = 0) -> int:
    """A submission waiting in a queue, as the web leaves it after the commit."""
    with app.app_context():
        s = db.session()
        sub = Submission(assignment=slug, owner=str(user.id), filename="solution.py", content=SOLUTION,
                         state=QUEUED, queue=queue, created_at=utcnow() - timedelta(minutes=minutes_ago))
        s.add(sub)
        s.commit()
        return sub.id


def section(page: str, element_id: str) -> str:
    return page.split(f'id="{element_id}"', 1)[1].split("</table>", 1)[0]


def test_the_worker_table_shows_alive_stopped_and_dead_nodes_and_forgets_old_ones(app, client, factory):
    factory.user("prof", "instructor")
    heartbeat(app, "cpu@alive", "cpu")
    heartbeat(app, "cpu@stopped", "cpu", stopped=True)
    heartbeat(app, "gpu@dead", "gpu", seconds_ago=300)
    heartbeat(app, "cpu@long-gone", "cpu", seconds_ago=2 * 3600)
    factory.login(client, "prof")
    workers = section(client.get("/instructor/").get_data(as_text=True), "workers")
    rows = {line.split("</td>", 1)[0].rsplit(">", 1)[1]: line
            for line in workers.split('<tr class="worker')[1:]}
    assert set(rows) == {"cpu@alive", "cpu@stopped", "gpu@dead"}  # silent for over an hour: left out
    for host, status in (("cpu@alive", "alive"), ("cpu@stopped", "stopped"), ("gpu@dead", "dead")):
        assert f'<td class="status {status}"' in rows[host], host
    assert "(1 GPU)" in rows["gpu@dead"]


def test_an_unserved_queue_raises_a_banner_on_every_instructor_page_until_a_worker_takes_it(app, client,
                                                                                              factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    heartbeat(app, "cpu@node1", "cpu")
    heartbeat(app, "gpu@node9", "gpu", seconds_ago=120)  # a GPU node that died: not a consumer
    for minutes in (12, 3, 0):
        queued(app, ann, minutes_ago=minutes)
    factory.login(client, "prof")
    banner = ("No worker is taking the gpu queue: 3 submissions wait (oldest 12 min). Start a GPU worker: "
              "<code>grader worker --queue gpu</code>")
    for path in ("/instructor/", "/instructor/extensions", "/instructor/roster",
                 f"/instructor/assignments/{GPU_SLUG}"):
        assert banner in client.get(path).get_data(as_text=True), path
    queues = section(client.get("/instructor/").get_data(as_text=True), "queues")
    gpu_row = queues.split('<tr class="queue unserved"><td>gpu</td>', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">0</td>' in gpu_row and '<td class="num">3</td>' in gpu_row
    assert "no worker takes this queue" in gpu_row and '<tr class="queue"><td>cpu</td>' in queues

    heartbeat(app, "gpu@node9", "gpu")  # the GPU worker is back
    page = client.get("/instructor/").get_data(as_text=True)
    assert "No worker is taking" not in page and "unserved" not in section(page, "queues")

    factory.login(client, "ann")  # students never see the instructor's banner
    assert "No worker is taking" not in client.get("/assignments").get_data(as_text=True)


def test_the_cpu_banner_names_the_embedded_worker_too(app, client, factory):
    ann = factory.user("ann")
    factory.user("prof", "instructor")
    queued(app, ann, slug="03_numpy_backprop", queue="cpu", minutes_ago=5)
    factory.login(client, "prof")
    page = client.get("/instructor/").get_data(as_text=True)
    assert ("No worker is taking the cpu queue: 1 submission waits (oldest 5 min). Start a CPU worker (or "
            "restart `python -m web serve`, whose embedded worker takes cpu): <code>grader worker --queue cpu"
            "</code>") in page


def test_the_student_is_told_plainly_when_no_gpu_grader_runs(app, client, factory):
    ann = factory.user("ann")
    sub_id = queued(app, ann)
    heartbeat(app, "cpu@node1", "cpu")  # a CPU worker does not take the gpu queue
    factory.login(client, "ann")
    page = client.get(f"/submissions/{sub_id}").get_data(as_text=True)
    pending = page.split('id="pending"', 1)[1].split("</p>", 1)[0]
    assert GPU_NOTICE in pending and "warning" in pending and ">Waiting for a grader" not in pending
    assert client.get(f"/submissions/{sub_id}/status.json").get_json()["notice"] == GPU_NOTICE
    with app.app_context():
        token = create_token(db.session(), ann, "cli")
    api = client.get(f"/api/v1/submissions/{sub_id}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert api["state"] == "queued" and api["notice"] == GPU_NOTICE

    heartbeat(app, "gpu@node2", "gpu")
    assert client.get(f"/submissions/{sub_id}/status.json").get_json()["notice"] is None
    page = client.get(f"/submissions/{sub_id}").get_data(as_text=True)
    assert GPU_NOTICE not in page and "Waiting for a grader… this page updates by itself." in page


def test_no_notice_for_a_served_queue_or_a_finished_submission(app, client, factory):
    ann = factory.user("ann")
    cpu_id = queued(app, ann, slug="03_numpy_backprop", queue="cpu")
    graded_id = factory.graded(ann, score=5.0)
    heartbeat(app, "cpu@node1", "cpu")
    factory.login(client, "ann")
    assert client.get(f"/submissions/{cpu_id}/status.json").get_json()["notice"] is None
    heartbeat(app, "cpu@node1", "cpu", stopped=True)  # no worker at all now
    notice = client.get(f"/submissions/{cpu_id}/status.json").get_json()["notice"]
    assert notice.startswith("No grader is running right now. Your submission is saved")
    assert client.get(f"/submissions/{graded_id}/status.json").get_json()["notice"] is None


def test_an_upload_answer_carries_the_notice(app, client, factory, course):
    ann = factory.user("ann")
    with app.app_context():
        token = create_token(db.session(), ann, "cli")
    data = (course / GPU_SLUG / "solution.py").read_bytes()
    resp = client.post("/api/v1/submissions", headers={"Authorization": f"Bearer {token}"},
                       data={"assignment": GPU_SLUG, "file": (io.BytesIO(data), "solution.py")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201 and resp.get_json()["notice"] == GPU_NOTICE


def test_ages_read_as_people_say_them():
    assert [age(s) for s in (None, 40, 720, 3 * 3600, 3 * 86400)] == ["-", "40 s", "12 min", "3 h", "3 days"]
