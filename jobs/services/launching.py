"""Launching: freeze a config into a queued job and hand it to the worker."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction

from jobs.models import (
    JobEvent,
    TrainingConfig,
    TrainingJob,
    derive_ingest_token,
    hash_token,
)
from jobs.queue import enqueue
from jobs.services.timeline import _publish, _record


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
