"""Celery tasks (placeholder names; the orchestration is built in the providers issue)."""
