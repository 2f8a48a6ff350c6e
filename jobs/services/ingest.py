"""Ingest: validating and storing a trainer's event batch, idempotently on (job, seq)."""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import (
    JobEvent,
    JobStatus,
    Prediction,
    TrainingJob,
    derive_ingest_token,
    hash_token,
)
from jobs.services.money import overspend
from jobs.services.timeline import PointRow, _Batch, _insert_points, _publish
from jobs.services.transitions import _final_status_for, finish_job, mark_running

# --- ingest ----------------------------------------------------------------------------------

EVENT_TYPES = frozenset({"metric", "prediction", "status", "log", "system"})
# Phases a trainer re-enters at every evaluation: the timeline notes them once.
RECURRING_PHASES = frozenset({"training", "evaluating", "predicting"})
FINAL_PHASES = {
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "stopped": JobStatus.STOPPED,
}


class BadBatch(Exception):
    """A malformed ingest batch; nothing of it is stored."""


@dataclass
class IngestEvent:
    seq: int
    type: str
    ts: datetime
    data: dict[str, Any]


@dataclass
class IngestResult:
    acked_through: int
    command: str | None
    stored: int


def parse_events(body: Any) -> list[IngestEvent]:
    """Validate a whole batch before anything is written; the message names the event."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise BadBatch('the body must be a JSON object {"events": [...]}')
    events = [_parse_event(i, raw) for i, raw in enumerate(body["events"])]
    for i in range(1, len(events)):
        if events[i].seq <= events[i - 1].seq:
            raise BadBatch(f"events[{i}].seq: seqs must increase within a batch")
    return events


def _parse_event(index: int, raw: Any) -> IngestEvent:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise BadBatch(f"{where}: must be an object")
    seq = raw.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadBatch(f"{where}.seq: must be an integer >= 1")
    if raw.get("type") not in EVENT_TYPES:
        raise BadBatch(f"{where}.type: must be one of {', '.join(sorted(EVENT_TYPES))}")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise BadBatch(f"{where}.data: must be an object")
    try:
        ts = datetime.fromisoformat(str(raw.get("ts")))
    except ValueError:
        raise BadBatch(f"{where}.ts: must be an ISO 8601 timestamp") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    event = IngestEvent(seq, raw["type"], ts, data)
    _check_event_data(where, event)
    return event


def _check_event_data(where: str, event: IngestEvent) -> None:
    data = event.data
    if event.type in ("metric", "system", "prediction"):
        step = data.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise BadBatch(f"{where}.data.step: must be an integer >= 0")
    if not isinstance(data.get("epoch"), int | float | None) or isinstance(data.get("epoch"), bool):
        raise BadBatch(f"{where}.data.epoch: must be a number or null")
    if event.type in ("metric", "system"):
        values = data.get("values")
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()
        ):
            raise BadBatch(f"{where}.data.values: must map metric names to numbers")
        if any(len(str(name)) > 64 for name in values):
            raise BadBatch(f"{where}.data.values: metric names are at most 64 characters")
    if event.type == "prediction":
        for key in ("sample_id", "prompt", "generated"):
            if not isinstance(data.get(key), str):
                raise BadBatch(f"{where}.data.{key}: must be a string")
    if event.type == "status" and not isinstance(data.get("phase"), str):
        raise BadBatch(f"{where}.data.phase: must be a string")


def record_events(job_id: uuid.UUID, events: Sequence[IngestEvent]) -> IngestResult:
    """Store one trainer batch in one transaction, idempotently on (job, seq).

    Acks are cumulative: only events that continue the stored run without a gap are kept, so a
    replayed batch stores nothing twice and a lost one is simply sent again.
    """
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(id=job_id)
        fresh = _continuing(job.last_seq, events)
        batch = _build_batch(job, fresh)
        _insert_points(batch.metric_points)
        Prediction.objects.bulk_create(batch.predictions, batch_size=500)
        JobEvent.objects.bulk_create(batch.events)
        if fresh:
            _advance(job, fresh[-1].seq, batch.progress)
        for status in batch.statuses:
            _apply_trainer_status(job, status)
        job.refresh_from_db()
        if fresh:
            _publish(job, batch=batch, first_seq=fresh[0].seq)
    command = "stop" if job.status == JobStatus.STOPPING else None
    return IngestResult(acked_through=job.last_seq, command=command, stored=len(fresh))


def _continuing(last_seq: int, events: Sequence[IngestEvent]) -> list[IngestEvent]:
    fresh = []
    expected = last_seq + 1
    for event in events:
        if event.seq < expected:
            continue
        if event.seq > expected:
            break
        fresh.append(event)
        expected += 1
    return fresh


def _build_batch(job: TrainingJob, events: list[IngestEvent]) -> _Batch:
    batch = _Batch()
    noted = _noted_phases(job, events)
    for event in events:
        data = event.data
        if event.type in ("metric", "system"):
            _add_points(job, event, batch)
        elif event.type == "prediction":
            batch.predictions.append(_prediction(job, event))
        elif event.type == "status":
            batch.statuses.append(data)
            if data["phase"] in RECURRING_PHASES:
                if data["phase"] in noted:
                    continue
                noted.add(data["phase"])
            if data["phase"] not in FINAL_PHASES:
                message = data.get("message") or data["phase"]
                if data["phase"] == "started":
                    message = _started_message(data)
                batch.events.append(
                    JobEvent(job=job, kind=JobEvent.Kind.TRAINER, message=message, data=data)
                )
        elif event.type == "log":
            message = str(data.get("message", ""))[:10_000]
            batch.events.append(JobEvent(job=job, kind=JobEvent.Kind.LOG, message=message, data={}))
    return batch


def _noted_phases(job: TrainingJob, events: list[IngestEvent]) -> set[str]:
    if not any(e.type == "status" and e.data["phase"] in RECURRING_PHASES for e in events):
        return set()
    return set(
        job.events.filter(kind=JobEvent.Kind.TRAINER, data__phase__in=RECURRING_PHASES)
        .values_list("data__phase", flat=True)
        .distinct()
    )


def _add_points(job: TrainingJob, event: IngestEvent, batch: _Batch) -> None:
    data = event.data
    step = data["step"]
    epoch = data.get("epoch")
    for name, value in data["values"].items():
        # A diverged run reports NaN / inf loss; JSON and charts cannot carry it, so it is
        # noted on the timeline instead of stored as a point.
        if not math.isfinite(value):
            message = f"{name} is {value} at step {step}"
            batch.events.append(JobEvent(job=job, kind=JobEvent.Kind.LOG, message=message))
            continue
        batch.metric_points.append(PointRow(job.id, event.seq, step, epoch, name, value, event.ts))
    if event.type == "metric":
        batch.progress["step"] = max(step, batch.progress.get("step", 0))
        if isinstance(epoch, int | float):
            batch.progress["epoch"] = float(epoch)
        if isinstance(data.get("total_steps"), int):
            batch.progress["total_steps"] = data["total_steps"]


def _prediction(job: TrainingJob, event: IngestEvent) -> Prediction:
    data = event.data
    scores: dict[str, Any] = data["scores"] if isinstance(data.get("scores"), dict) else {}

    def score(name: str) -> float | None:
        value = scores.get(name)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    return Prediction(
        job=job,
        seq=event.seq,
        step=data["step"],
        epoch=data.get("epoch") if isinstance(data.get("epoch"), int | float) else None,
        sample_id=data["sample_id"][:64],
        prompt=data["prompt"],
        generated=data["generated"],
        expected=str(data.get("expected") or ""),
        bleu=score("bleu"),
        rouge1=score("rouge1"),
        rouge2=score("rouge2"),
        rouge_l=score("rougeL"),
        ts=event.ts,
    )


def _advance(job: TrainingJob, last_seq: int, progress: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"last_seq": last_seq, "last_heartbeat_at": timezone.now()}
    # Progress only moves forward, whatever order late batches carry.
    if progress.get("step", 0) > job.step:
        fields["step"] = progress["step"]
        if "epoch" in progress:
            fields["epoch"] = progress["epoch"]
    if progress.get("total_steps"):
        fields["total_steps"] = progress["total_steps"]
    TrainingJob.objects.filter(id=job.id).update(**fields)


def _apply_trainer_status(job: TrainingJob, data: dict[str, Any]) -> None:
    phase = data["phase"]
    if phase == "started":
        # Its note is already on the timeline, in the order the trainer sent it.
        mark_running(job.id, "running", record=False)
    elif phase in FINAL_PHASES:
        _finish_from_trainer(job, phase, data)


def _started_message(data: dict[str, Any]) -> str:
    trainable = data.get("trainable_params")
    percent = data.get("trainable_percent")
    if isinstance(trainable, int) and isinstance(percent, int | float):
        return f"training started: {trainable:,} trainable parameters ({percent:.2f}%)"
    return "training started"


def _finish_from_trainer(job: TrainingJob, phase: str, data: dict[str, Any]) -> None:
    fields: dict[str, Any] = {}
    if isinstance(data.get("final_loss"), int | float) and math.isfinite(data["final_loss"]):
        fields["final_loss"] = float(data["final_loss"])
    if isinstance(data.get("adapter_path"), str):
        fields["adapter_path"] = data["adapter_path"][:500]
    if isinstance(data.get("hub_repo"), str):
        fields["hub_repo"] = data["hub_repo"][:200]
    status: str = FINAL_PHASES[phase]
    if phase == "failed":
        error = f"{data.get('error_type', 'Error')}: {data.get('message', '')}".strip()
        fields["error"] = error
        message = f"the trainer failed: {error}"
    elif phase == "stopped":
        job.refresh_from_db(fields=["stop_reason"])
        status = _final_status_for(job.stop_reason or str(data.get("reason", "")))
        message = f"the trainer stopped ({data.get('reason', 'stop')}) and saved its adapter"
        if status == JobStatus.BUDGET_EXCEEDED:
            job.refresh_from_db(fields=["cost_so_far", "budget"])
            message += (
                f"; cost ${job.cost_so_far:.4f} of the ${job.budget} budget, "
                f"${overspend(job):.4f} over"
            )
    else:
        message = "training succeeded"
    kind = JobEvent.Kind.ERROR if phase == "failed" else JobEvent.Kind.TRANSITION
    finish_job(job.id, status, message, kind=kind, data=_short(data), **fields)


def _short(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:20_000] if isinstance(v, str) else v) for k, v in data.items()}


def ingest_token_job(token: str) -> TrainingJob | None:
    """The job a trainer token belongs to, while the token is still valid."""
    job = TrainingJob.objects.filter(ingest_token_hash=hash_token(token)).first()
    if job is None:
        return None
    if job.is_terminal and job.finished_at:
        grace = timedelta(seconds=settings.INGEST_TOKEN_GRACE_S)
        if timezone.now() > job.finished_at + grace:
            return None
    return job


def revoke_ingest_token(job_id: uuid.UUID) -> None:
    # A fresh nonce whose token nobody was given: the old token stops working at once.
    nonce = secrets.token_urlsafe(16)
    TrainingJob.objects.filter(id=job_id).update(
        ingest_token_nonce=nonce, ingest_token_hash=hash_token(derive_ingest_token(job_id, nonce))
    )
