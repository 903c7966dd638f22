"""The web image and the compose file: linted, and holding what the service needs (no Docker engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib

from web_helpers import PASSWORD, ROOT, SLUG, SOLUTION

DOCKER = ROOT / "docker"


def test_compose_has_every_part_of_the_service():
    """Text checks: PyYAML is no dependency of the project."""
    text = (DOCKER / "compose.yaml").read_text()
    block = text.split("\nservices:\n", 1)[1].split("\nvolumes:\n")[0]
    services = re.findall(r"^  ([a-z-]+):\n", block, re.M)
    assert services == ["postgres", "redis", "web", "worker-cpu", "worker-gpu"]
    assert "dockerfile: docker/Dockerfile.web" in text and "driver: nvidia" in text
    assert "TORCHGRADE_BROKER: redis://redis:6379/0" in text
    assert "TORCHGRADE_DATABASE: postgresql+psycopg2://" in text
    assert text.count("condition: service_healthy") == 2


def test_web_image_migrates_then_serves_with_gunicorn_unprivileged():
    text = (DOCKER / "Dockerfile.web").read_text()
    assert "python -m web init-db && exec gunicorn" in text and "'web:create_app()'" in text
    assert "torch" not in text.split("RUN pip install", 1)[1].split("\n\n", 1)[0].replace("#", "")
    assert text.strip().count("USER 10002") == 1


def test_hadolint_passes_on_the_web_image():
    assert shutil.which("hadolint"), "hadolint comes with the dev extra: run ./scripts/install.sh"
    proc = subprocess.run(["hadolint", "--config", str(DOCKER / ".hadolint.yaml"),
                           str(DOCKER / "Dockerfile.web")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_web_image_installs_every_web_dependency():
    """The image lists its packages by hand (--no-deps keeps torch out): none of the web extra is missing."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["web"]
    install = (DOCKER / "Dockerfile.web").read_text().split("RUN pip install", 1)[1].split("\n\n", 1)[0]
    names = [re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower() for req in extra]
    missing = [n for n in names if f'"{n}' not in install.lower()]
    assert not missing, f"Dockerfile.web does not install {missing}"


# The web image has neither torch nor numpy: the app, every page an instructor and a student
# use, the handout's zip, the exports and code similarity must work without them.
WITHOUT_TORCH = f"""
import importlib.abc, sys, tempfile
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "numpy"):
            raise ImportError(name + " is not in the web image")
sys.meta_path.insert(0, Block())
import io
from web import create_app, db
from web.db import upgrade
from web.services.users import create_user
d = tempfile.mkdtemp()
url = "sqlite:///" + d + "/w.sqlite"
upgrade(url)
app = create_app({{"DATABASE_URL": url, "BROKER_URL": "sqla+sqlite:///" + d + "/b.sqlite",
                  "WTF_CSRF_ENABLED": False, "ENQUEUE": False}})
with app.app_context():
    create_user(db.session(), username="prof", password={PASSWORD!r}, role="instructor")
    create_user(db.session(), username="ann", password={PASSWORD!r})
ann, prof = app.test_client(), app.test_client()
assert ann.post("/login", data={{"username": "ann", "password": {PASSWORD!r}}}).status_code == 302
assert prof.post("/login", data={{"username": "prof", "password": {PASSWORD!r}}}).status_code == 302
sent = ann.post("/assignments/{SLUG}", data={{"file": (io.BytesIO({SOLUTION!r}), "hw.py")}},
                content_type="multipart/form-data")
assert sent.status_code == 302, sent.status_code
sub = sent.headers["Location"]
for client, path in [(ann, "/assignments/{SLUG}"), (ann, "/assignments/{SLUG}/public-tests.zip"), (ann, sub),
                     (prof, "/instructor/"), (prof, "/instructor/assignments/{SLUG}"),
                     (prof, "/instructor/assignments/{SLUG}/similarity"),
                     (prof, "/instructor/assignments/{SLUG}/tests.csv"), (prof, "/instructor" + sub),
                     (prof, "/instructor/roster")]:
    status = client.get(path).status_code
    assert status == 200, (path, status)
print("ok", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy")))
"""


def test_the_web_runs_without_torch_or_numpy(tmp_path):
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TORCH], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok []", proc.stdout + proc.stderr[-3000:]
