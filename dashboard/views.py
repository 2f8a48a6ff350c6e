"""The browser pages. Each is a thin adapter: data comes from ``jobs.services`` and the models'
owner-scoped helpers, live behaviour from the page's own module in ``static/js/``."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard import forms
from jobs import services
from jobs.models import JobStatus, TrainingJob
from jobs.training_config import default_config
from providers.base import ProviderError
from providers.models import ProviderCredential
from providers.registry import ProviderSettings, get_provider

# The runs list renders this many rows; older runs stay reachable through the API.
RUNS_PAGE_SIZE = 200
# The run page server-renders the newest predictions; the table's search works on these.
PREDICTIONS_ON_PAGE = 500
EVENTS_ON_PAGE = 300


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


# --- first run ---------------------------------------------------------------------------------


def setup(request: HttpRequest) -> HttpResponse:
    """Create the first account; closed (404) as soon as any account exists."""
    if User.objects.exists():
        raise Http404("setup is done")
    form = forms.SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        user.is_staff = user.is_superuser = True
        user.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("runs")
    return render(request, "registration/setup.html", {"form": form})


# --- runs --------------------------------------------------------------------------------------


def _runs_context(request: HttpRequest) -> dict[str, Any]:
    jobs = TrainingJob.objects.filter(owner=_user(request))
    wanted = request.GET.get("status", "")
    if wanted in JobStatus.values:
        jobs = jobs.filter(status=wanted)
    return {
        "jobs": list(jobs[:RUNS_PAGE_SIZE]),
        "status_filter": wanted,
        "statuses": JobStatus.choices,
    }


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/runs.html", _runs_context(request))


@login_required
def runs_rows(request: HttpRequest) -> HttpResponse:
    """The runs table body alone: the list page polls it (same partial, same escaping)."""
    return render(request, "dashboard/partials/run_rows.html", _runs_context(request))


# --- new fine-tune -----------------------------------------------------------------------------


@login_required
def new_run(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    defaults = default_config()
    budget, threshold = _default_budget(request)
    context = {
        "sections": forms.CONFIG_SECTIONS,
        "defaults": defaults,
        "presets": forms.PRESETS,
        "datasets": user.datasets.all()[:100],
        "methods": ["sft", "dpo", "orpo"],
        "budget": budget,
        "alert_threshold": threshold,
        "page_data": {
            "defaults": defaults,
            "presets": {k: v["values"] for k, v in forms.PRESETS.items()},
            "urls": {
                "datasets": "/api/datasets",
                "configs": "/api/configs",
                "jobs": "/api/jobs",
                "estimate": "/api/estimate",
                "run": reverse("run", args=[uuid.UUID(int=0)]),
            },
        },
    }
    return render(request, "dashboard/new_run.html", context)


# --- one run -----------------------------------------------------------------------------------


def _job_or_404(request: HttpRequest, job_id: uuid.UUID) -> TrainingJob:
    job = services.get_job_for_user(_user(request), job_id)
    if job is None:
        raise Http404("no such run")
    return job


def _run_page_data(job: TrainingJob, cost: dict[str, Any]) -> dict[str, Any]:
    """What the run page's module starts from (json_script; the REST API has the rest)."""
    return {
        "id": str(job.id),
        "status": job.status,
        "terminal": job.is_terminal,
        "step": job.step,
        "total_steps": job.total_steps,
        "cost_so_far": float(job.cost_so_far),
        "cost_per_hour": float(job.cost_per_hour),
        "budget": float(job.budget),
        "alert_threshold": float(job.alert_threshold),
        "projected_total": float(cost["projected_total"]) if cost["projected_total"] else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "last_seq": job.last_seq,
        "ws": f"/ws/jobs/{job.id}/",
        "api": f"/api/jobs/{job.id}",
    }


@login_required
def run_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_or_404(request, job_id)
    cost = services.cost_summary(job)
    predictions = list(job.predictions.order_by("-step", "sample_id")[:PREDICTIONS_ON_PAGE])
    context = {
        "job": job,
        "cost": cost,
        "events": list(job.events.order_by("-created_at", "-id")[:EVENTS_ON_PAGE]),
        "predictions": predictions,
        "sample_ids": sorted({p.sample_id for p in predictions}),
        "trained_model": getattr(job, "trained_model", None),
        "config_json": json.dumps(job.config_snapshot, indent=2, sort_keys=True),
        "page_data": _run_page_data(job, cost),
        "stoppable": job.status in (JobStatus.QUEUED, JobStatus.PROVISIONING, JobStatus.RUNNING),
    }
    return render(request, "dashboard/run.html", context)


@login_required
@require_POST
def stop_run(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """The no-JavaScript path of the stop button (the page module posts to the API instead)."""
    job = _job_or_404(request, job_id)
    if services.stop_job_for_user(job) is None:
        messages.info(request, "This run was no longer running.")
    return redirect("run", job_id=job.id)


# --- compare -----------------------------------------------------------------------------------


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff(jobs: list[TrainingJob]) -> list[dict[str, Any]]:
    """One row per config path: each run's value, and whether they differ."""
    flats = [_flatten(job.config_snapshot) for job in jobs]
    paths = sorted(set().union(*flats))
    rows = []
    for path in paths:
        values = [json.dumps(flat.get(path)) if path in flat else "—" for flat in flats]
        rows.append({"path": path, "values": values, "differs": len(set(values)) > 1})
    return rows


@login_required
def compare(request: HttpRequest) -> HttpResponse:
    jobs = []
    for raw in request.GET.getlist("runs"):
        try:
            job = services.get_job_for_user(_user(request), uuid.UUID(raw))
        except ValueError:
            job = None
        if job is None:
            raise Http404("no such run")
        jobs.append(job)
    context = {
        "jobs": jobs,
        "rows": config_diff(jobs) if jobs else [],
        "all_jobs": TrainingJob.objects.filter(owner=_user(request))[:RUNS_PAGE_SIZE],
        "page_data": {"runs": [{"id": str(j.id), "name": j.name} for j in jobs]},
    }
    return render(request, "dashboard/compare.html", context)


# --- settings ----------------------------------------------------------------------------------


def _default_budget(request: HttpRequest) -> tuple[Decimal, Decimal]:
    preferences = services.get_preferences(_user(request))
    return preferences.default_budget, preferences.default_alert_threshold


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    budget, threshold = _default_budget(request)
    credential_form = forms.CredentialForm()
    budget_form = forms.DefaultBudgetForm(initial={"budget": budget, "alert_threshold": threshold})
    if request.method == "POST" and request.POST.get("form") == "credential":
        credential_form = forms.CredentialForm(request.POST)
        if credential_form.is_valid():
            _save_credential(_user(request), credential_form.cleaned_data)
            messages.success(request, "Key saved (encrypted).")
            return redirect("settings")
    elif request.method == "POST" and request.POST.get("form") == "budget":
        budget_form = forms.DefaultBudgetForm(request.POST)
        if budget_form.is_valid():
            services.save_preferences(
                _user(request),
                budget_form.cleaned_data["budget"],
                budget_form.cleaned_data["alert_threshold"],
            )
            messages.success(request, "Default budget saved.")
            return redirect("settings")
    context = {
        "credentials": _user(request).credentials.order_by("provider"),
        "credential_form": credential_form,
        "budget_form": budget_form,
    }
    return render(request, "dashboard/settings.html", context)


def _save_credential(user: User, data: dict[str, Any]) -> None:
    credential = ProviderCredential.objects.filter(owner=user, provider=data["provider"]).first()
    credential = credential or ProviderCredential(owner=user, provider=data["provider"])
    credential.set_secret(data["api_key"])
    credential.save()


@login_required
@require_POST
def delete_credential(request: HttpRequest, provider: str) -> HttpResponse:
    ProviderCredential.objects.filter(owner=_user(request), provider=provider).delete()
    messages.success(request, "Key removed.")
    return redirect("settings")


def provider_settings() -> ProviderSettings:
    return ProviderSettings(
        local_state_dir=str(settings.VAR_DIR / "local-pods"),
        local_cost_per_hour=float(settings.LOCAL_PROVIDER_COST_PER_HOUR),
        request_timeout_s=15.0,
    )


@login_required
@require_POST
def test_credential(request: HttpRequest, provider: str) -> JsonResponse:
    """Ask the provider for its offers with the stored key: OK, or the provider's message."""
    credential = ProviderCredential.objects.filter(owner=_user(request), provider=provider).first()
    secrets = {"api_key": credential.get_secret()} if credential else {}
    try:
        offers = get_provider(provider, secrets, provider_settings()).offers()
    except ProviderError as exc:
        return JsonResponse({"ok": False, "message": str(exc)})
    return JsonResponse({"ok": True, "message": f"connected: {len(offers)} GPU offers"})


class LoginView(auth_views.LoginView):
    """Django's sign-in, plus a link to the first-run setup while no account exists."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["needs_setup"] = not User.objects.exists()
        return context
