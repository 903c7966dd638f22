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
