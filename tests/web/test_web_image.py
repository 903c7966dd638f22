"""The web image and the compose file: linted, and holding what the service needs (no Docker engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess

from web_helpers import ROOT

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
