"""Launch to finish with a real Celery worker on real Redis, the fake RunPod and the real trainer."""

from __future__ import annotations

from collections.abc import Callable

from jobs.models import JobStatus, MetricPoint, Prediction, TrainingJob
from providers.base import NotFound
from providers.local import LocalProvider
from tests.stack import LiveStack
from tests.worker.conftest import status_of
from worker.services import provider_for


def test_a_local_run_goes_from_queued_to_succeeded(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    # given
    job = launch("local")
    # then: it passes through running and finishes with its metrics stored
    live_stack.wait_for(lambda: status_of(job) != JobStatus.QUEUED, 30, "the launch")
    live_stack.wait_for(
        lambda: status_of(job) in (JobStatus.SUCCEEDED, JobStatus.FAILED), 180, "the end"
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    timeline = [e.message for e in job.events.all()]
    assert any(m.startswith("pod ") for m in timeline), timeline
    assert any("training started" in m for m in timeline), timeline
    losses = list(
        MetricPoint.objects.filter(job=job, name="loss")
        .order_by("step")
        .values_list("value", flat=True)
    )
    assert len(losses) >= 10
    assert Prediction.objects.filter(job=job).exists()
    assert job.adapter_path and job.trained_model.adapter_location
    # and nothing is left running
    live_stack.wait_for(lambda: _pod_gone(job), 30, "the pod's end")


def test_a_runpod_run_succeeds_and_its_pod_is_terminated(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    # given
    job = launch("runpod")
    # when
    live_stack.wait_for(
        lambda: status_of(job) in (JobStatus.SUCCEEDED, JobStatus.FAILED), 180, "the end"
    )
    # then
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.gpu_type == "NVIDIA GeForce RTX 4090"
    assert job.cost_per_hour > 0
    assert MetricPoint.objects.filter(job=job, name="loss").count() >= 10
    live_stack.wait_for(lambda: _pod_gone(job), 30, "the pod's termination")
    creates = [
        r.body for r in live_stack.runpod.requests
        if r.method == "POST" and r.path == "/v2/pods" and r.body["name"].endswith(str(job.id))
    ]  # fmt: skip
    assert len(creates) == 1
    pod_env = creates[0]["env"]
    assert live_stack.runpod.api_key not in pod_env.values()
    assert set(pod_env) >= {"TUNEBOARD_URL", "TUNEBOARD_JOB_ID", "TUNEBOARD_INGEST_TOKEN"}


def _pod_gone(job: TrainingJob) -> bool:
    job.refresh_from_db()
    if job.pod_terminated_at is None:
        return False
    provider = provider_for(job)
    try:
        status = provider.status(job.provider_ref)
    except NotFound:
        return True
    if isinstance(provider, LocalProvider):
        return status.state in ("exited", "terminated", "error")
    return status.state == "terminated"
