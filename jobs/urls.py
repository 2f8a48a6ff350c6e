from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from jobs.api import estimate, ingest, reference
from jobs.api.views import DatasetViewSet, JobViewSet, TrainingConfigViewSet


class OptionalSlashRouter(SimpleRouter):
    """Both /api/jobs and /api/jobs/ answer: the reference clients use no trailing slash."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("configs", TrainingConfigViewSet, basename="config")
router.register("jobs", JobViewSet, basename="job")

urlpatterns = [
    path("ingest/v1/spec", ingest.spec, name="ingest-spec"),
    path("ingest/v1/dataset", ingest.dataset, name="ingest-dataset"),
    path("ingest/v1/events", ingest.events, name="ingest-events"),
    path("ingest/v1/trainer", ingest.trainer_bundle, name="ingest-trainer"),
    path("estimate", estimate.EstimateView.as_view(), name="estimate"),
    path("training/configurations", reference.ConfigurationsView.as_view()),
    path(
        "training/configurations/<str:config_id>",
        reference.ConfigurationDetailView.as_view(),
    ),
    path("training/deploy/<str:provider>", reference.DeployView.as_view()),
    path("training/metrics/<str:job_id>", reference.MetricsView.as_view()),
    path("training/predictions/<str:job_id>", reference.PredictionsView.as_view()),
    *router.urls,
]
