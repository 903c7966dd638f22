"""The worker images: linted with hadolint (no Docker engine runs here), and what they must contain."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.workers.conftest import ROOT

DOCKER = ROOT / "docker"
IMAGES = ["Dockerfile.worker", "Dockerfile.worker-gpu"]


@pytest.mark.parametrize("name", IMAGES)
def test_image_has_sandbox_and_runs_unprivileged(name):
    """bubblewrap, setpriv and libseccomp installed; the last USER is not root; the entry is the worker."""
    text = (DOCKER / name).read_text()
    for package in ("bubblewrap", "util-linux", "libseccomp2"):
        assert re.search(rf"apt-get install[^\n]*(\\\n[^\n]*)*{package}", text), package
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["python", "-m", "workers", "worker"]' in text
    if name.endswith("-gpu"):
        assert text.startswith("#") and "FROM nvidia/cuda:" in text and '"--queue", "gpu"' in text


def test_hadolint_passes():
    """hadolint finds nothing beyond the two rules docker/.hadolint.yaml explains."""
    assert shutil.which("hadolint"), "hadolint comes with the dev extra: run ./scripts/install.sh"
    proc = subprocess.run(["hadolint", "--config", str(DOCKER / ".hadolint.yaml"),
                           *(str(DOCKER / n) for n in IMAGES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _seconds(duration: str) -> float:
    """A compose duration ("4m", "90s", "1m30s") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms|us)", duration)
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * scale[u] for n, u in parts)


@pytest.mark.parametrize("service,device", [("worker-cpu", "cpu"), ("worker-gpu", "gpu")])
def test_a_stopped_worker_container_may_finish_its_gradings(service, device, monkeypatch):
    """`docker stop` waits stop_grace_period before SIGKILL: at least the longest hard time
    limit of the course's assignments on that device, so a warm shutdown (issue 11 #10)
    finishes the gradings in flight."""
    import yaml

    from grader.assignment import discover
    from workers.config import Settings
    from workers.service import hard_limit_s

    monkeypatch.delenv("TORCHGRADE_ASSIGNMENTS", raising=False)
    monkeypatch.delenv("TORCHGRADE_ENGINE_OVERHEAD_S", raising=False)
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    grace = _seconds(compose["services"][service]["stop_grace_period"])
    longest = max(hard_limit_s(a, Settings.from_env()) for a in discover().values() if a.device == device)
    assert grace >= longest, (grace, longest)
