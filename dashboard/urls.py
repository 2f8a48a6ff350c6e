from __future__ import annotations

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from dashboard import views


def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and the embedded-mode test: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("jobs.urls")),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("setup/", views.setup, name="setup"),
    path("", views.runs, name="runs"),
    path("runs/rows/", views.runs_rows, name="runs-rows"),
    path("runs/new/", views.new_run, name="new-run"),
    path("runs/<uuid:job_id>/", views.run_detail, name="run"),
    path("runs/<uuid:job_id>/stop/", views.stop_run, name="stop-run"),
    path("compare/", views.compare, name="compare"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/keys/<str:provider>/test/", views.test_credential, name="test-credential"),
    path("settings/keys/<str:provider>/delete/", views.delete_credential, name="delete-credential"),
]
