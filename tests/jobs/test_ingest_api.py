from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from jobs import services
from jobs.models import JobEvent, JobStatus, MetricPoint, Prediction, TrainingJob

Make = Callable[..., tuple[TrainingJob, str]]


def metric(seq: int, step: int, loss: float) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": "metric",
        "ts": timezone.now().isoformat(),
        "data": {
            "step": step,
            "epoch": step / 10,
            "total_steps": 10,
            "values": {"loss": loss, "learning_rate": 1e-4},
        },
    }


def post(token: str | None, body: Any, job_id: str | None = None, raw: bytes | None = None):
    headers = {}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if job_id:
        headers["HTTP_X_TUNEBOARD_JOB"] = job_id
    data = raw if raw is not None else json.dumps(body)
    return Client().post("/api/ingest/v1/events", data, content_type="application/json", **headers)


def test_it_stores_a_batch_and_acks_its_last_seq(make_job: Make) -> None:
    job, token = make_job()
    response = post(token, {"events": [metric(1, 1, 2.0), metric(2, 2, 1.5)]})
    assert response.status_code == 200
    assert response.json() == {"acked_through": 2, "command": None}
    assert MetricPoint.objects.filter(job=job, name="loss").count() == 2
    job.refresh_from_db()
    assert (job.step, job.total_steps, job.last_seq) == (2, 10, 2)


def test_it_stores_nothing_twice_when_a_batch_is_replayed(make_job: Make) -> None:
    # given
    job, token = make_job()
    batch = {"events": [metric(1, 1, 2.0), metric(2, 2, 1.5)]}
    post(token, batch)
    # when: the same batch, then one overlapping the stored run
    replay = post(token, batch)
    overlap = post(token, {"events": [metric(2, 2, 1.5), metric(3, 3, 1.2)]})
    # then
    assert replay.json()["acked_through"] == 2
    assert overlap.json()["acked_through"] == 3
    assert list(
        MetricPoint.objects.filter(job=job, name="loss")
        .values_list("seq", flat=True)
        .order_by("seq")
    ) == [1, 2, 3]


def test_it_keeps_nothing_after_a_gap_so_the_trainer_resends(make_job: Make) -> None:
    job, token = make_job()
    response = post(token, {"events": [metric(1, 1, 2.0), metric(5, 5, 1.0)]})
    assert response.json()["acked_through"] == 1
    assert MetricPoint.objects.filter(job=job, name="loss").count() == 1


def test_it_refuses_a_missing_wrong_or_foreign_token(make_job: Make) -> None:
    job_a, token_a = make_job()
    job_b, _token_b = make_job()
    batch = {"events": [metric(1, 1, 2.0)]}
    assert post(None, batch).status_code == 401
    assert post("not-a-token", batch).status_code == 401
    # A's token presented for B is refused, and B gets nothing.
    assert post(token_a, batch, job_id=str(job_b.id)).status_code == 401
    assert MetricPoint.objects.filter(job=job_b).count() == 0
    assert post(token_a, batch, job_id=str(job_a.id)).status_code == 200


def test_it_refuses_a_revoked_token(make_job: Make) -> None:
    job, token = make_job()
    services.revoke_ingest_token(job.id)
    assert post(token, {"events": [metric(1, 1, 2.0)]}).status_code == 401


def test_it_refuses_a_terminal_jobs_token_after_the_grace(make_job: Make, settings) -> None:
    # given: a finished job
    job, token = make_job()
    services.finish_job(job.id, JobStatus.SUCCEEDED, "done")
    # then: still accepted inside the grace (final flush), refused after it
    assert post(token, {"events": [metric(1, 1, 2.0)]}).status_code == 200
    TrainingJob.objects.filter(id=job.id).update(finished_at=timezone.now() - timedelta(hours=1))
    assert post(token, {"events": [metric(2, 2, 1.0)]}).status_code == 401


def test_it_answers_413_for_too_many_events_and_stores_none(make_job: Make, settings) -> None:
    settings.INGEST_MAX_BATCH_EVENTS = 3
    job, token = make_job()
    response = post(token, {"events": [metric(i, i, 1.0) for i in range(1, 5)]})
    assert response.status_code == 413
    assert "at most 3" in response.json()["detail"]
    assert MetricPoint.objects.filter(job=job).count() == 0


def test_it_answers_413_for_a_body_over_the_byte_limit(make_job: Make, settings) -> None:
    settings.INGEST_MAX_BATCH_BYTES = 2048
    job, token = make_job()
    response = post(token, {"events": [metric(i, i, 1.0) for i in range(1, 40)]})
    assert response.status_code == 413
    assert MetricPoint.objects.filter(job=job).count() == 0


def test_it_answers_400_for_a_malformed_batch_and_stores_nothing_of_it(make_job: Make) -> None:
    job, token = make_job()
    bad_third = [
        metric(1, 1, 2.0),
        metric(2, 2, 1.0),
        {"seq": 3, "type": "metric", "ts": "x", "data": {}},
    ]
    cases = [
        (None, b"{not json"),
        ({"events": bad_third}, None),
        ({"events": [metric(2, 2, 1.0), metric(1, 1, 1.0)]}, None),
        ({"events": [{**metric(1, 1, 1.0), "type": "nonsense"}]}, None),
        ({"evts": []}, None),
    ]
    for body, raw in cases:
        response = post(token, body, raw=raw)
        assert response.status_code == 400, body
        assert response.json()["detail"]
    assert "events[2]" in post(token, {"events": bad_third}).json()["detail"]
    assert MetricPoint.objects.filter(job=job).count() == 0


def test_it_stores_predictions_with_their_scores(make_job: Make) -> None:
    job, token = make_job()
    event = {
        "seq": 1,
        "type": "prediction",
        "ts": timezone.now().isoformat(),
        "data": {
            "step": 5, "epoch": 0.5, "sample_id": "s0", "prompt": "<b>2+2</b>",
            "generated": "4", "expected": "4",
            "scores": {"bleu": 0.5, "rouge1": 1.0, "rouge2": 0.0, "rougeL": 1.0},
        },
    }  # fmt: skip
    assert post(token, {"events": [event]}).status_code == 200
    prediction = Prediction.objects.get(job=job)
    assert (prediction.prompt, prediction.bleu, prediction.rouge_l) == ("<b>2+2</b>", 0.5, 1.0)


def test_trainer_status_events_drive_the_job_lifecycle(make_job: Make) -> None:
    # given
    job, token = make_job()
    now = timezone.now().isoformat()
    started = {
        "seq": 1,
        "type": "status",
        "ts": now,
        "data": {"phase": "started", "trainable_params": 1000, "trainable_percent": 1.5},
    }
    done = {
        "seq": 2,
        "type": "status",
        "ts": now,
        "data": {"phase": "succeeded", "final_loss": 0.42, "adapter_path": "/out/adapter"},
    }
    # when
    post(token, {"events": [started]})
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    post(token, {"events": [done]})
    # then
    job.refresh_from_db()
    assert (job.status, job.final_loss, job.adapter_path) == (
        JobStatus.SUCCEEDED,
        0.42,
        "/out/adapter",
    )
    assert job.trained_model.base_model == "tuneboard/tiny-llama"
    assert JobEvent.objects.filter(job=job, message__contains="1,000 trainable").exists()


def test_it_answers_stop_once_a_stop_is_requested(make_job: Make) -> None:
    job, token = make_job()
    services.mark_running(job.id)
    services.request_stop(job.id, "user", "stop requested by the user")
    response = post(token, {"events": [metric(1, 1, 2.0)]})
    assert response.json()["command"] == "stop"


def test_a_failed_status_records_the_error(make_job: Make) -> None:
    job, token = make_job()
    failed = {
        "seq": 1,
        "type": "status",
        "ts": timezone.now().isoformat(),
        "data": {"phase": "failed", "error_type": "OSError", "message": "no model named x"},
    }
    post(token, {"events": [failed]})
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "OSError: no model named x"


def test_it_serves_the_spec_and_the_dataset(make_job: Make) -> None:
    job, token = make_job()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    spec = client.get("/api/ingest/v1/spec").json()
    assert spec["job_id"] == str(job.id)
    assert spec["config"]["training"]["max_steps"] == 10
    assert spec["dataset"]["format"] == "instruction"
    dataset = client.get(spec["dataset"]["url"])
    lines = b"".join(dataset.streaming_content).decode().splitlines()
    assert len(lines) == spec["dataset"]["rows"] == 20
    assert Client().get("/api/ingest/v1/spec").status_code == 401
