"""Saved training configs, and the defaults a user starts a new one from."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User

from jobs.models import (
    Dataset,
    TrainingConfig,
    UserPreferences,
)
from jobs.services.access import get_dataset_for_user

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
