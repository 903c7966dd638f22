"""Configuration, a class per environment; the factory reads the environment, never this import."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from grader.submission import MAX_BYTES


class Config:
    """Single-machine defaults: SQLite and the serverless broker under the instance folder."""

    TESTING = False
    DATABASE_URL: str | None = None  # default: sqlite under the instance folder
    BROKER_URL: str | None = None  # default: kombu's SQLAlchemy transport on SQLite
    # Requests a little above the engine's file limit reach the engine's own clear message.
    MAX_CONTENT_LENGTH = MAX_BYTES + (256 << 10)
    MAX_SUBMISSION_BYTES = MAX_BYTES
    SUBMISSIONS_PER_HOUR = 10
    SCORE_POLICY = "best"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the session lifetime bounds the token
    ENQUEUE = True

    @staticmethod
    def from_env(instance: Path) -> dict[str, Any]:
        """Values the environment overrides: secrets and the URLs of the database and broker."""
        out: dict[str, Any] = {}
        url = os.environ.get("DATABASE_URL") or os.environ.get("TORCHGRADE_DATABASE")
        out["DATABASE_URL"] = url or f"sqlite:///{instance / 'torchgrade.sqlite'}"
        broker = os.environ.get("BROKER_URL") or os.environ.get("TORCHGRADE_BROKER")
        out["BROKER_URL"] = broker or f"sqla+sqlite:///{instance / 'broker.sqlite'}"
        out["SECRET_KEY"] = os.environ.get("SECRET_KEY") or _instance_secret(instance)
        if "TORCHGRADE_SUBMISSIONS_PER_HOUR" in os.environ:
            out["SUBMISSIONS_PER_HOUR"] = int(os.environ["TORCHGRADE_SUBMISSIONS_PER_HOUR"])
        return out


class ProductionConfig(Config):
    """Behind TLS (the compose file): cookies only over HTTPS."""

    SESSION_COOKIE_SECURE = True


class TestingConfig(Config):
    """Tests pass their own database and broker URLs."""

    TESTING = True
    SECRET_KEY = "testing"


CONFIGS = {"default": Config, "production": ProductionConfig, "testing": TestingConfig}


def _instance_secret(instance: Path) -> str:
    """A secret key kept in the instance folder so sessions survive a restart."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
