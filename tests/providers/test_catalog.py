"""The GPU catalogue: static table, live prices laid over it, GPU classes and throughput."""

from __future__ import annotations

import pytest

from providers.catalog import (
    GPU_CLASSES,
    catalog,
    gpu_class_of,
    lora_tokens_per_s_per_billion,
    static_offers,
)
from providers.fakes.runpod import FakeRunPod
from providers.runpod import RunPodProvider


def test_every_static_offer_has_vram_and_a_throughput_class() -> None:
    for offer in static_offers():
        assert offer.vram_gb > 0, offer
        assert gpu_class_of(offer) is not None, offer


def test_live_runpod_prices_replace_the_static_ones(fake: FakeRunPod) -> None:
    live = RunPodProvider(fake.api_key, base_url=fake.url)
    fake.set_no_capacity("NVIDIA L40S")

    offers = {(o.provider, o.gpu_type, o.cloud): o for o in catalog({"runpod": live})}

    l40s = offers[("runpod", "NVIDIA L40S", "SECURE")]
    assert not l40s.available  # live availability came through
    assert ("hf", "a100-large", "") in offers  # other providers keep their static rows


def test_an_unreachable_provider_leaves_the_static_prices() -> None:
    dead = RunPodProvider("key", base_url="http://127.0.0.1:9", max_retries=0, timeout=0.5)

    assert catalog({"runpod": dead}) == static_offers()


def test_throughput_is_derived_from_peak_flops_and_mfu() -> None:
    # 989 TFLOPs x 0.35 MFU / (4 FLOPs x 1e9 params) per token
    assert lora_tokens_per_s_per_billion(GPU_CLASSES["H100-SXM"]) == pytest.approx(86_537.5)
