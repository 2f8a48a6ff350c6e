"""Money: cost so far, the one budget alert, and the budget rules the worker applies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import (
    JobEvent,
    JobStatus,
    TrainingJob,
)
from jobs.services.timeline import PointRow, _event_payload, _insert_points, _publish, _record

# --- money -----------------------------------------------------------------------------------


def update_cost(
    job_id: uuid.UUID, cost_so_far: Decimal, cost_per_hour: Decimal | None = None
) -> TrainingJob | None:
    """Record the latest cost figure; cost never goes down (a provider may report late)."""
    fields: dict[str, Any] = {"cost_so_far": cost_so_far}
    if cost_per_hour is not None:
        fields["cost_per_hour"] = cost_per_hour
    with transaction.atomic():
        before = TrainingJob.objects.values_list("cost_so_far", flat=True).get(id=job_id)
        updated = TrainingJob.objects.filter(id=job_id, cost_so_far__lte=cost_so_far).update(
            **fields
        )
        job = TrainingJob.objects.get(id=job_id)
        if updated and cost_so_far != before:
            # Cost history for the chart, at the training step it was reached.
            point = PointRow(
                job.id, job.last_seq, job.step, None, "cost", float(cost_so_far), timezone.now()
            )
            _insert_points([point])
            _publish(job, points=[point])
        elif updated:
            _publish(job)
    return job


def mark_alert_sent(job_id: uuid.UUID) -> bool:
    """Claim the one budget alert a job gets."""
    with transaction.atomic():
        claimed = TrainingJob.objects.filter(id=job_id, alert_sent_at__isnull=True).update(
            alert_sent_at=timezone.now()
        )
        if claimed:
            job = TrainingJob.objects.get(id=job_id)
            share = job.cost_so_far / job.budget * 100 if job.budget else Decimal(0)
            message = (
                f"cost ${job.cost_so_far:.2f} reached {share:.0f}% of the ${job.budget} budget"
            )
            event = _record(job, JobEvent.Kind.ALERT, message)
            _publish(job, events=[_event_payload(event)])
    return bool(claimed)


def cost_summary(job: TrainingJob) -> dict[str, Any]:
    projected = None
    if job.total_steps and job.step and job.started_at and job.cost_so_far:
        projected = job.cost_so_far * Decimal(job.total_steps) / Decimal(job.step)
    return {
        "cost_so_far": job.cost_so_far,
        "cost_per_hour": job.cost_per_hour,
        "budget": job.budget,
        "alert_threshold": job.alert_threshold,
        "projected_total": projected.quantize(Decimal("0.0001")) if projected else None,
        "budget_remaining": max(Decimal(0), job.budget - job.cost_so_far),
        "deadline_at": job.deadline_at,
    }


# --- budget rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetVerdict:
    alert: bool
    graceful_stop: bool
    terminate: bool


def judge_budget(job: TrainingJob) -> BudgetVerdict:
    """What the budget watch must do now, from the job's latest cost figure."""
    spent, budget = job.cost_so_far, job.budget
    over = spent >= budget
    # Enough running time for the trainer to finish its step, save and upload before the hard
    # stop at the budget (settings.GRACEFUL_STOP_MARGIN_S).
    margin = job.cost_per_hour * Decimal(settings.GRACEFUL_STOP_MARGIN_S) / Decimal(3600)
    nearly = job.cost_per_hour > 0 and budget - spent <= margin
    return BudgetVerdict(
        alert=job.alert_sent_at is None and spent >= budget * job.alert_threshold,
        graceful_stop=(nearly or over)
        and job.status in (JobStatus.PROVISIONING, JobStatus.RUNNING),
        terminate=over,
    )


def overspend(job: TrainingJob) -> Decimal:
    return max(Decimal(0), job.cost_so_far - job.budget)
