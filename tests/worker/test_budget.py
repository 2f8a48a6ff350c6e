"""The budget really stops: alert, graceful stop with the adapter saved, hard terminate."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from jobs.models import JobEvent, JobStatus, TrainingJob
from tests.stack import LiveStack
from tests.worker.conftest import LONG_RUN, status_of, terminal

# $36/h on the fake: a cent a second, so a 30-cent budget lasts about 30 s.
FAST_GPU = ["NVIDIA RTX A4000"]


def test_a_small_budget_alerts_then_stops_gracefully_keeping_the_adapter(
    launch: Callable[..., TrainingJob], live_stack: LiveStack
) -> None:
    # given
    job = launch("runpod", budget="0.30", gpu_types=FAST_GPU, **LONG_RUN)
    # when
    live_stack.wait_for(lambda: terminal(job), 150, "the budget stop")
    # then
    job.refresh_from_db()
    assert job.status == JobStatus.BUDGET_EXCEEDED, (job.status, job.error)
    kinds = list(job.events.values_list("kind", "message"))
    assert any(k == JobEvent.Kind.ALERT and "of the $0.30 budget" in m for k, m in kinds), kinds
    # the graceful stop: the server's (budget nearly spent) or the pod's own deadline
    assert any("nearly spent" in m or "stopped (deadline)" in m for _, m in kinds), kinds
    assert job.adapter_path, "the graceful stop saves the adapter"
    assert any("over" in m for _, m in kinds), "the overspend figure is on the timeline"
    live_stack.wait_for(lambda: _terminated(live_stack, job), 20, "the pod's termination")
    assert job.cost_so_far <= job.budget + Decimal("0.05")


def test_a_pod_that_ignores_the_stop_is_terminated_at_the_budget(
    launch: Callable[..., TrainingJob], live_stack: LiveStack, pods_ignore_stop: None
) -> None:
    job = launch("runpod", budget="0.08", gpu_types=FAST_GPU, **LONG_RUN)
    live_stack.wait_for(lambda: status_of(job) == JobStatus.BUDGET_EXCEEDED, 90, "the hard stop")
    job.refresh_from_db()
    assert _terminated(live_stack, job)
    message = job.events.filter(message__startswith="budget reached").get().message
    assert "over; the pod was terminated" in message
    # at a cent a second, one poll interval (1 s) past the budget costs about a cent
    assert job.cost_so_far - job.budget < Decimal("0.05"), job.cost_so_far


def _terminated(live_stack: LiveStack, job: TrainingJob) -> bool:
    job.refresh_from_db()
    pods = live_stack.runpod.pods
    return job.pod_terminated_at is not None and (
        job.provider_ref not in pods or pods[job.provider_ref].status == "TERMINATED"
    )
