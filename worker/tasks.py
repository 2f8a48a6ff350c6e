"""Celery tasks: thin, id-taking, idempotent. Names are the contract with ``jobs.queue``.

Retries are only for transient provider errors (``ProviderError(permanent=False)``), with
exponential backoff honouring a provider's Retry-After; everything else is logged and raised.
"""

from __future__ import annotations

from celery import Task, shared_task

from jobs import services as job_services
from providers.base import ProviderError
from worker import services

# Launch retries: with the backoff below, about 10 minutes of transient trouble before failing.
MAX_RETRIES = 6


def _backoff(task: Task, exc: ProviderError) -> float:
    return min(300.0, max(exc.retry_after or 0.0, 5.0 * 2**task.request.retries))


@shared_task(name="tuneboard.launch_job", bind=True, max_retries=MAX_RETRIES)
def launch_job(self: Task, job_id: str) -> None:
    try:
        services.launch_pod(job_id)
    except services.LaunchBusy as busy:
        raise self.retry(countdown=busy.retry_after + 1, max_retries=MAX_RETRIES + 5) from busy
    except ProviderError as exc:
        if self.request.retries >= MAX_RETRIES:
            job_services.fail_job(job_id, f"the provider kept failing: {exc.message}")  # type: ignore[arg-type]
            return
        raise self.retry(exc=exc, countdown=_backoff(self, exc)) from exc


@shared_task(name="tuneboard.poll_jobs")
def poll_jobs() -> int:
    """Beat, every few seconds: fan out one poll per job that has a pod."""
    job_ids = services.pods_to_poll()
    for job_id in job_ids:
        poll_job.delay(job_id)
    return len(job_ids)


@shared_task(name="tuneboard.poll_job", bind=True, max_retries=3)
def poll_job(self: Task, job_id: str) -> None:
    try:
        services.poll_pod(job_id)
    except ProviderError as exc:
        if exc.permanent or self.request.retries >= 3:
            # The next beat polls again; a provider that stays down ends as a stuck job.
            return
        raise self.retry(exc=exc, countdown=_backoff(self, exc)) from exc


@shared_task(name="tuneboard.enforce_stop")
def enforce_stop(job_id: str) -> None:
    services.enforce_stop(job_id)


@shared_task(name="tuneboard.reconcile")
def reconcile() -> list[str]:
    """Beat: terminate every pod of ours that no live job claims."""
    terminated: list[str] = []
    for provider in services.providers_to_reconcile():
        try:
            terminated += services.reconcile_provider(provider)
        except ProviderError:
            continue
    return terminated


@shared_task(name="tuneboard.fail_stuck_jobs")
def fail_stuck_jobs() -> list[str]:
    return services.fail_stuck_jobs()
