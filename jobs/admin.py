from __future__ import annotations

from django.contrib import admin

from jobs.models import (
    Dataset,
    JobEvent,
    MetricPoint,
    Prediction,
    TrainedModel,
    TrainingConfig,
    TrainingJob,
)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "format", "rows", "error_count", "created_at"]
    list_filter = ["format"]
    search_fields = ["name", "sha256"]


@admin.register(TrainingConfig)
class TrainingConfigAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "dataset", "updated_at"]
    search_fields = ["name"]


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    readonly_fields = ("kind", "message", "created_at")
    fields = readonly_fields


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "status", "provider", "gpu_type", "cost_so_far", "budget"]
    list_filter = ["status", "provider"]
    search_fields = ["name", "provider_ref"]
    # Status changes go through jobs/services.py only (one writer per transition).
    readonly_fields = ["status", "ingest_token_hash", "last_seq", "config_snapshot"]
    inlines = [JobEventInline]


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ["job", "name", "step", "value", "ts"]
    list_filter = ["name"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["job", "sample_id", "step", "bleu", "rouge_l"]


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["job", "kind", "message", "created_at"]
    list_filter = ["kind"]


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = ["base_model", "owner", "adapter_location", "final_loss", "cost"]
