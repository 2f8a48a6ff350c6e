"""Access: one helper per object type; another user's id is simply not found."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import User

from jobs.models import (
    Dataset,
    TrainingConfig,
    TrainingJob,
)

# --- access (one helper per object type; an outsider's id is simply "not found") -------------


def get_job_for_user(user: User, job_id: uuid.UUID | str) -> TrainingJob | None:
    return TrainingJob.objects.filter(id=job_id, owner=user).first()


def get_config_for_user(user: User, config_id: uuid.UUID | str) -> TrainingConfig | None:
    return TrainingConfig.objects.filter(id=config_id, owner=user).first()


def get_dataset_for_user(user: User, dataset_id: uuid.UUID | str) -> Dataset | None:
    return Dataset.objects.filter(id=dataset_id, owner=user).first()
