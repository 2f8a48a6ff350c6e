"""Celery: the workers that drive providers (DESIGN §1). ``celery -A worker worker``."""

from __future__ import annotations

from worker.celery_app import app

__all__ = ["app"]
