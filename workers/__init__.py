"""Grading workers: Celery on cpu and gpu queues, with the database as the source of truth."""
