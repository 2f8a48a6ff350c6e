"""Driving providers for jobs: launch, poll, budget watch, forced stop, reconcile, stuck jobs.

Tasks (``worker/tasks.py``) are thin; the decisions live here and in ``jobs/services.py``, which
alone writes a job's status. Provider errors are caught here, once, and recorded on the job's
timeline; transient ones are re-raised for the task to retry.
"""

from __future__ import annotations

import logging
import shlex
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from jobs import services
from jobs.json_types import is_uuid
from jobs.models import LIVE_STATUSES, JobEvent, JobStatus, TrainingJob
from providers.base import (
    NAME_PREFIX,
    Launched,
    LaunchSpec,
    NotFound,
    PodStatus,
    Provider,
    ProviderError,
    pod_name,
)
from providers.config import provider_settings
from providers.models import ProviderCredential
from providers.registry import get_provider

logger = logging.getLogger(__name__)

# A worker that claimed a launch holds it for settings.LAUNCH_LEASE_S; a crashed worker's claim
# then expires and the redelivered message launches again (finding the pod by name, never
# creating two). Every claim is counted on the job — the task's retries (worker/tasks.py,
# MAX_RETRIES = 6) and redeliveries after a crash — and capped here.
MAX_LAUNCH_ATTEMPTS = 10


class LaunchBusy(Exception):
    """Another worker holds the launch lease; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"launch leased by another worker for {retry_after:.0f}s")
        self.retry_after = retry_after


def provider_for(job: TrainingJob) -> Provider:
    return get_provider(job.provider, _credentials(job.owner_id, job.provider), provider_settings())


def _credentials(owner_id: int, provider: str) -> dict[str, str]:
    credential = ProviderCredential.objects.filter(owner_id=owner_id, provider=provider).first()
    return {"api_key": credential.get_secret()} if credential else {}


# --- launch ----------------------------------------------------------------------------------


def launch_pod(job_id: str) -> None:
    """Start the job's pod. Safe to run twice, concurrently, or after a crash mid-launch."""
    job = _claim_launch(job_id)
    if job is None:
        return
    if job.launch_attempts > MAX_LAUNCH_ATTEMPTS:
        last = job.events.filter(kind=JobEvent.Kind.PROVIDER).order_by("-id").first()
        cause = f"; last error: {last.message}" if last else ""
        services.fail_job(job.id, f"the launch was tried {MAX_LAUNCH_ATTEMPTS} times{cause}")
        return
    try:
        launched = provider_for(job).launch(launch_spec(job))
    except ProviderError as exc:
        _release_lease(job)
        if exc.permanent:
            services.fail_job(job.id, f"{job.provider}: {exc.message}")
            return
        services.record_job_event(job.id, JobEvent.Kind.PROVIDER, f"launch will retry: {exc}")
        raise
    _record_launched(job, launched)


def _claim_launch(job_id: str) -> TrainingJob | None:
    now = timezone.now()
    claimed = TrainingJob.objects.filter(
        Q(launch_lease_until__isnull=True) | Q(launch_lease_until__lt=now),
        id=job_id,
        status=JobStatus.QUEUED,
    ).update(
        launch_lease_until=now + timedelta(seconds=settings.LAUNCH_LEASE_S),
        launch_attempts=F("launch_attempts") + 1,
    )
    job = TrainingJob.objects.filter(id=job_id).first()
    if claimed:
        return job
    if job is not None and job.status == JobStatus.QUEUED and job.launch_lease_until:
        raise LaunchBusy((job.launch_lease_until - now).total_seconds())
    return None  # gone, launched already, or stopped before it started


def _release_lease(job: TrainingJob) -> None:
    TrainingJob.objects.filter(id=job.id).update(launch_lease_until=None)


def _record_launched(job: TrainingJob, launched: Launched) -> None:
    price = Decimal(str(launched.price_per_hour or 0))
    moved = services.mark_provisioning(job.id, launched.ref, launched.gpu_type, price, launched.url)
    if moved is None:
        # Stopped (or failed) while we were creating the pod: it must not run unowned.
        TrainingJob.objects.filter(id=job.id).update(provider_ref=launched.ref)
        terminate_pod(TrainingJob.objects.get(id=job.id), "the job ended while its pod was created")


def launch_spec(job: TrainingJob) -> LaunchSpec:
    env = dict(job.environment_variables)
    env.update(
        TUNEBOARD_URL=settings.TUNEBOARD_PUBLIC_URL,
        TUNEBOARD_JOB_ID=str(job.id),
        TUNEBOARD_INGEST_TOKEN=services.ingest_token_for(job),
    )
    hf_token = _credentials(job.owner_id, ProviderCredential.Kind.HUGGINGFACE).get("api_key")
    if hf_token:
        env["HF_TOKEN"] = hf_token
    return LaunchSpec(
        job_id=str(job.id),
        name=pod_name(str(job.id)),
        gpu_types=list(job.allowed_gpu_types) or ([job.gpu_type] if job.gpu_type else ["cpu"]),
        gpu_count=job.gpu_count,
        env=env,
        start_command=start_command(job),
        volume_gb=job.volume_size_gb,
    )


def start_command(job: TrainingJob) -> str:
    if job.provider == "local":
        output = settings.VAR_DIR / "runs" / str(job.id)
        output.mkdir(parents=True, exist_ok=True)
        root = shlex.quote(str(Path(__file__).resolve().parents[1]))
        return f"cd {root} && exec {shlex.quote(sys.executable)} -m trainer --output-dir {output}"
    # A cloud pod fetches the trainer from us with its job token, installs its pinned
    # requirements and runs it; the adapter lands on the pod's volume.
    return (
        'set -e; cd /workspace; curl -fsS -H "Authorization: Bearer $TUNEBOARD_INGEST_TOKEN" '
        '"$TUNEBOARD_URL/api/ingest/v1/trainer" | tar xz; '
        "pip install -q -r trainer/requirements.txt; "
        "exec python -m trainer --output-dir /workspace/tuneboard-output"
    )


# --- poll and budget watch -------------------------------------------------------------------


def pods_to_poll() -> list[str]:
    """Live jobs with a pod, and ended jobs whose pod has not been confirmed terminated."""
    jobs = TrainingJob.objects.exclude(provider_ref="").filter(
        Q(status__in=LIVE_STATUSES) | Q(pod_terminated_at__isnull=True)
    )
    return [str(job_id) for job_id in jobs.values_list("id", flat=True)]


def poll_pod(job_id: str) -> None:
    job = TrainingJob.objects.filter(id=job_id).exclude(provider_ref="").first()
    if job is None:
        return
    if job.is_terminal:
        terminate_pod(job, f"the job ended ({job.status})")
        return
    try:
        status = provider_for(job).status(job.provider_ref)
    except NotFound:
        _mark_pod_gone(job)
        services.fail_job(job.id, f"the pod {job.provider_ref} vanished at {job.provider}")
        return
    job = _record_cost(job, status)
    _follow_pod_state(job, status)
    watch_budget(job)
    enforce_stop(str(job.id))


def _record_cost(job: TrainingJob, status: PodStatus) -> TrainingJob:
    # A stopped pod reports $0/h; the job keeps the rate it ran at.
    running = status.state == "running" and status.price_per_hour
    price = Decimal(str(status.price_per_hour)) if running else None
    if status.billed_cost is not None:
        cost = Decimal(str(status.billed_cost))
    else:
        hourly = price if price is not None else job.cost_per_hour
        cost = hourly * Decimal(str(status.uptime_s or 0)) / Decimal(3600)
    return services.update_cost(job.id, cost.quantize(Decimal("0.0001")), price) or job


def _follow_pod_state(job: TrainingJob, status: PodStatus) -> None:
    if status.state == "running" and job.status == JobStatus.PROVISIONING:
        services.mark_running(job.id, "the pod is running")
    if status.state in ("exited", "error", "terminated") and job.status in LIVE_STATUSES:
        heard = job.last_heartbeat_at or job.started_at or job.created_at
        if timezone.now() - heard > timedelta(seconds=settings.EXIT_GRACE_S):
            code = f" with exit code {status.exit_code}" if status.exit_code is not None else ""
            detail = f": {status.message}" if status.message else ""
            services.fail_job(job.id, f"the pod stopped{code} without a final report{detail}")
            terminate_pod(TrainingJob.objects.get(id=job.id), "the pod stopped")


def watch_budget(job: TrainingJob) -> None:
    verdict = services.judge_budget(job)
    if verdict.alert:
        services.mark_alert_sent(job.id)
    if verdict.graceful_stop:
        services.request_stop(
            job.id,
            "budget",
            f"the budget is nearly spent (${job.cost_so_far:.2f} of ${job.budget})",
        )
    if verdict.terminate:
        terminate_pod(job, "the budget is spent")
        job.refresh_from_db()
        services.finish_job(
            job.id,
            JobStatus.BUDGET_EXCEEDED,
            f"budget reached: ${job.cost_so_far:.4f} of ${job.budget}, "
            f"${services.overspend(job):.4f} over; the pod was terminated",
            kind=JobEvent.Kind.ALERT,
            data={"overspend": str(services.overspend(job))},
        )


def enforce_stop(job_id: str) -> None:
    """A stop the trainer did not honour in time becomes a terminate."""
    job = TrainingJob.objects.filter(id=job_id, status=JobStatus.STOPPING).first()
    if job is None or job.stop_requested_at is None:
        return
    if timezone.now() - job.stop_requested_at < timedelta(seconds=settings.STOP_GRACE_S):
        return
    terminate_pod(job, "the trainer did not stop in time")
    final = JobStatus.BUDGET_EXCEEDED if job.stop_reason == "budget" else JobStatus.STOPPED
    services.finish_job(job.id, final, "forced stop: the pod was terminated")


def terminate_pod(job: TrainingJob, why: str) -> None:
    if not job.provider_ref or job.pod_terminated_at:
        return
    provider_for(job).terminate(job.provider_ref)
    _mark_pod_gone(job)
    services.record_job_event(job.id, JobEvent.Kind.PROVIDER, f"pod terminated: {why}")


def _mark_pod_gone(job: TrainingJob) -> None:
    TrainingJob.objects.filter(id=job.id, pod_terminated_at__isnull=True).update(
        pod_terminated_at=timezone.now()
    )


# --- reconcile and stuck jobs ----------------------------------------------------------------


def reconcile_provider(provider: Provider) -> list[str]:
    """Terminate every pod of ours that no live job claims; returns their refs."""
    orphans = []
    for pod in provider.list_ours():
        job_id = pod.name.removeprefix(NAME_PREFIX)
        owned = (
            is_uuid(job_id)
            and TrainingJob.objects.filter(id=job_id, status__in=LIVE_STATUSES).exists()
        )
        if not owned and pod.state not in ("terminated",):
            provider.terminate(pod.ref)
            orphans.append(pod.ref)
            logger.warning("reconcile: terminated orphan pod %s (%s)", pod.ref, pod.name)
    return orphans


def providers_to_reconcile() -> list[Provider]:
    """The local provider, and one client per stored cloud credential."""
    found: list[Provider] = [get_provider("local", {}, provider_settings())]
    for credential in ProviderCredential.objects.filter(provider=ProviderCredential.Kind.RUNPOD):
        try:
            found.append(
                get_provider(
                    credential.provider, {"api_key": credential.get_secret()}, provider_settings()
                )
            )
        except ProviderError:
            logger.exception("reconcile: cannot build a %s client", credential.provider)
    return found


def fail_stuck_jobs() -> list[str]:
    """Running jobs silent for too long, and launches that never produced a pod."""
    now = timezone.now()
    silent = now - timedelta(seconds=settings.STUCK_AFTER_S)
    stuck = TrainingJob.objects.filter(
        Q(status=JobStatus.RUNNING, last_heartbeat_at__lt=silent)
        | Q(
            status=JobStatus.PROVISIONING,
            started_at__lt=now - timedelta(seconds=settings.PROVISION_TIMEOUT_S),
        )
        | Q(
            status=JobStatus.QUEUED,
            created_at__lt=now - timedelta(seconds=settings.PROVISION_TIMEOUT_S),
        )
    )
    failed = []
    for job in stuck:
        minutes = settings.STUCK_AFTER_S // 60
        if services.fail_job(job.id, f"no word from the trainer for {minutes} minutes"):
            failed.append(str(job.id))
            try:
                terminate_pod(job, "the job was stuck")
            except ProviderError:
                logger.exception("could not terminate the pod of stuck job %s", job.id)
    return failed
