from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from jobs.models import Dataset, JobEvent, Prediction, TrainingConfig, TrainingJob
from jobs.training_config import ConfigError, validate_config


class DatasetSerializer(serializers.ModelSerializer[Dataset]):
    launchable = serializers.BooleanField(source="is_launchable", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "original_filename",
            "format",
            "rows",
            "size_bytes",
            "sha256",
            "stats",
            "error_count",
            "errors",
            "preview",
            "launchable",
            "created_at",
        ]
        read_only_fields = fields


class DatasetUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


def config_errors_as_drf(error: ConfigError) -> serializers.ValidationError:
    """Field paths stay as keys (``training.learning_rate``) so forms can place each message."""
    return serializers.ValidationError(
        {path or "config": msgs for path, msgs in error.errors.items()}
    )


class TrainingConfigSerializer(serializers.ModelSerializer[TrainingConfig]):
    dataset_id = serializers.UUIDField(source="dataset.id", read_only=True, allow_null=True)

    class Meta:
        model = TrainingConfig
        fields = ["id", "name", "dataset_id", "config", "created_at", "updated_at"]
        read_only_fields = ["id", "name", "dataset_id", "created_at", "updated_at"]

    def validate_config(self, value: Any) -> dict[str, Any]:
        try:
            return validate_config(value).as_dict()
        except ConfigError as exc:
            raise config_errors_as_drf(exc) from exc


class LaunchSerializer(serializers.Serializer[Any]):
    training_config_id = serializers.UUIDField()
    provider = serializers.ChoiceField(choices=["local", "runpod", "lambda", "hf", "kaggle"])
    gpu_type = serializers.CharField(max_length=100, required=False, allow_blank=True)
    gpu_types = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=10
    )
    gpu_count = serializers.IntegerField(min_value=1, max_value=8, default=1)
    volume_size_gb = serializers.IntegerField(min_value=10, max_value=2000, default=20)
    environment_variables = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True), required=False
    )
    budget_limit = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=Decimal("0.01")
    )
    alert_threshold = serializers.DecimalField(
        max_digits=4,
        decimal_places=3,
        min_value=Decimal("0.05"),
        max_value=Decimal("1"),
        default=Decimal("0.8"),
    )

    # Our own names: a pod gets these from us, a user may not override them.
    RESERVED_ENV = ("TUNEBOARD_", "HF_TOKEN", "RUNPOD_", "LAMBDA_", "KAGGLE_")

    def validate_environment_variables(self, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.replace("_", "").isalnum() or name[:1].isdigit():
                raise serializers.ValidationError(f"{name!r} is not a valid variable name")
            if name.upper().startswith(self.RESERVED_ENV):
                raise serializers.ValidationError(f"{name!r} is reserved for Tuneboard")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        types = attrs.get("gpu_types") or ([attrs["gpu_type"]] if attrs.get("gpu_type") else [])
        if not types and attrs["provider"] != "local":
            raise serializers.ValidationError({"gpu_type": "choose a GPU type for this provider"})
        attrs["gpu_types"] = types
        return attrs


class JobSerializer(serializers.ModelSerializer[TrainingJob]):
    training_config_id = serializers.UUIDField(source="config_id", read_only=True)
    dataset_id = serializers.UUIDField(read_only=True)
    progress_percentage = serializers.FloatField(read_only=True)

    class Meta:
        model = TrainingJob
        fields = [
            "id",
            "name",
            "status",
            "training_config_id",
            "dataset_id",
            "config_snapshot",
            "provider",
            "gpu_type",
            "allowed_gpu_types",
            "gpu_count",
            "provider_ref",
            "pod_url",
            "cost_per_hour",
            "cost_so_far",
            "budget",
            "alert_threshold",
            "deadline_at",
            "step",
            "total_steps",
            "epoch",
            "progress_percentage",
            "final_loss",
            "adapter_path",
            "hub_repo",
            "error",
            "stop_reason",
            "last_seq",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JobEventSerializer(serializers.ModelSerializer[JobEvent]):
    class Meta:
        model = JobEvent
        fields = ["id", "kind", "message", "data", "created_at"]
        read_only_fields = fields


class PredictionSerializer(serializers.ModelSerializer[Prediction]):
    class Meta:
        model = Prediction
        fields = [
            "sample_id",
            "step",
            "epoch",
            "prompt",
            "generated",
            "expected",
            "bleu",
            "rouge1",
            "rouge2",
            "rouge_l",
            "seq",
        ]
        read_only_fields = fields


class SeriesQuerySerializer(serializers.Serializer[Any]):
    name = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    min_step = serializers.IntegerField(min_value=0, required=False)
    max_step = serializers.IntegerField(min_value=0, required=False)
    after_seq = serializers.IntegerField(min_value=0, required=False)
    points = serializers.IntegerField(min_value=3, max_value=20_000, default=1000)
    method = serializers.ChoiceField(choices=["lttb", "minmax"], default="minmax")
