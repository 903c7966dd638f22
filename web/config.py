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
    # Server-side login sessions (web/services/sessions.py) end after this long idle, or in all.
    LOGIN_SESSION_IDLE_S = 7 * 24 * 3600
    LOGIN_SESSION_MAX_S = 30 * 24 * 3600
    # Failed logins only (a successful one never counts), by the posted username and by the client's
    # address; ";" joins several windows. The address limit is looser: a class behind one campus NAT
    # shares an address, and one student's typos must not lock out the room.
    LOGIN_LIMIT_ACCOUNT = "5/minute;20/hour"
    LOGIN_LIMIT_ADDRESS = "30/minute;200/hour"
    # Flask-Limiter's storage. memory:// counts in each process apart: under gunicorn with N worker
    # processes an attacker gets up to N times the limit, and a restart forgets it; one machine's
    # `serve` accepts that, a real deployment points it at Redis (from_env does when the broker is Redis).
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_KEY_PREFIX = "torchgrade"
    RATELIMIT_STRATEGY = "moving-window"  # no burst of 2x the limit across a window's edge
    RATELIMIT_ENABLED = True
    # If the limit's storage (Redis) is down, log it and let logins through: availability first.
    RATELIMIT_SWALLOW_ERRORS = True
    # Proxies in front of the app that append to X-Forwarded-For (0: trust no such header, use the
    # socket's address). Set it to exactly the number of proxies you run, or clients can forge it.
    TRUSTED_PROXIES = 0

    @staticmethod
    def from_env(instance: Path) -> dict[str, Any]:
        """Values the environment overrides: secrets, URLs of the database, broker and rate-limit store."""
        out: dict[str, Any] = {}
        url = os.environ.get("DATABASE_URL") or os.environ.get("TORCHGRADE_DATABASE")
        out["DATABASE_URL"] = url or f"sqlite:///{instance / 'torchgrade.sqlite'}"
        broker = os.environ.get("BROKER_URL") or os.environ.get("TORCHGRADE_BROKER")
        out["BROKER_URL"] = broker or f"sqla+sqlite:///{instance / 'broker.sqlite'}"
        out["SECRET_KEY"] = os.environ.get("SECRET_KEY") or _instance_secret(instance)
        out["RATELIMIT_STORAGE_URI"] = os.environ.get("TORCHGRADE_RATELIMIT_STORAGE") or (
            out["BROKER_URL"] if out["BROKER_URL"].startswith(("redis://", "rediss://")) else "memory://")
        if "TORCHGRADE_TRUSTED_PROXIES" in os.environ:
            out["TRUSTED_PROXIES"] = int(os.environ["TORCHGRADE_TRUSTED_PROXIES"])
        for key in ("LOGIN_LIMIT_ACCOUNT", "LOGIN_LIMIT_ADDRESS"):
            if f"TORCHGRADE_{key}" in os.environ:
                out[key] = os.environ[f"TORCHGRADE_{key}"]
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
