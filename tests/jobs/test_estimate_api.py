from __future__ import annotations

from rest_framework.test import APIClient


def estimate(api: APIClient, model: str, **extra: object) -> dict:
    config = {"name": "e", "model": {"name": model}, **extra}
    response = api.post("/api/estimate", {"config": config}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_it_marks_the_cheapest_offer_that_fits(api: APIClient) -> None:
    body = estimate(
        api, "meta-llama/Llama-3.1-8B", training={"quantization": {"load_in_4bit": True}}
    )
    cheapest = [o for o in body["offers"] if o["cheapest"]]
    assert len(cheapest) == 1
    fitting_prices = [
        o["cost"] for o in body["offers"] if o["fits"] and o["cost"] is not None and o["available"]
    ]
    assert cheapest[0]["cost"] == min(fitting_prices)
    assert body["model_params"] == 8.0e9 or body["model_params"] > 7e9


def test_a_70b_model_in_bf16_does_not_fit_a_24gb_card(api: APIClient) -> None:
    body = estimate(api, "meta-llama/Llama-3.1-70B")
    rtx = next(o for o in body["offers"] if o["gpu_type"] == "NVIDIA GeForce RTX 4090")
    assert rtx["fits"] is False


def test_the_estimate_uses_the_dataset_size(api: APIClient, make_dataset) -> None:
    dataset = make_dataset()
    config = {"name": "e", "model": {"name": "Qwen/Qwen2.5-0.5B"}}
    body = api.post(
        "/api/estimate", {"config": config, "dataset_id": str(dataset.id)}, format="json"
    ).json()
    assert body["dataset_tokens"] == dataset.stats["approx_tokens_total"]


def test_config_errors_name_their_field(api: APIClient) -> None:
    response = api.post(
        "/api/estimate",
        {"config": {"name": "e", "model": {"name": "x/y"}, "training": {"lora_r": 0}}},
        format="json",
    )
    assert response.status_code == 400
    assert "training.lora_r" in response.json()


def test_an_outsiders_dataset_is_not_found(outsider_api: APIClient, make_dataset) -> None:
    dataset = make_dataset()
    config = {"name": "e", "model": {"name": "x/y"}}
    response = outsider_api.post(
        "/api/estimate", {"config": config, "dataset_id": str(dataset.id)}, format="json"
    )
    assert response.status_code == 400
