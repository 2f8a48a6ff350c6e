"""The reference system's endpoints, same paths and JSON shapes, so its clients keep working.

Thin adapters over the same services as our own API; only the shapes differ.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import services
from jobs.api.serializers import LaunchSerializer, config_errors_as_drf
from jobs.api.views import launch_from_request, owner_of
from jobs.json_types import is_uuid
from jobs.models import TrainingConfig, TrainingJob
from jobs.training_config import ConfigError, validate_config

LOG_LINES = 50


def _object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
    return request.data


def _config_body(config: TrainingConfig) -> dict[str, Any]:
    return {
        "id": str(config.id),
        "name": config.name,
        "dataset_id": str(config.dataset_id) if config.dataset_id else None,
        "config": config.config,
        "created_at": config.created_at,
        "updated_at": config.updated_at,
    }


class ConfigurationsView(APIView):
    @extend_schema(request=dict, responses=dict)
    def post(self, request: Request) -> Response:
        try:
            data = validate_config(_object(request)).as_dict()
            config = services.save_config(owner_of(request), data)
        except ConfigError as exc:
            raise config_errors_as_drf(exc) from exc
        except services.ConfigRefused as exc:
            raise ValidationError(exc.errors) from exc
        return Response(_config_body(config), status=201)


class ConfigurationDetailView(APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, config_id: str) -> Response:
        config = services.get_config_for_user(owner_of(request), config_id)
        if config is None:
            raise NotFound("no such training configuration")
        return Response(_config_body(config))


def _deployment_body(job: TrainingJob) -> dict[str, Any]:
    return {
        "deployment_id": str(job.id),
        "pod_id": job.provider_ref or None,
        "pod_url": job.pod_url or None,
        "status": job.status,
        "gpu_type": job.gpu_type,
        "gpu_count": job.gpu_count,
        "cost": {
            "estimated_cost": float(job.budget),
            "cost_per_hour": float(job.cost_per_hour),
            "actual_cost": float(job.cost_so_far),
        },
        "created_at": job.created_at,
    }


class DeployView(APIView):
    @extend_schema(request=LaunchSerializer, responses=dict)
    def post(self, request: Request, provider: str) -> Response:
        job = launch_from_request(request, {**_object(request), "provider": provider})
        return Response(_deployment_body(job), status=201)

    @extend_schema(responses=dict)
    def get(self, request: Request, provider: str) -> Response:
        pod_id = request.query_params.get("pod_id", "")
        if not pod_id:
            raise ValidationError({"pod_id": ["required: the pod_id (or deployment_id)"]})
        job = _job_by_pod(request, provider, pod_id)
        body = _deployment_body(job)
        body["logs"] = [
            f"{e.created_at.isoformat()} {e.message}"
            for e in reversed(job.events.order_by("-created_at", "-id")[:LOG_LINES])
        ]
        body["metrics"] = {
            "epoch": job.epoch,
            "step": job.step,
            "loss": _latest(job, "loss"),
            "learning_rate": _latest(job, "learning_rate"),
            "progress_percentage": job.progress_percentage,
        }
        return Response(body)


def _job_by_pod(request: Request, provider: str, pod_id: str) -> TrainingJob:
    jobs = TrainingJob.objects.filter(owner=owner_of(request), provider=provider)
    match = Q(provider_ref=pod_id)
    if is_uuid(pod_id):
        match |= Q(id=pod_id)
    job = jobs.filter(match).first()
    if job is None:
        raise NotFound("no deployment with that pod_id")
    return job


def _latest(job: TrainingJob, name: str) -> float | None:
    point = job.metric_points.filter(name=name).order_by("-step", "-seq").first()
    return point.value if point else None


def _owned_job(request: Request, job_id: str) -> TrainingJob:
    job = services.get_job_for_user(owner_of(request), job_id) if is_uuid(job_id) else None
    if job is None:
        raise NotFound("no such job")
    return job


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["must be an integer"]}) from None
    if not 0 <= value <= maximum:
        raise ValidationError({name: [f"must be between 0 and {maximum}"]})
    return value


def _epoch_range(request: Request) -> tuple[float, float] | None:
    """``epoch=N`` means the N-th epoch: reported epochs in (N-1, N]; ``epoch=0`` is the start."""
    raw = request.query_params.get("epoch")
    if raw in (None, ""):
        return None
    try:
        epoch = int(raw)
    except ValueError:
        raise ValidationError({"epoch": ["must be an integer"]}) from None
    return (epoch - 1, epoch) if epoch > 0 else (-math.inf, 0)


class MetricsView(APIView):
    """``{total_count, metrics: [{step, epoch, loss, learning_rate, timestamp}]}`` by step."""

    @extend_schema(responses=dict)
    def get(self, request: Request, job_id: str) -> Response:
        job = _owned_job(request, job_id)
        limit = _int_param(request, "limit", 100, 1000)
        offset = _int_param(request, "offset", 0, 10**9)
        losses = job.metric_points.filter(name="loss")
        epochs = _epoch_range(request)
        if epochs:
            losses = losses.filter(epoch__gt=epochs[0], epoch__lte=epochs[1])
        total = losses.count()
        page = list(losses.order_by("step", "seq")[offset : offset + limit])
        rates = dict(
            job.metric_points.filter(name="learning_rate", step__in=[p.step for p in page])
            .order_by("seq")
            .values_list("step", "value")
        )
        metrics = [
            {
                "step": p.step,
                "epoch": p.epoch,
                "loss": p.value,
                "learning_rate": rates.get(p.step),
                "timestamp": p.ts,
            }
            for p in page
        ]
        return Response({"total_count": total, "metrics": metrics})


class PredictionsView(APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, job_id: str) -> Response:
        job = _owned_job(request, job_id)
        limit = _int_param(request, "limit", 50, 1000)
        rows = job.predictions.all()
        epochs = _epoch_range(request)
        if epochs:
            rows = rows.filter(epoch__gt=epochs[0], epoch__lte=epochs[1])
        predictions = [
            {
                "sample_id": p.sample_id,
                "epoch": p.epoch,
                "step": p.step,
                "prompt": p.prompt,
                "generated": p.generated,
                "expected": p.expected,
                "metrics": {"bleu": p.bleu, "rouge_l": p.rouge_l},
            }
            for p in rows.order_by("-step", "sample_id")[:limit]
        ]
        return Response({"predictions": predictions})
