"""The pre-launch estimate: memory fit, hours, dollars, and the cheapest fitting offer."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from providers.base import GpuOffer
from providers.estimate import estimate, model_size, params_from_name

# docs/contracts.md §1 defaults, trimmed to what the estimate reads.
DEFAULTS: dict[str, Any] = {
    "model": {"name": "meta-llama/Llama-3.2-1B", "torch_dtype": "auto"},
    "data": {"eval_split": 0.1, "max_samples": None, "max_seq_length": 1024},
    "training": {
        "method": "sft", "num_epochs": 1, "batch_size": 4, "gradient_accumulation_steps": 1,
        "max_steps": -1, "optim": "adamw_torch", "gradient_checkpointing": False,
        "lora_r": 16, "lora_target_modules": None, "packing": False, "eval_steps": None,
        "quantization": {"load_in_4bit": False, "load_in_8bit": False,
                         "bnb_4bit_use_double_quant": True},
    },
}  # fmt: skip


def config(model: str, **training: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["model"]["name"] = model
    quant = training.pop("quantization", {})
    cfg["training"].update(training)
    cfg["training"]["quantization"].update(quant)
    return cfg


def offer(gpu_type: str, vram_gb: float, price: float | None, count: int = 1) -> GpuOffer:
    return GpuOffer("runpod", gpu_type, gpu_type, vram_gb, price, True, "SECURE", count)


RTX_4090 = offer("NVIDIA GeForce RTX 4090", 24, 0.69)
H100 = offer("NVIDIA H100 80GB HBM3", 80, 3.99)
QLORA = {"quantization": {"load_in_4bit": True}, "gradient_checkpointing": True}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("meta-llama/Llama-3.1-8B", 8.03e9),
        ("someone/Llama-3.1-8B-Instruct-finetune", 8e9),
        ("Qwen/Qwen2.5-0.5B-Instruct", 494e6),
        ("my-org/tiny-135M", 135e6),
        ("mistralai/Mixtral-8x7B-v0.1", 56e9),
    ],
)
def test_it_reads_the_parameter_count_from_the_model_name(name: str, params: float) -> None:
    assert model_size(name).params == pytest.approx(params)


def test_a_name_without_a_size_is_unknown_and_nothing_claims_to_fit() -> None:
    assert params_from_name("gpt2-xl") is None

    result = estimate(config("someone/mystery-model"), 1e6, [RTX_4090])

    assert result.model.source == "unknown"
    assert result.offers[0].fits is None and result.cheapest is None


def test_an_8b_model_in_4_bit_fits_a_24_gb_gpu() -> None:
    result = estimate(config("meta-llama/Llama-3.1-8B", **QLORA), 1e6, [RTX_4090])

    assert result.offers[0].fits
    assert result.memory is not None and 5 < result.memory.weights_gib < 6.5


def test_an_8b_model_in_bf16_without_checkpointing_does_not_fit_24_gb() -> None:
    result = estimate(config("meta-llama/Llama-3.1-8B"), 1e6, [RTX_4090, H100])

    assert [o.fits for o in result.offers] == [False, True]


def test_a_70b_model_in_bf16_lora_does_not_fit_80_gb() -> None:
    result = estimate(config("meta-llama/Llama-3.1-70B"), 1e6, [H100])

    assert result.offers[0].fits is False
    assert result.memory is not None and result.memory.weights_gib > 80


def test_several_gpus_with_device_map_auto_add_memory_not_speed() -> None:
    cfg = config("meta-llama/Llama-3.1-70B", gradient_checkpointing=True)
    four = offer("NVIDIA H100 80GB HBM3", 80, 4 * 3.99, count=4)

    one_gpu, four_gpus = estimate(cfg, 1e6, [H100, four]).offers

    assert (one_gpu.fits, four_gpus.fits) == (False, True)
    assert four_gpus.tokens_per_s == pytest.approx(one_gpu.tokens_per_s)


def test_the_cheapest_fitting_offer_is_marked_by_total_dollars_not_hourly_rate() -> None:
    cfg = config("meta-llama/Llama-3.1-8B")  # bf16, no checkpointing: only the 80 GB cards fit
    a100 = offer("NVIDIA A100-SXM4-80GB", 80, 1.79)
    unpriced = offer("NVIDIA H100 PCIe", 80, None)

    result = estimate(cfg, 20e6, [RTX_4090, H100, a100, unpriced])

    # the H100 costs 2.2x per hour but trains 3.2x faster (989 vs 312 TFLOPs)
    assert [o.cheapest for o in result.offers] == [False, True, False, False]
    h100_row, a100_row = result.offers[1], result.offers[2]
    assert h100_row.dollars is not None and a100_row.dollars is not None
    assert h100_row.dollars < a100_row.dollars
    assert h100_row.dollars == pytest.approx(h100_row.hours * 3.99)  # type: ignore[operator]


def test_an_unavailable_offer_is_never_the_cheapest() -> None:
    sold_out = GpuOffer("runpod", "NVIDIA RTX A6000", "A6000", 48, 0.01, False, "SECURE")

    result = estimate(config("meta-llama/Llama-3.2-1B"), 1e6, [sold_out, H100])

    assert result.cheapest is not None and result.cheapest.offer == H100


def test_training_hours_scale_with_epochs() -> None:
    one = estimate(config("meta-llama/Llama-3.1-8B", **QLORA), 50e6, [H100]).offers[0]
    three = estimate(config("meta-llama/Llama-3.1-8B", num_epochs=3, **QLORA), 50e6, [H100])

    assert one.hours is not None and three.offers[0].hours is not None
    startup = 0.15
    assert three.offers[0].hours - startup == pytest.approx(3 * (one.hours - startup))


def test_max_steps_wins_over_epochs() -> None:
    cfg = config("meta-llama/Llama-3.2-1B", max_steps=10, num_epochs=50)

    result = estimate(cfg, 1e9, [H100])

    # 10 steps of 4 rows of at most 1024 tokens (+ one evaluation pass), not 50 epochs of 1e9
    assert result.train_tokens < 50e6
