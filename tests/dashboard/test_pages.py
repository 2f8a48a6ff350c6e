"""The browser pages, server side: who may see what, and that data from models is escaped."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from jobs import services
from jobs.models import JobStatus, TrainingJob

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def browser(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def job(make_job: Callable[..., tuple[TrainingJob, str]]) -> TrainingJob:
    return make_job()[0]


def report(job: TrainingJob, *events: dict[str, Any]) -> None:
    body = {
        "events": [
            {"seq": job.last_seq + i + 1, "ts": "2026-01-01T00:00:00Z", **e}
            for i, e in enumerate(events)
        ]
    }
    services.record_events(job.id, services.parse_events(body))
    job.refresh_from_db()


def prediction(text: str, step: int = 5) -> dict[str, Any]:
    data = {"step": step, "epoch": 1.0, "sample_id": "s0", "prompt": text, "generated": text,
            "expected": text, "scores": {"bleu": 0.5, "rouge1": 0.5, "rouge2": 0.1, "rougeL": 0.4}}  # fmt: skip
    return {"type": "prediction", "data": data}


@pytest.mark.parametrize("url", ["/", "/runs/new/", "/compare/", "/settings/"])
def test_every_page_asks_a_stranger_to_sign_in(client: Client, db: None, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", ["/", "/runs/new/", "/compare/", "/settings/"])
def test_every_page_renders_for_a_signed_in_user(browser: Client, url: str) -> None:
    response = browser.get(url)
    assert response.status_code == 200
    assert b"Tuneboard" in response.content


def test_the_runs_list_shows_the_owners_runs_only(
    browser: Client, job: TrainingJob, outsider: User, make_job: Callable[..., Any]
) -> None:
    other, _ = make_job(user=outsider)
    TrainingJob.objects.filter(id=other.id).update(name="outsiders-run")
    content = browser.get("/").content.decode()
    assert str(job.id) in content
    assert "outsiders-run" not in content


def test_the_runs_list_filters_by_status(browser: Client, job: TrainingJob) -> None:
    assert str(job.id) in browser.get("/?status=queued").content.decode()
    assert str(job.id) not in browser.get("/?status=running").content.decode()


def test_the_rows_partial_is_what_the_list_page_polls(browser: Client, job: TrainingJob) -> None:
    response = browser.get("/runs/rows/")
    assert response.status_code == 200
    assert f'data-job="{job.id}"' in response.content.decode()
    assert b"<html" not in response.content


def test_the_run_page_renders_for_its_owner(browser: Client, job: TrainingJob) -> None:
    response = browser.get(f"/runs/{job.id}/")
    assert response.status_code == 200
    assert b'id="run-data"' in response.content
    assert b"Stop run" in response.content


def test_an_outsider_gets_404_for_someone_elses_run(job: TrainingJob, outsider: User) -> None:
    client = Client()
    client.force_login(outsider)
    assert client.get(f"/runs/{job.id}/").status_code == 404
    assert client.post(f"/runs/{job.id}/stop/").status_code == 404
    assert client.get(f"/compare/?runs={job.id}").status_code == 404


def test_a_prediction_with_markup_is_escaped_in_the_page(browser: Client, job: TrainingJob) -> None:
    services.mark_running(job.id)
    report(job, prediction(XSS))
    content = browser.get(f"/runs/{job.id}/").content.decode()
    assert XSS not in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content


def test_a_run_name_with_markup_is_escaped_everywhere(browser: Client, job: TrainingJob) -> None:
    TrainingJob.objects.filter(id=job.id).update(name=XSS)
    for url in ("/", "/runs/rows/", f"/runs/{job.id}/", f"/compare/?runs={job.id}"):
        assert XSS not in browser.get(url).content.decode(), url


def test_a_budget_stopped_run_shows_its_banner(browser: Client, job: TrainingJob) -> None:
    TrainingJob.objects.filter(id=job.id).update(status=JobStatus.BUDGET_EXCEEDED)
    content = browser.get(f"/runs/{job.id}/").content.decode()
    assert "The budget stopped this run." in content
    assert 'id="budget-banner" hidden' not in content


def test_the_stop_form_stops_a_queued_run(browser: Client, job: TrainingJob) -> None:
    response = browser.post(f"/runs/{job.id}/stop/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status in (JobStatus.STOPPED, JobStatus.STOPPING)


def test_compare_highlights_config_differences(
    browser: Client, make_config: Callable[..., Any], owner: User
) -> None:
    jobs = []
    for rate in (0.001, 0.002):
        config = make_config(learning_rate=rate)
        request = services.LaunchRequest(provider="local", gpu_types=[], budget=Decimal("5"))
        jobs.append(services.launch_job(owner, config, request)[0])
    content = browser.get(f"/compare/?runs={jobs[0].id}&runs={jobs[1].id}").content.decode()
    row = content.split("<code>training.learning_rate</code>")[0].rsplit("<tr", 1)[1]
    assert 'class="differs"' in row
