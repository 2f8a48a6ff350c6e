"""Our REST resources. Every queryset is scoped to the signed-in owner: another user's id is 404."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import services
from jobs.api.serializers import (
    DatasetSerializer,
    DatasetUploadSerializer,
    JobEventSerializer,
    JobSerializer,
    LaunchSerializer,
    PredictionSerializer,
    SeriesQuerySerializer,
    TrainingConfigSerializer,
)
from jobs.models import Dataset, TrainingConfig, TrainingJob
from jobs.series import metric_series


def owner_of(request: Request) -> User:
    """The signed-in user (every view here requires one: IsAuthenticated is the default)."""
    return cast(User, request.user)


class DatasetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Dataset],
):
    serializer_class = DatasetSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    def get_queryset(self) -> QuerySet[Dataset]:
        return Dataset.objects.filter(owner=owner_of(self.request))

    @extend_schema(request=DatasetUploadSerializer, responses=DatasetSerializer)
    def create(self, request: Request) -> Response:
        upload = DatasetUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            dataset = services.create_dataset(
                owner_of(request), upload.validated_data["file"], upload.validated_data.get("name")
            )
        except services.DatasetRefused as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Dataset) -> None:
        try:
            services.delete_dataset(instance)
        except services.DatasetRefused as exc:
            raise ValidationError({"dataset": [str(exc)]}) from exc


class TrainingConfigViewSet(viewsets.ModelViewSet[TrainingConfig]):
    serializer_class = TrainingConfigSerializer

    def get_queryset(self) -> QuerySet[TrainingConfig]:
        return TrainingConfig.objects.filter(owner=owner_of(self.request)).select_related("dataset")

    def perform_create(self, serializer: TrainingConfigSerializer) -> None:  # type: ignore[override]
        self._save(serializer, None)

    def perform_update(self, serializer: TrainingConfigSerializer) -> None:  # type: ignore[override]
        self._save(serializer, serializer.instance)

    def _save(self, serializer: TrainingConfigSerializer, config: TrainingConfig | None) -> None:
        try:
            serializer.instance = services.save_config(
                owner_of(self.request), serializer.validated_data["config"], config
            )
        except services.ConfigRefused as exc:
            raise ValidationError(exc.errors) from exc


class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[TrainingJob]
):
    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[TrainingJob]:
        jobs = TrainingJob.objects.filter(owner=owner_of(self.request))
        wanted = self.request.query_params.get("status")
        return jobs.filter(status=wanted) if wanted else jobs

    @extend_schema(request=LaunchSerializer, responses=JobSerializer)
    def create(self, request: Request) -> Response:
        job = launch_from_request(request, request.data)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        services.stop_job_for_user(job)
        job.refresh_from_db()
        return Response(JobSerializer(job).data)

    @extend_schema(parameters=[SeriesQuerySerializer])
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        query = SeriesQuerySerializer(
            data={**request.query_params.dict(), "name": request.query_params.getlist("name")}
        )
        query.is_valid(raise_exception=True)
        return Response(metric_series(job, **query.validated_data))

    @action(detail=True, methods=["get"])
    def predictions(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        rows = job.predictions.all()
        params = request.query_params
        for param, lookup in (("step", "step"), ("after_seq", "seq__gt")):
            if param in params:
                if not params[param].isdigit():
                    raise ValidationError({param: ["must be a whole number"]})
                rows = rows.filter(**{lookup: int(params[param])})
        if "sample_id" in params:
            rows = rows.filter(sample_id=params["sample_id"])
        page = self.paginator.paginate_queryset(rows, request, view=self) if self.paginator else []
        return self.get_paginated_response(PredictionSerializer(page, many=True).data)

    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        paginator = self.paginator
        page = (
            paginator.paginate_queryset(job.events.all(), request, view=self) if paginator else []
        )
        return self.get_paginated_response(JobEventSerializer(page, many=True).data)

    @action(detail=True, methods=["get"])
    def cost(self, request: Request, pk: str | None = None) -> Response:
        return Response(services.cost_summary(self.get_object()))


def launch_from_request(request: Request, data: Any) -> TrainingJob:
    launch = LaunchSerializer(data=data)
    launch.is_valid(raise_exception=True)
    values: dict[str, Any] = launch.validated_data
    config = services.get_config_for_user(owner_of(request), values["training_config_id"])
    if config is None:
        raise ValidationError({"training_config_id": ["no such training config"]})
    try:
        job, _token = services.launch_job(
            owner_of(request),
            config,
            services.LaunchRequest(
                provider=values["provider"],
                gpu_types=values["gpu_types"],
                gpu_count=values["gpu_count"],
                budget=values["budget_limit"],
                alert_threshold=values["alert_threshold"],
                volume_size_gb=values["volume_size_gb"],
                environment_variables=values.get("environment_variables") or {},
            ),
        )
    except services.LaunchRefused as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc
    return job
