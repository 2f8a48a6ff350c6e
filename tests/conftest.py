"""Shared fixtures: an owner, an outsider, API clients, and real objects made through services."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from jobs import services
from jobs.models import Dataset, TrainingConfig, TrainingJob
from jobs.training_config import validate_config


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user("owner", password="owner-pass-123")


@pytest.fixture
def outsider(db: None) -> User:
    return User.objects.create_user("outsider", password="outsider-pass-123")


@pytest.fixture
def api(owner: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def outsider_api(outsider: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(outsider)
    return client


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


INSTRUCTION_ROWS = [
    {"instruction": f"Add {i} and {i}", "input": "", "output": str(2 * i)} for i in range(20)
]
PREFERENCE_ROWS = [
    {"prompt": f"Say {i}", "chosen": f"{i}", "rejected": f"not {i}"} for i in range(20)
]


@pytest.fixture
def make_dataset(owner: User) -> Callable[..., Dataset]:
    def make(
        rows: list[dict[str, Any]] | None = None, name: str = "arith", user: User | None = None
    ) -> Dataset:
        content = jsonl(INSTRUCTION_ROWS if rows is None else rows)
        upload = SimpleUploadedFile(f"{name}.jsonl", content, "application/jsonl")
        return services.create_dataset(user or owner, upload, name)

    return make


def config_data(dataset: Dataset | None = None, **training: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny-sft",
        "model": {"name": "tuneboard/tiny-llama"},
        "data": {"dataset_id": str(dataset.id) if dataset else None},
        "training": {"max_steps": 10, **training},
    }
    return validate_config(data, require_dataset=dataset is not None).as_dict()


@pytest.fixture
def make_config(owner: User, make_dataset: Callable[..., Dataset]) -> Callable[..., TrainingConfig]:
    def make(
        dataset: Dataset | None = None, user: User | None = None, **training: Any
    ) -> TrainingConfig:
        dataset = dataset or make_dataset(user=user)
        return services.save_config(user or owner, config_data(dataset, **training))

    return make


@pytest.fixture
def make_job(
    owner: User, make_config: Callable[..., TrainingConfig]
) -> Callable[..., tuple[TrainingJob, str]]:
    """A queued job and its ingest token. The launch task is sent only after commit."""

    def make(
        user: User | None = None, budget: str = "10", provider: str = "local"
    ) -> tuple[TrainingJob, str]:
        config = make_config(user=user)
        return services.launch_job(
            user or owner,
            config,
            services.LaunchRequest(provider=provider, gpu_types=[], budget=Decimal(budget)),
        )

    return make


# The live stack (real web, worker and beat processes) for end-to-end tests.
from tests.stack import live_stack, tiny_model_dir  # noqa: E402, F401
