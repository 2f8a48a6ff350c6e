from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from jobs import services
from jobs.models import TrainingJob
from providers.models import ProviderCredential
from tests.conftest import INSTRUCTION_ROWS
from tests.stack import OFFLINE_ENV, LiveStack, tiny_training_config

pytestmark = pytest.mark.slow


@pytest.fixture
def launch(
    transactional_db: None,
    live_stack: LiveStack,
    tiny_model_dir: Path,
    make_dataset: Callable[..., Any],
) -> Callable[..., TrainingJob]:
    """Launch a tiny-model job through the real service; the live worker picks it up."""

    def go(
        provider: str = "local",
        budget: str = "5",
        gpu_types: list[str] | None = None,
        predictions: dict[str, Any] | None = None,
        **training: Any,
    ) -> TrainingJob:
        owner, _ = User.objects.get_or_create(username="runner")
        if provider == "runpod":
            credential = ProviderCredential(owner=owner, provider="runpod")
            credential.set_secret(live_stack.runpod.api_key)
            ProviderCredential.objects.filter(owner=owner, provider="runpod").delete()
            credential.save()
        dataset = make_dataset(rows=INSTRUCTION_ROWS * 3, user=owner)
        config = tiny_training_config(owner, dataset, tiny_model_dir, predictions, **training)
        job, _ = services.launch_job(
            owner,
            config,
            services.LaunchRequest(
                provider=provider,
                gpu_types=gpu_types
                or (["NVIDIA GeForce RTX 4090"] if provider == "runpod" else []),
                budget=Decimal(budget),
                alert_threshold=Decimal("0.5"),
                environment_variables=dict(OFFLINE_ENV),
            ),
        )
        return job

    return go


def status_of(job: TrainingJob) -> str:
    job.refresh_from_db()
    return job.status


# Long enough to still be training when a test steps in; predictions rarely, to stay fast.
LONG_RUN = {"max_steps": 5000, "predictions": {"enabled": False}}


def terminal(job: TrainingJob) -> bool:
    return status_of(job) in ("succeeded", "failed", "stopped", "budget_exceeded")


@pytest.fixture
def pods_ignore_stop(live_stack: LiveStack) -> Iterator[None]:
    """Pods whose program never reports and never stops: only a terminate ends them."""
    original = live_stack.runpod.runner.command_override
    live_stack.runpod.runner.command_override = lambda pod: ["sleep", "600"]
    yield
    live_stack.runpod.runner.command_override = original
