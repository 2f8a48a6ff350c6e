from __future__ import annotations

from collections.abc import Callable

from rest_framework.test import APIClient

from jobs.models import Dataset


def test_it_saves_a_config_with_every_default_filled(
    api: APIClient, make_dataset: Callable[..., Dataset]
) -> None:
    dataset = make_dataset()
    body = {
        "name": "first",
        "model": {"name": "Qwen/Qwen2.5-0.5B"},
        "data": {"dataset_id": str(dataset.id)},
    }
    response = api.post("/api/configs", {"config": body}, format="json")
    assert response.status_code == 201, response.json()
    saved = response.json()
    assert saved["dataset_id"] == str(dataset.id)
    assert saved["config"]["training"]["lora_r"] == 16
    assert api.get(f"/api/configs/{saved['id']}").json()["name"] == "first"


def test_it_names_each_invalid_field(api: APIClient) -> None:
    body = {
        "name": "bad",
        "model": {"name": "x/y"},
        "data": {"dataset_id": None},
        "training": {
            "learning_rate": -1,
            "method": "ppo",
            "quantization": {"load_in_4bit": True, "load_in_8bit": True},
        },
        "predictions": {"temperature": 9},
    }
    response = api.post("/api/configs", {"config": body}, format="json")
    assert response.status_code == 400
    errors = response.json()["config"]
    for field in ("training.learning_rate", "training.method", "predictions.temperature"):
        assert field in errors, errors


def test_it_refuses_4bit_and_8bit_together(api: APIClient) -> None:
    body = {
        "name": "q",
        "model": {"name": "x/y"},
        "training": {"quantization": {"load_in_4bit": True, "load_in_8bit": True}},
    }
    errors = api.post("/api/configs", {"config": body}, format="json").json()["config"]
    assert "training.quantization.load_in_4bit" in errors


def test_dpo_needs_a_preference_dataset(
    api: APIClient, make_dataset: Callable[..., Dataset]
) -> None:
    dataset = make_dataset()  # instruction rows
    body = {
        "name": "d",
        "model": {"name": "x/y"},
        "data": {"dataset_id": str(dataset.id)},
        "training": {"method": "dpo"},
    }
    response = api.post("/api/training/configurations", body, format="json")
    assert response.status_code == 400
    assert "preference" in response.json()["training.method"][0]


def test_it_hides_a_config_from_another_user(
    api: APIClient, outsider_api: APIClient, make_config
) -> None:
    config = make_config()
    assert outsider_api.get(f"/api/configs/{config.id}").status_code == 404
    assert outsider_api.delete(f"/api/configs/{config.id}").status_code == 404
    assert outsider_api.get(f"/api/training/configurations/{config.id}").status_code == 404
    assert api.get(f"/api/configs/{config.id}").status_code == 200


def test_it_does_not_link_another_users_dataset(
    outsider_api: APIClient, make_dataset: Callable[..., Dataset]
) -> None:
    dataset = make_dataset()
    body = {"name": "steal", "model": {"name": "x/y"}, "data": {"dataset_id": str(dataset.id)}}
    response = outsider_api.post("/api/configs", {"config": body}, format="json")
    assert response.status_code == 400
