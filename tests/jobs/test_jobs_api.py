from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from rest_framework.test import APIClient

from jobs import services
from jobs.models import JobStatus, TrainingJob
from tests.conftest import PREFERENCE_ROWS


def test_it_launches_a_queued_job_with_a_frozen_config(api: APIClient, make_config) -> None:
    # given
    config = make_config()
    # when
    response = api.post(
        "/api/jobs",
        {"training_config_id": str(config.id), "provider": "local", "budget_limit": "5"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    job = TrainingJob.objects.get(id=response.json()["id"])
    assert job.status == JobStatus.QUEUED
    # editing the config later never changes the job
    config.config["training"]["learning_rate"] = 0.5
    config.save()
    job.refresh_from_db()
    assert job.config_snapshot["training"]["learning_rate"] == 0.0002


def test_it_refuses_to_launch_a_dataset_with_errors(
    api: APIClient, make_dataset, make_config
) -> None:
    dataset = make_dataset(rows=[{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    config = make_config(dataset=dataset)
    response = api.post(
        "/api/jobs",
        {"training_config_id": str(config.id), "provider": "local", "budget_limit": "5"},
        format="json",
    )
    assert response.status_code == 400
    assert "error" in response.json()["training_config_id"][0]


def test_a_cloud_launch_needs_a_gpu_type(api: APIClient, make_config) -> None:
    config = make_config()
    body = {"training_config_id": str(config.id), "provider": "runpod", "budget_limit": "5"}
    assert "gpu_type" in api.post("/api/jobs", body, format="json").json()


def test_it_refuses_reserved_environment_variables(api: APIClient, make_config) -> None:
    config = make_config()
    body = {
        "training_config_id": str(config.id), "provider": "local", "budget_limit": "5",
        "environment_variables": {"TUNEBOARD_INGEST_TOKEN": "x"},
    }  # fmt: skip
    assert "environment_variables" in api.post("/api/jobs", body, format="json").json()


def test_the_stop_button_moves_a_running_job_to_stopping(api: APIClient, make_job) -> None:
    job, _ = make_job()
    services.mark_running(job.id)
    response = api.post(f"/api/jobs/{job.id}/stop")
    assert response.json()["status"] == JobStatus.STOPPING


def test_stopping_a_queued_job_ends_it_at_once(api: APIClient, make_job) -> None:
    job, _ = make_job()
    assert api.post(f"/api/jobs/{job.id}/stop").json()["status"] == JobStatus.STOPPED


def test_a_terminal_job_is_never_resurrected(make_job) -> None:
    job, _ = make_job()
    services.finish_job(job.id, JobStatus.FAILED, "boom")
    assert services.mark_running(job.id) is None
    assert services.request_stop(job.id, "user", "late stop") is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


def test_every_transition_is_on_the_timeline(api: APIClient, make_job) -> None:
    job, _ = make_job()
    services.mark_provisioning(job.id, "pod-1", "RTX 4090", cost_per_hour=Decimal("0.5"))
    services.mark_running(job.id)
    services.finish_job(job.id, JobStatus.SUCCEEDED, "done")
    messages = [e["message"] for e in api.get(f"/api/jobs/{job.id}/events").json()["results"]]
    assert messages[0].startswith("queued")
    assert any("pod-1" in m for m in messages)
    assert messages[-1] == "done"


def test_the_series_is_downsampled_to_the_requested_points(api: APIClient, make_job) -> None:
    # given: 2,000 loss points
    job, _ = make_job()
    now = timezone.now().isoformat()
    events = [
        services.IngestEvent(
            i, "metric", timezone.now(), {"step": i, "values": {"loss": 1000.0 / i}}
        )
        for i in range(1, 2001)
    ]
    services.record_events(job.id, events)
    # when
    body = api.get(f"/api/jobs/{job.id}/metrics?name=loss&points=200").json()
    # then
    loss = body["series"]["loss"]
    assert body["last_seq"] == 2000 and loss["total"] == 2000
    assert len(loss["steps"]) <= 200
    assert loss["steps"][0] == 1 and loss["steps"][-1] == 2000
    assert max(loss["values"]) == 1000.0  # the spike at step 1 survives min/max
    assert loss["values"][0] == 1000.0  # ... at the start, where it was
    lttb_body = api.get(f"/api/jobs/{job.id}/metrics?name=loss&points=200&method=lttb").json()
    assert len(lttb_body["series"]["loss"]["steps"]) == 200
    window = api.get(f"/api/jobs/{job.id}/metrics?name=loss&min_step=10&max_step=19").json()
    assert window["series"]["loss"]["steps"] == list(range(10, 20))
    backfill = api.get(f"/api/jobs/{job.id}/metrics?after_seq=1990").json()
    assert backfill["series"]["loss"]["steps"] == list(range(1991, 2001))
    assert now


def test_the_cost_endpoint_reports_budget_and_remaining(api: APIClient, make_job) -> None:
    job, _ = make_job(budget="10")
    services.update_cost(job.id, Decimal("2.5"))
    body = api.get(f"/api/jobs/{job.id}/cost").json()
    assert (body["cost_so_far"], body["budget_remaining"]) == (2.5, 7.5)


def test_an_outsider_gets_404_on_every_job_route(outsider_api: APIClient, make_job) -> None:
    job, _ = make_job()
    for route in ("", "/metrics", "/predictions", "/events", "/cost"):
        assert outsider_api.get(f"/api/jobs/{job.id}{route}").status_code == 404, route
    assert outsider_api.post(f"/api/jobs/{job.id}/stop").status_code == 404
    assert outsider_api.get("/api/jobs").json()["results"] == []
    assert outsider_api.get(f"/api/training/metrics/{job.id}").status_code == 404
    assert outsider_api.get(f"/api/training/predictions/{job.id}").status_code == 404
    assert outsider_api.get(f"/api/training/deploy/local?pod_id={job.id}").status_code == 404


def test_the_list_filters_by_status(api: APIClient, make_job) -> None:
    job, _ = make_job()
    make_job()
    services.finish_job(job.id, JobStatus.FAILED, "boom")
    ids = [j["id"] for j in api.get("/api/jobs?status=failed").json()["results"]]
    assert ids == [str(job.id)]


def test_token_auth_works_for_scripts(owner, make_job) -> None:
    from rest_framework.authtoken.models import Token

    job, _ = make_job()
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    assert client.get(f"/api/jobs/{job.id}").status_code == 200


def test_preference_data_trains_with_dpo(api: APIClient, make_dataset, make_config) -> None:
    dataset = make_dataset(rows=PREFERENCE_ROWS)
    config = make_config(dataset=dataset, method="dpo")
    assert config.config["training"]["method"] == "dpo"


def test_predictions_backfill_after_a_seq(api: APIClient, make_job) -> None:
    job, _ = make_job()
    events = [
        services.IngestEvent(
            i,
            "prediction",
            timezone.now(),
            {"step": i, "sample_id": "s0", "prompt": "p", "generated": "g"},
        )
        for i in range(1, 6)
    ]
    services.record_events(job.id, events)
    body = api.get(f"/api/jobs/{job.id}/predictions?after_seq=3").json()
    assert [p["seq"] for p in body["results"]] == [4, 5]
    assert api.get(f"/api/jobs/{job.id}/predictions?step=x").status_code == 400


def test_cost_updates_leave_a_cost_history(api: APIClient, make_job) -> None:
    job, _ = make_job()
    for cost in ("0.5", "1.25", "1.25"):
        services.update_cost(job.id, Decimal(cost))
    series = api.get(f"/api/jobs/{job.id}/metrics?name=cost").json()["series"]["cost"]
    assert series["values"] == [0.5, 1.25]


def test_preferences_default_and_save(owner) -> None:
    assert services.get_preferences(owner).default_budget == Decimal("10")
    services.save_preferences(owner, Decimal("25"), Decimal("0.9"))
    assert services.get_preferences(owner).default_budget == Decimal("25")
