"""Tasks run in-process (eager) against a fake RunPod of their own; no live stack needed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import JobStatus, TrainingJob
from providers.fakes.runpod import FakeRunPod
from providers.models import ProviderCredential
from worker import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_runpod(settings) -> Iterator[FakeRunPod]:
    server = FakeRunPod(provision_s=0.1, start_s=0.1).start()
    settings.RUNPOD_BASE_URL = server.url
    yield server
    server.stop()


def runpod_job(owner, make_config, fake: FakeRunPod) -> TrainingJob:
    credential = ProviderCredential(owner=owner, provider="runpod")
    credential.set_secret(fake.api_key)
    credential.save()
    request = services.LaunchRequest(
        provider="runpod", gpu_types=["NVIDIA GeForce RTX 4090"], budget=Decimal(5)
    )
    job, _ = services.launch_job(owner, make_config(), request)
    return job


def test_a_rate_limit_that_outlasts_every_retry_fails_the_job_clearly(
    owner, make_config, fake_runpod: FakeRunPod
) -> None:
    # given: every answer is 429 with a Retry-After longer than the client will wait in-line
    job = runpod_job(owner, make_config, fake_runpod)
    fake_runpod.rate_limit_storm(1000, retry_after=120)
    # when: the task and all its retries run (eagerly, countdowns skipped)
    tasks.launch_job.apply(args=[str(job.id)])
    # then
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert (
        "the provider kept failing" in job.error and "429" in job.error
    ) or "rate" in job.error.lower()
    assert fake_runpod.count("POST", "/v2/pods") == 0


def test_no_balance_fails_at_once_with_the_providers_message(
    owner, make_config, fake_runpod: FakeRunPod
) -> None:
    job = runpod_job(owner, make_config, fake_runpod)
    fake_runpod.set_no_balance()
    tasks.launch_job.apply(args=[str(job.id)])
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("runpod:")


def test_a_silent_running_job_is_failed_as_stuck(make_job, settings) -> None:
    # given: a running job whose trainer has not been heard from for longer than the limit
    job, _ = make_job()
    services.mark_running(job.id)
    silent_since = timezone.now() - timedelta(seconds=settings.STUCK_AFTER_S + 60)
    TrainingJob.objects.filter(id=job.id).update(last_heartbeat_at=silent_since)
    fresh, _ = make_job()
    services.mark_running(fresh.id)
    # when
    failed = tasks.fail_stuck_jobs.apply().get()
    # then
    assert failed == [str(job.id)]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "no word from the trainer" in job.error
