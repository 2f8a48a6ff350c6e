"""Ingest API v1: what the trainer in a pod talks to (DESIGN §5, docs/contracts.md §3).

Plain Django views rather than DRF: the token authenticates a job, not a user, and this is the
hottest endpoint we have. Every answer is JSON; every refusal says why.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobs.models import TrainingJob
from jobs.services import BadBatch, ingest_token_job, parse_events, record_events

IngestView = Callable[[HttpRequest, TrainingJob], HttpResponseBase]


def _refuse(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def ingest_job_required(view: IngestView) -> Callable[[HttpRequest], HttpResponseBase]:
    """Resolve ``Authorization: Bearer <token>`` to its job, or answer 401."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponseBase:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _refuse(401, "missing ingest token: send Authorization: Bearer <token>")
        job = ingest_token_job(token.strip())
        if job is None:
            return _refuse(401, "invalid, revoked or expired ingest token")
        claimed_job = request.headers.get("X-Tuneboard-Job")
        if claimed_job and claimed_job != str(job.id):
            return _refuse(401, "this ingest token belongs to another job")
        return view(request, job)

    return wrapper


@require_GET
@ingest_job_required
def spec(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    dataset = job.dataset
    return JsonResponse(
        {
            "job_id": str(job.id),
            "config": job.config_snapshot,
            "dataset": {
                "url": request.build_absolute_uri(reverse("ingest-dataset")),
                "format": dataset.format,
                "rows": dataset.rows,
                "sha256": dataset.sha256,
            },
            "report_interval_s": settings.INGEST_REPORT_INTERVAL_S,
            "max_batch_events": settings.INGEST_MAX_BATCH_EVENTS,
            "max_batch_bytes": settings.INGEST_MAX_BATCH_BYTES,
            "deadline_at": job.deadline_at.isoformat() if job.deadline_at else None,
            "hub_repo": f"tuneboard-{slugify(job.name)[:60]}-{str(job.id)[:8]}",
            "resume": False,
        }
    )


@require_GET
@ingest_job_required
def dataset(request: HttpRequest, job: TrainingJob) -> HttpResponseBase:
    stored = job.dataset.normalized_file or job.dataset.file
    return FileResponse(stored.open("rb"), content_type="application/jsonl", as_attachment=True)


@require_GET
@ingest_job_required
def trainer_bundle(request: HttpRequest, job: TrainingJob) -> HttpResponseBase:
    """The trainer's source as a .tar.gz: a cloud pod's start command downloads and runs it."""
    return HttpResponse(_trainer_tarball(), content_type="application/gzip")


@cache
def _trainer_tarball() -> bytes:
    source = Path(__file__).resolve().parents[2] / "trainer"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            if path.suffix in (".py", ".txt") and "__pycache__" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(source.parent)))
    return buffer.getvalue()


@csrf_exempt
@require_POST
@ingest_job_required
def events(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    limit = settings.INGEST_MAX_BATCH_BYTES
    # Refused before the body is read: a runaway trainer cannot make us buffer megabytes.
    if int(request.headers.get("Content-Length") or 0) > limit:
        return _refuse(413, f"batch over {limit} bytes: send fewer events per request")
    try:
        body: Any = json.loads(request.body)
        batch = parse_events(body)
    except json.JSONDecodeError as exc:
        return _refuse(400, f"the body is not valid JSON: {exc}")
    except BadBatch as exc:
        return _refuse(400, str(exc))
    if len(batch) > settings.INGEST_MAX_BATCH_EVENTS:
        return _refuse(
            413, f"{len(batch)} events: at most {settings.INGEST_MAX_BATCH_EVENTS} per batch"
        )
    result = record_events(job.id, batch)
    return JsonResponse({"acked_through": result.acked_through, "command": result.command})
