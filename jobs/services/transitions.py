"""The job state machine: one function per transition, each claiming its row (DESIGN §3)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    JobEvent,
    JobStatus,
    TrainedModel,
    TrainingJob,
)
from jobs.queue import enqueue
from jobs.services.timeline import _event_payload, _publish, _record

# --- transitions -----------------------------------------------------------------------------


def _transition(
    job_id: uuid.UUID,
    from_statuses: Iterable[str],
    to_status: str,
    message: str,
    kind: str = JobEvent.Kind.TRANSITION,
    data: dict[str, Any] | None = None,
    record: bool = True,
    **fields: Any,
) -> TrainingJob | None:
    """Claim the job if it is in one of ``from_statuses``; None if someone else moved it."""
    with transaction.atomic():
        claimed = TrainingJob.objects.filter(id=job_id, status__in=list(from_statuses)).update(
            status=to_status, **fields
        )
        if not claimed:
            return None
        job = TrainingJob.objects.get(id=job_id)
        event = _record(job, kind, message, data) if record else None
        _publish(job, events=[_event_payload(event)] if event else [])
    return job


def mark_provisioning(
    job_id: uuid.UUID, provider_ref: str, gpu_type: str, cost_per_hour: Decimal, pod_url: str = ""
) -> TrainingJob | None:
    now = timezone.now()
    deadline = pod_deadline(now, cost_per_hour, _budget_of(job_id))
    return _transition(
        job_id,
        [JobStatus.QUEUED],
        JobStatus.PROVISIONING,
        f"pod {provider_ref} created on {gpu_type} at ${cost_per_hour}/h",
        provider_ref=provider_ref,
        gpu_type=gpu_type,
        cost_per_hour=cost_per_hour,
        pod_url=pod_url,
        deadline_at=deadline,
        started_at=now,
    )


def _budget_of(job_id: uuid.UUID) -> Decimal:
    return TrainingJob.objects.values_list("budget", flat=True).get(id=job_id)


def pod_deadline(start: datetime, cost_per_hour: Decimal, budget: Decimal) -> datetime | None:
    """When the pod must stop itself: the budget's hours at this price, less the time the
    trainer needs to save and upload (the same margin as the budget watch's graceful stop)."""
    if cost_per_hour <= 0:
        return None
    hours = float(budget / cost_per_hour)
    return start + timedelta(hours=hours) - timedelta(seconds=settings.GRACEFUL_STOP_MARGIN_S)


def mark_running(
    job_id: uuid.UUID, message: str = "the trainer started", record: bool = True
) -> TrainingJob | None:
    return _transition(
        job_id,
        [JobStatus.QUEUED, JobStatus.PROVISIONING],
        JobStatus.RUNNING,
        message,
        record=record,
        last_heartbeat_at=timezone.now(),
    )


def request_stop(job_id: uuid.UUID, reason: str, message: str) -> TrainingJob | None:
    """Ask a running job to stop gracefully: its trainer gets ``stop`` on its next post."""
    job = _transition(
        job_id,
        [JobStatus.PROVISIONING, JobStatus.RUNNING],
        JobStatus.STOPPING,
        message,
        stop_reason=reason,
        stop_requested_at=timezone.now(),
    )
    if job is None:
        # Nothing runs yet: a queued job simply never starts.
        job = finish_job(job_id, _final_status_for(reason), message, stop_reason=reason)
    return job


def _final_status_for(stop_reason: str) -> str:
    # The pod's deadline is the budget's hours at its price: reaching it is a budget stop.
    if stop_reason in ("budget", "deadline"):
        return JobStatus.BUDGET_EXCEEDED
    return JobStatus.STOPPED


def finish_job(
    job_id: uuid.UUID,
    status: str,
    message: str,
    kind: str = JobEvent.Kind.TRANSITION,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> TrainingJob | None:
    """Move a live job to a terminal status. A terminal job is never resurrected."""
    assert status in TERMINAL_STATUSES, status
    job = _transition(
        job_id,
        LIVE_STATUSES,
        status,
        message,
        kind=kind,
        data=data,
        finished_at=timezone.now(),
        **fields,
    )
    if job is not None and status == JobStatus.SUCCEEDED and job.adapter_path:
        _register_trained_model(job)
    return job


def fail_job(job_id: uuid.UUID, error: str) -> TrainingJob | None:
    return finish_job(
        job_id, JobStatus.FAILED, f"failed: {error}", kind=JobEvent.Kind.ERROR, error=error
    )


def _register_trained_model(job: TrainingJob) -> None:
    runtime = 0.0
    if job.started_at and job.finished_at:
        runtime = (job.finished_at - job.started_at).total_seconds()
    TrainedModel.objects.update_or_create(
        job=job,
        defaults={
            "owner": job.owner,
            "base_model": job.config_snapshot.get("model", {}).get("name", ""),
            "adapter_location": job.hub_repo or job.adapter_path,
            "hub_repo": job.hub_repo,
            "final_loss": job.final_loss,
            "cost": job.cost_so_far,
            "training_seconds": runtime,
            "dataset_rows": job.dataset.rows,
        },
    )


def record_job_event(job_id: uuid.UUID, kind: str, message: str, **data: Any) -> None:
    """A timeline entry that changes no state (provider notes, retries, alerts)."""
    job = TrainingJob.objects.get(id=job_id)
    with transaction.atomic():
        event = _record(job, kind, message, data)
        _publish(job, events=[_event_payload(event)])


# --- stopping and cost -----------------------------------------------------------------------


def stop_job_for_user(job: TrainingJob) -> TrainingJob | None:
    """The stop button: graceful now, forced by the worker if the trainer does not comply."""
    stopped = request_stop(job.id, "user", "stop requested by the user")
    if stopped is not None and stopped.status == JobStatus.STOPPING:
        grace = settings.STOP_GRACE_S + 1
        transaction.on_commit(lambda: enqueue("enforce_stop", str(job.id), countdown=grace))
    return stopped
