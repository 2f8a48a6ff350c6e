"""Tuneboard's domain: datasets, configs, jobs and what a job reports.

State lives in exactly one place per fact: a job's status is written only by the transition
functions in ``jobs/services.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models


class Dataset(models.Model):
    class Format(models.TextChoices):
        TEXT = "text", "Plain text"
        CHAT = "chat", "Chat messages"
        INSTRUCTION = "instruction", "Instruction / input / output"
        PREFERENCE = "preference", "Preference (prompt / chosen / rejected)"
        UNKNOWN = "unknown", "Unknown"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets"
    )
    name = models.CharField(max_length=200)
    original_filename = models.CharField(max_length=255)
    # The file exactly as uploaded, and a normalised JSONL copy the trainer downloads.
    file = models.FileField(upload_to="datasets/original/")
    normalized_file = models.FileField(upload_to="datasets/normalized/", blank=True)
    format = models.CharField(max_length=20, choices=Format.choices, default=Format.UNKNOWN)
    rows = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    stats = models.JSONField(default=dict, blank=True)
    preview = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.rows} rows, {self.format})"

    @property
    def is_launchable(self) -> bool:
        return self.error_count == 0 and self.rows > 0 and self.format != self.Format.UNKNOWN


class TrainingConfig(models.Model):
    """A saved, validated config (docs/contracts.md §1). Jobs copy it; edits never reach them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_configs"
    )
    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(
        Dataset, on_delete=models.SET_NULL, null=True, blank=True, related_name="configs"
    )
    config = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"
    BUDGET_EXCEEDED = "budget_exceeded", "Budget exceeded"


TERMINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.BUDGET_EXCEEDED}
)
LIVE_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.PROVISIONING, JobStatus.RUNNING, JobStatus.STOPPING}
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derive_ingest_token(job_id: uuid.UUID | str, nonce: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"tuneboard-ingest:{job_id}:{nonce}".encode(), "sha256"
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class TrainingJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_jobs"
    )
    config = models.ForeignKey(
        TrainingConfig, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    # The config as it was at launch (docs/contracts.md §1), the only config the trainer sees.
    config_snapshot = models.JSONField()
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="jobs")
    name = models.CharField(max_length=200)

    provider = models.CharField(max_length=20)
    gpu_type = models.CharField(max_length=100, blank=True)
    # The GPU types the user accepts, in order: launch falls through them on "no capacity".
    allowed_gpu_types = models.JSONField(default=list, blank=True)
    gpu_count = models.PositiveSmallIntegerField(default=1)
    volume_size_gb = models.PositiveIntegerField(default=20)
    # Extra, non-secret variables for the pod, as the reference deploy API accepts them.
    environment_variables = models.JSONField(default=dict, blank=True)
    provider_ref = models.CharField(max_length=200, blank=True)
    pod_url = models.CharField(max_length=500, blank=True)

    status = models.CharField(
        max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)

    cost_per_hour = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    cost_so_far = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    budget = models.DecimalField(max_digits=10, decimal_places=2)
    # Fraction of the budget at which the owner is alerted (0.8 = at 80 %).
    alert_threshold = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.8"))
    alert_sent_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)

    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    epoch = models.FloatField(default=0.0)
    final_loss = models.FloatField(null=True, blank=True)
    adapter_path = models.CharField(max_length=500, blank=True)
    hub_repo = models.CharField(max_length=200, blank=True)

    # The token is HMAC(SECRET_KEY, job id + nonce): a retried launch can hand the same token
    # to the pod it finds, while the database holds only its hash. A new nonce revokes it.
    ingest_token_nonce = models.CharField(max_length=64)
    ingest_token_hash = models.CharField(max_length=64, unique=True)
    # Highest event seq stored: ingest idempotency is "store only seq > last_seq".
    last_seq = models.PositiveBigIntegerField(default=0)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Tasks count their own redeliveries (acks_late): a poison launch stops after a few.
    launch_attempts = models.PositiveSmallIntegerField(default=0)
    # A worker that claimed the launch holds it until then; a crashed one's claim expires.
    launch_lease_until = models.DateTimeField(null=True, blank=True)
    pod_terminated_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def progress_percentage(self) -> float:
        if not self.total_steps:
            return 100.0 if self.status == JobStatus.SUCCEEDED else 0.0
        return round(min(100.0, 100.0 * self.step / self.total_steps), 1)


class MetricPoint(models.Model):
    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="metric_points")
    seq = models.PositiveBigIntegerField()
    step = models.PositiveIntegerField()
    epoch = models.FloatField(null=True)
    name = models.CharField(max_length=64)
    value = models.FloatField()
    ts = models.DateTimeField()

    class Meta:
        # Serves the series endpoint: one metric of one job by step.
        indexes = [models.Index(fields=["job", "name", "step"])]

    def __str__(self) -> str:
        return f"{self.name}@{self.step}={self.value:g}"


class Prediction(models.Model):
    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="predictions")
    seq = models.PositiveBigIntegerField()
    step = models.PositiveIntegerField()
    epoch = models.FloatField(null=True)
    sample_id = models.CharField(max_length=64)
    prompt = models.TextField()
    generated = models.TextField()
    expected = models.TextField(blank=True)
    bleu = models.FloatField(null=True)
    rouge1 = models.FloatField(null=True)
    rouge2 = models.FloatField(null=True)
    rouge_l = models.FloatField(null=True)
    ts = models.DateTimeField()

    class Meta:
        ordering = ["step", "sample_id"]
        indexes = [models.Index(fields=["job", "step"]), models.Index(fields=["job", "sample_id"])]

    def __str__(self) -> str:
        return f"{self.sample_id}@{self.step}"


class JobEvent(models.Model):
    """The job's timeline: transitions, alerts, trainer phases, errors."""

    class Kind(models.TextChoices):
        TRANSITION = "transition", "Transition"
        ALERT = "alert", "Alert"
        TRAINER = "trainer", "Trainer"
        LOG = "log", "Log"
        ERROR = "error", "Error"
        PROVIDER = "provider", "Provider"

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class TrainedModel(models.Model):
    """Registry entry for a finished run's adapter."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trained_models"
    )
    job = models.OneToOneField(TrainingJob, on_delete=models.CASCADE, related_name="trained_model")
    base_model = models.CharField(max_length=200)
    adapter_location = models.CharField(max_length=500)
    hub_repo = models.CharField(max_length=200, blank=True)
    final_loss = models.FloatField(null=True)
    cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    training_seconds = models.FloatField(default=0.0)
    dataset_rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.base_model} → {self.adapter_location}"


class UserPreferences(models.Model):
    """What the new fine-tune form starts from."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tuneboard_preferences"
    )
    default_budget = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("10"))
    default_alert_threshold = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.8")
    )

    def __str__(self) -> str:
        return f"preferences of {self.owner}"
