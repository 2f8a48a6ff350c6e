"""The job state machine, ingest and money rules: the only code that writes a job's status.

Every transition is one function that claims the row with a conditional UPDATE (zero rows means
another worker got there first, or the job is already past that state), writes a ``JobEvent``
and publishes the job's live update after commit (DESIGN §3).
"""

from __future__ import annotations

import logging
import math
import secrets
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NamedTuple

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from jobs.dataset_files import (
    DatasetFileError,
    check_dataset_size,
    file_type_for,
    inspect_dataset,
)
from jobs.live import LiveUpdate, publish_job_event
from jobs.models import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    Dataset,
    JobEvent,
    JobStatus,
    MetricPoint,
    Prediction,
    TrainedModel,
    TrainingConfig,
    TrainingJob,
    UserPreferences,
    derive_ingest_token,
    hash_token,
)
from jobs.queue import enqueue

logger = logging.getLogger(__name__)


class LaunchRefused(Exception):
    """The job cannot be launched as asked; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field


# --- launching -------------------------------------------------------------------------------


@dataclass
class LaunchRequest:
    provider: str
    gpu_types: list[str]
    budget: Decimal
    gpu_count: int = 1
    alert_threshold: Decimal = Decimal("0.8")
    volume_size_gb: int = 20
    environment_variables: dict[str, str] = field(default_factory=dict)


def launch_job(
    owner: User, config: TrainingConfig, request: LaunchRequest
) -> tuple[TrainingJob, str]:
    """Freeze the config into a new queued job and hand it to the worker after commit.

    Returns the job and its ingest token (shown only here; stored hashed).
    """
    from jobs.training_config import check_config_against_dataset

    dataset = config.dataset
    if dataset is None:
        raise LaunchRefused("the config has no dataset", field="training_config_id")
    if not dataset.is_launchable:
        raise LaunchRefused(
            f"dataset {dataset.name!r} has {dataset.error_count} error(s); fix and re-upload it",
            field="training_config_id",
        )
    problems = check_config_against_dataset(config.config, dataset.format)
    if problems:
        raise LaunchRefused("; ".join(problems), field="training_config_id")
    if request.budget <= 0:
        raise LaunchRefused("the budget must be more than 0", field="budget_limit")
    job_id = uuid.uuid4()
    nonce = secrets.token_urlsafe(16)
    token = derive_ingest_token(job_id, nonce)
    with transaction.atomic():
        job = TrainingJob.objects.create(
            id=job_id,
            ingest_token_nonce=nonce,
            owner=owner,
            config=config,
            config_snapshot=config.config,
            dataset=dataset,
            name=config.name,
            provider=request.provider,
            gpu_type=request.gpu_types[0] if request.gpu_types else "",
            allowed_gpu_types=request.gpu_types,
            gpu_count=request.gpu_count,
            volume_size_gb=request.volume_size_gb,
            environment_variables=request.environment_variables,
            budget=request.budget,
            alert_threshold=request.alert_threshold,
            ingest_token_hash=hash_token(token),
        )
        _record(job, JobEvent.Kind.TRANSITION, f"queued on {request.provider}")
        _publish(job)
        transaction.on_commit(lambda: enqueue("launch_job", str(job.id)))
    return job, token


def ingest_token_for(job: TrainingJob) -> str:
    """The job's ingest token, for the pod's environment (never stored in clear)."""
    return derive_ingest_token(job.id, job.ingest_token_nonce)


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


# --- access (one helper per object type; an outsider's id is simply "not found") -------------


def get_job_for_user(user: User, job_id: uuid.UUID | str) -> TrainingJob | None:
    return TrainingJob.objects.filter(id=job_id, owner=user).first()


def get_config_for_user(user: User, config_id: uuid.UUID | str) -> TrainingConfig | None:
    return TrainingConfig.objects.filter(id=config_id, owner=user).first()


def get_dataset_for_user(user: User, dataset_id: uuid.UUID | str) -> Dataset | None:
    return Dataset.objects.filter(id=dataset_id, owner=user).first()


# --- configs ---------------------------------------------------------------------------------


class ConfigRefused(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def save_config(
    owner: User, data: dict[str, Any], config: TrainingConfig | None = None
) -> TrainingConfig:
    """Store a validated config (``data`` is already canonical) linked to the owner's dataset."""
    dataset = _config_dataset(owner, data)
    if config is None:
        config = TrainingConfig(owner=owner)
    config.name = data["name"]
    config.config = data
    config.dataset = dataset
    config.save()
    return config


def _config_dataset(owner: User, data: dict[str, Any]) -> Dataset | None:
    from jobs.training_config import check_config_against_dataset

    source = data["data"].get("dataset_id") or data["data"].get("train_path")
    if not source:
        return None
    dataset = _find_dataset(owner, str(source))
    if dataset is None:
        field = "data.dataset_id" if data["data"].get("dataset_id") else "data.train_path"
        raise ConfigRefused(
            {field: [f"no dataset {source!r} of yours: upload it with POST /api/datasets"]}
        )
    problems = check_config_against_dataset(data, dataset.format)
    if problems:
        raise ConfigRefused({"training.method": problems})
    data["data"]["dataset_id"] = str(dataset.id)
    return dataset


def _find_dataset(owner: User, source: str) -> Dataset | None:
    try:
        return get_dataset_for_user(owner, uuid.UUID(source))
    except ValueError:
        # The reference API names datasets by path: match an upload's name or file name.
        owned = Dataset.objects.filter(owner=owner)
        return owned.filter(name=source).first() or owned.filter(original_filename=source).first()


# --- stopping and cost -----------------------------------------------------------------------


def stop_job_for_user(job: TrainingJob) -> TrainingJob | None:
    """The stop button: graceful now, forced by the worker if the trainer does not comply."""
    stopped = request_stop(job.id, "user", "stop requested by the user")
    if stopped is not None and stopped.status == JobStatus.STOPPING:
        grace = settings.STOP_GRACE_S + 1
        transaction.on_commit(lambda: enqueue("enforce_stop", str(job.id), countdown=grace))
    return stopped


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


# --- datasets --------------------------------------------------------------------------------


class DatasetRefused(Exception):
    """The upload (or deletion) cannot be accepted; the message says why."""


def create_dataset(owner: User, upload: UploadedFile, name: str | None) -> Dataset:
    """Check every row of an upload and store it with its report, or refuse it whole.

    A file with bad rows is stored (so its owner can see each line's error) but can never be
    launched. Files over the size limit or of an unknown type are refused before storing.
    """
    filename = upload.name or "dataset.jsonl"
    try:
        check_dataset_size(upload.size or 0, settings.DATASET_MAX_BYTES)
        file_type_for(filename)
    except DatasetFileError as exc:
        raise DatasetRefused(str(exc)) from exc
    upload.seek(0)
    with tempfile.TemporaryFile() as normalised:
        report = inspect_dataset(upload.file, filename, normalised_out=normalised)  # type: ignore[arg-type]
        dataset = Dataset(
            owner=owner,
            name=(name or Path(filename).stem)[:200],
            original_filename=filename[:255],
            format=report.format or Dataset.Format.UNKNOWN,
            rows=report.rows,
            size_bytes=report.size_bytes,
            sha256=report.sha256,
            stats=asdict(report.stats) if report.stats else {},
            preview=report.preview,
            errors=report.as_dict()["errors"],
            error_count=report.error_count,
        )
        upload.seek(0)
        _store_dataset_files(dataset, upload, normalised if report.ok else None)
    return dataset


def _store_dataset_files(
    dataset: Dataset, upload: UploadedFile, normalised: IO[bytes] | None
) -> None:
    """Files first, then the row; if anything fails, no file is left without its row."""
    suffix = Path(dataset.original_filename).suffix.lower()
    try:
        dataset.file.save(f"{dataset.id}{suffix}", upload, save=False)
        if normalised is not None:
            normalised.seek(0)
            dataset.normalized_file.save(f"{dataset.id}.jsonl", File(normalised), save=False)
        dataset.save()
    except Exception:
        for stored in (dataset.file, dataset.normalized_file):
            if stored:
                stored.delete(save=False)
        raise


def delete_dataset(dataset: Dataset) -> None:
    if dataset.jobs.exists():
        raise DatasetRefused("jobs were trained on this dataset; it is kept for their record")
    files = [f for f in (dataset.file, dataset.normalized_file) if f]
    dataset.delete()
    for stored in files:
        stored.delete(save=False)


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


# --- preferences -----------------------------------------------------------------------------


def get_preferences(user: User) -> UserPreferences:
    preferences, _ = UserPreferences.objects.get_or_create(owner=user)
    return preferences


def save_preferences(
    user: User, default_budget: Decimal, alert_threshold: Decimal
) -> UserPreferences:
    preferences = get_preferences(user)
    preferences.default_budget = default_budget
    preferences.default_alert_threshold = alert_threshold
    preferences.save()
    return preferences
