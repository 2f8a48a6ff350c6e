"""Whatever fails on the way, exactly one pod runs, and none is left billing."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import User

from jobs.models import JobStatus, TrainingJob
from providers.base import LaunchSpec, pod_name
from providers.models import ProviderCredential
from providers.runpod import RunPodProvider
from tests.stack import LiveStack
from tests.worker.conftest import LONG_RUN, status_of, terminal


def creates_for(live_stack: LiveStack, job: TrainingJob) -> int:
    return sum(
        1
        for r in live_stack.runpod.requests
        if r.method == "POST"
        and r.path == "/v2/pods"
        and r.body.get("name") == pod_name(str(job.id))
    )


def pods_named(live_stack: LiveStack, job: TrainingJob) -> int:
    return sum(1 for pod in live_stack.runpod.pods.values() if pod.name == pod_name(str(job.id)))


def test_a_lost_create_response_makes_no_second_pod(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    # given: the fake creates the pod, then answers 500
    live_stack.runpod.lose_next_create(1, "500")
    # when
    job = launch("runpod")
    live_stack.wait_for(lambda: status_of(job) == JobStatus.SUCCEEDED, 150, "the run")
    # then
    assert creates_for(live_stack, job) == 1
    assert pods_named(live_stack, job) <= 1


def test_a_rate_limit_storm_is_ridden_out(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    live_stack.runpod.rate_limit_storm(3, retry_after=1)
    job = launch("runpod", **LONG_RUN)
    live_stack.wait_for(lambda: status_of(job) == JobStatus.RUNNING, 90, "the launch through 429s")
    assert creates_for(live_stack, job) == 1
    _stop(live_stack, job)


def test_a_worker_killed_during_launch_leaves_exactly_one_pod(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    # given: the fake does the work but answers slowly, so the worker dies mid-launch
    live_stack.runpod.slow_answers(2, seconds=8)
    job = launch("runpod", **LONG_RUN)
    live_stack.wait_for(lambda: pods_named(live_stack, job) == 1, 30, "the pod's creation")
    # when
    live_stack.kill("worker")
    live_stack.start("worker")
    # then: the redelivered launch finds the pod by name
    live_stack.wait_for(lambda: status_of(job) == JobStatus.RUNNING, 120, "the redelivered launch")
    assert pods_named(live_stack, job) == 1
    _stop(live_stack, job)


def test_the_reconciler_terminates_a_pod_no_job_claims(
    transactional_db: None, live_stack: LiveStack
) -> None:
    # given: a pod named like ours, for a job that does not exist
    owner = User.objects.create_user("orphan-owner")
    credential = ProviderCredential(owner=owner, provider="runpod")
    credential.set_secret(live_stack.runpod.api_key)
    credential.save()
    client = RunPodProvider(live_stack.runpod.api_key, base_url=live_stack.runpod.url)
    orphan_id = str(uuid.uuid4())
    spec = LaunchSpec(job_id=orphan_id, name=pod_name(orphan_id), gpu_types=["NVIDIA RTX A5000"])
    ref = client.launch(spec).ref
    # then
    live_stack.wait_for(
        lambda: (
            ref not in live_stack.runpod.pods or live_stack.runpod.pods[ref].status == "TERMINATED"
        ),
        30,
        "the reconciler",
    )


def test_a_pod_that_vanishes_fails_its_job_with_the_reason(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    job = launch("runpod", **LONG_RUN)
    live_stack.wait_for(lambda: status_of(job) == JobStatus.RUNNING, 90, "running")
    job.refresh_from_db()
    RunPodProvider(live_stack.runpod.api_key, base_url=live_stack.runpod.url).terminate(
        job.provider_ref
    )
    live_stack.wait_for(lambda: status_of(job) == JobStatus.FAILED, 30, "the failure")
    job.refresh_from_db()
    assert "vanished" in job.error


def test_a_killed_local_trainer_fails_its_job_instead_of_hanging(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    # given
    job = launch("local", **LONG_RUN)
    live_stack.wait_for(
        lambda: status_of(job) == JobStatus.RUNNING and job.step > 0, 90, "training"
    )
    state = settings.VAR_DIR / "local-pods" / f"{pod_name(str(job.id))}.json"
    # when
    os.killpg(json.loads(state.read_text())["pgid"], signal.SIGKILL)
    # then
    live_stack.wait_for(lambda: terminal(job), 40, "the failure")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "without a final report" in job.error


def _stop(live_stack: LiveStack, job: TrainingJob) -> None:
    """End a test's long run through the real stop path, so no pod outlives the test."""
    from jobs import services

    services.stop_job_for_user(job)
    live_stack.wait_for(lambda: terminal(job), 90, "the stop")
