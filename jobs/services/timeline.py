"""A job's timeline and live updates: events, metric points, and the after-commit publish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection
from django.utils import timezone

from jobs.live import LiveUpdate, publish_job_event
from jobs.models import (
    JobEvent,
    MetricPoint,
    Prediction,
    TrainingJob,
)


class PointRow(NamedTuple):
    """One metric point as inserted: plain values, no model instance (the hot path)."""

    job_id: uuid.UUID
    seq: int
    step: int
    epoch: float | None
    name: str
    value: float
    ts: datetime


@dataclass
class _Batch:
    metric_points: list[PointRow] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)


# --- timeline and live updates --------------------------------------------------------------


def _record(
    job: TrainingJob, kind: str, message: str, data: dict[str, Any] | None = None
) -> JobEvent:
    return JobEvent.objects.create(job=job, kind=kind, message=message, data=data or {})


def _event_payload(event: JobEvent) -> dict[str, Any]:
    # The id lets a page that re-read /events after a reconnect drop what it already has.
    return {
        "id": event.pk,
        "kind": event.kind,
        "message": event.message,
        "at": (event.created_at or timezone.now()).isoformat(),
    }


def _publish(
    job: TrainingJob,
    batch: _Batch | None = None,
    events: list[dict[str, Any]] | None = None,
    points: list[PointRow] | None = None,
    first_seq: int | None = None,
) -> None:
    update = LiveUpdate(
        type="job.update",
        job=str(job.id),
        first_seq=first_seq if first_seq is not None else job.last_seq,
        seq=job.last_seq,
        status=job.status,
        step=job.step,
        total_steps=job.total_steps,
        epoch=job.epoch,
        cost_so_far=float(job.cost_so_far),
        metrics=_columns(batch.metric_points if batch else points or []),
        predictions=[_prediction_payload(p) for p in batch.predictions] if batch else [],
        events=events or [],
    )
    if batch:
        update["events"] += [_event_payload(e) for e in batch.events]
    publish_job_event(update)


def _insert_points(rows: list[PointRow]) -> None:
    """Bulk insert; on PostgreSQL through COPY on the transaction's own connection, which is
    several times cheaper than a multi-row INSERT (benchmarks/ingest_throughput.py)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        MetricPoint.objects.bulk_create(
            [MetricPoint(**row._asdict()) for row in rows], batch_size=1000
        )
        return
    table = MetricPoint._meta.db_table
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(PointRow._fields)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _columns(points: list[PointRow]) -> dict[str, list[list[float]]]:
    columns: dict[str, list[list[float]]] = {}
    for point in points:
        steps, values = columns.setdefault(point.name, [[], []])
        steps.append(point.step)
        values.append(point.value)
    return columns


def _prediction_payload(p: Prediction) -> dict[str, Any]:
    return {
        "sample_id": p.sample_id,
        "step": p.step,
        "epoch": p.epoch,
        "prompt": p.prompt,
        "generated": p.generated,
        "expected": p.expected,
        "bleu": p.bleu,
        "rouge1": p.rouge1,
        "rouge2": p.rouge2,
        "rouge_l": p.rouge_l,
    }
