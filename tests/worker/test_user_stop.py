"""The stop button: graceful first; a trainer that does not comply is terminated after the grace."""

from __future__ import annotations

from collections.abc import Callable

from jobs import services
from jobs.models import JobStatus, TrainingJob
from tests.stack import LiveStack
from tests.worker.conftest import LONG_RUN, status_of


def test_a_pod_that_ignores_the_stop_is_terminated_after_the_grace(
    launch: Callable[..., TrainingJob], live_stack: LiveStack, pods_ignore_stop: None
) -> None:
    # given: a running pod whose program never listens
    job = launch("runpod", **LONG_RUN)
    live_stack.wait_for(lambda: status_of(job) == JobStatus.RUNNING, 60, "running")
    # when
    services.stop_job_for_user(job)
    # then: stopping now, stopped (forced) once the grace has passed
    assert status_of(job) == JobStatus.STOPPING
    live_stack.wait_for(lambda: status_of(job) == JobStatus.STOPPED, 60, "the forced stop")
    job.refresh_from_db()
    assert job.pod_terminated_at is not None
    assert job.events.filter(message="forced stop: the pod was terminated").exists()
    pods = live_stack.runpod.pods
    assert job.provider_ref not in pods or pods[job.provider_ref].status == "TERMINATED"
