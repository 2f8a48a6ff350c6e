"""Sending work to the Celery workers by task name.

``jobs`` may not import ``worker`` (DESIGN §1: the worker imports the domain, not the reverse),
so tasks are addressed by their registered names, the contract between the two.
"""

from __future__ import annotations

from functools import cache

from celery import Celery


@cache
def _app() -> Celery:
    app = Celery("tuneboard")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    return app


def enqueue(task: str, *args: str, countdown: float | None = None) -> None:
    _app().send_task(f"tuneboard.{task}", args=list(args), countdown=countdown)
