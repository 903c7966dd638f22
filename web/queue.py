"""The web's side of the broker: enqueue after the commit, requeue for a regrade."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import current_app

from web import db


def settings() -> Any:
    """The workers' Settings for this app's database and broker."""
    from workers.config import Settings

    return dataclasses.replace(Settings.from_env(), database_url=current_app.config["DATABASE_URL"],
                               broker_url=current_app.config["BROKER_URL"])


def celery() -> Any:
    """This app's Celery client (made on first use; connects when it first sends)."""
    ext = current_app.extensions
    if "torchgrade.celery" not in ext:
        from workers.celery_app import make_app

        ext["torchgrade.celery"] = make_app(settings())
    return ext["torchgrade.celery"]


def enqueue(submission_id: int) -> bool:
    """Send a committed submission to its queue; False leaves it to the workers' sweeper."""
    if not current_app.config.get("ENQUEUE", True):
        return False
    from workers.service import enqueue_submission

    return enqueue_submission(db.engine(), submission_id, app=celery(), settings=settings())


def requeue(submission_id: int) -> bool:
    """Put a finished submission back in its queue, keeping its seed."""
    from workers.service import requeue as workers_requeue

    if not current_app.config.get("ENQUEUE", True):
        from sqlalchemy import update

        from workers.models import QUEUED, Submission

        with db.engine().begin() as conn:  # no broker in this configuration: only the state changes
            conn.execute(update(Submission).where(Submission.id == submission_id).values(state=QUEUED))
        return True
    return workers_requeue(db.engine(), submission_id, app=celery())
