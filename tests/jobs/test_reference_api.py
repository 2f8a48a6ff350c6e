"""The reference system's endpoints answer their documented shapes."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.test import APIClient

from jobs import services
from jobs.models import Dataset


def reference_config(dataset: Dataset) -> dict:
    return {
        "name": "ref-sft",
        "model": {"name": "meta-llama/Llama-3.2-1B", "device_map": "auto", "torch_dtype": "bfloat16"},
        "data": {"train_path": dataset.original_filename, "eval_split": 0.1, "max_samples": 1000},
        "training": {
            "method": "sft", "num_epochs": 2, "learning_rate": 0.0002, "batch_size": 4,
            "gradient_accumulation_steps": 2, "max_steps": -1, "warmup_steps": 10,
            "weight_decay": 0.01, "optim": "paged_adamw_8bit", "gradient_checkpointing": True,
            "bf16": True, "fp16": False, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
            "lora_target_modules": ["q_proj", "v_proj"],
            "quantization": {"load_in_4bit": True, "load_in_8bit": False,
                             "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16"},
        },
        "predictions": {"enabled": True, "sample_count": 5, "sample_frequency": "steps",
                        "step_interval": 50, "max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9},
    }  # fmt: skip


def test_configurations_are_created_and_read_back(api: APIClient, make_dataset) -> None:
    dataset = make_dataset()
    created = api.post("/api/training/configurations", reference_config(dataset), format="json")
    assert created.status_code == 201, created.json()
    body = api.get(f"/api/training/configurations/{created.json()['id']}").json()
    assert body["dataset_id"] == str(dataset.id)
    assert body["config"]["training"]["quantization"]["load_in_4bit"] is True


def test_deploy_answers_the_deployment_shape(api: APIClient, make_dataset) -> None:
    # given
    dataset = make_dataset()
    config_id = api.post(
        "/api/training/configurations", reference_config(dataset), format="json"
    ).json()["id"]
    # when
    response = api.post(
        "/api/training/deploy/runpod",
        {
            "training_config_id": config_id, "gpu_type": "NVIDIA GeForce RTX 4090", "gpu_count": 1,
            "volume_size_gb": 50, "environment_variables": {"WANDB_DISABLED": "true"},
            "budget_limit": 5, "alert_threshold": 0.8,
        },
        format="json",
    )  # fmt: skip
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {
        "deployment_id",
        "pod_id",
        "pod_url",
        "status",
        "gpu_type",
        "gpu_count",
        "cost",
        "created_at",
    }
    assert set(body["cost"]) == {"estimated_cost", "cost_per_hour", "actual_cost"}
    assert (body["status"], body["gpu_type"]) == ("queued", "NVIDIA GeForce RTX 4090")
    status = api.get(f"/api/training/deploy/runpod?pod_id={body['deployment_id']}").json()
    assert set(status["metrics"]) == {
        "epoch",
        "step",
        "loss",
        "learning_rate",
        "progress_percentage",
    }
    assert status["logs"] and "queued" in status["logs"][0]


def test_metrics_and_predictions_answer_their_shapes(api: APIClient, make_job) -> None:
    # given: three logged steps in the first epoch and one prediction
    job, _ = make_job()
    now = timezone.now()
    events = [
        services.IngestEvent(
            i,
            "metric",
            now,
            {"step": i, "epoch": i / 4, "values": {"loss": 3.0 - i, "learning_rate": 1e-4 * i}},
        )
        for i in range(1, 4)
    ]
    events.append(
        services.IngestEvent(
            4,
            "prediction",
            now,
            {
                "step": 3,
                "epoch": 0.75,
                "sample_id": "s1",
                "prompt": "p",
                "generated": "g",
                "expected": "e",
                "scores": {"bleu": 0.1, "rougeL": 0.2},
            },
        )
    )
    services.record_events(job.id, events)
    # when
    metrics = api.get(f"/api/training/metrics/{job.id}?epoch=1&limit=2&offset=1").json()
    predictions = api.get(f"/api/training/predictions/{job.id}?epoch=1&limit=50").json()
    # then
    assert metrics["total_count"] == 3
    assert [m["step"] for m in metrics["metrics"]] == [2, 3]
    assert set(metrics["metrics"][0]) == {"step", "epoch", "loss", "learning_rate", "timestamp"}
    assert metrics["metrics"][0]["learning_rate"] == 2e-4
    assert predictions["predictions"] == [
        {
            "sample_id": "s1",
            "epoch": 0.75,
            "step": 3,
            "prompt": "p",
            "generated": "g",
            "expected": "e",
            "metrics": {"bleu": 0.1, "rouge_l": 0.2},
        }
    ]
    assert api.get(f"/api/training/metrics/{job.id}?epoch=2").json()["total_count"] == 0


def test_the_openapi_schema_is_served(api: APIClient) -> None:
    response = api.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/jobs" in response.content.decode() or "/api/jobs/" in response.content.decode()
