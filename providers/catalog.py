"""The GPU catalogue: what each provider rents, its VRAM and list price, and how fast it trains.

Static figures come from ``../shared/provider-specs/README.md`` (cited per table below); where a
provider publishes live prices (RunPod ``GET /v2/catalog/gpus``), :func:`merged_offers` lays them
over the static table. Prices move often: the static table is a fallback, never the bill.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from providers.base import GpuOffer, Provider, ProviderError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPodGpu:
    id: str
    name: str
    memory_gb: int
    secure: float
    community: float
    gpu_class: str


# RunPod on-demand $/GPU/h, Secure / Community (README §5). H100 and A100 rows: the latest dated
# snapshot, 2026-11-09 (`datareceipts/data-receipts` 109-gpu-pricing/vendors.json, §5.2). The other
# rows only have the 2025-06-21 GraphQL dump (`Jumbo2020/gpu_prices` 13a47f94, §5.1): no dated 2026
# source exists for them (README: UNVERIFIED). VRAM from the GPU names / NVIDIA datasheets.
RUNPOD_GPUS: tuple[RunPodGpu, ...] = (
    RunPodGpu("NVIDIA RTX A4000", "RTX A4000", 16, 0.24, 0.17, "A4000"),
    RunPodGpu("NVIDIA RTX A5000", "RTX A5000", 24, 0.26, 0.16, "A5000"),
    RunPodGpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, "RTX4090"),
    RunPodGpu("NVIDIA RTX A6000", "RTX A6000", 48, 0.49, 0.33, "A6000"),
    RunPodGpu("NVIDIA L40S", "L40S", 48, 0.86, 0.79, "L40S"),
    RunPodGpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.79, 1.19, "A100"),
    RunPodGpu("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.79, 1.39, "A100"),
    RunPodGpu("NVIDIA H100 PCIe", "H100 PCIe", 80, 2.89, 1.99, "H100-PCIe"),
    RunPodGpu("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 3.99, 2.69, "H100-SXM"),
    RunPodGpu("NVIDIA H100 NVL", "H100 NVL", 94, 3.19, 2.59, "H100-NVL"),
)


def _runpod_static() -> list[GpuOffer]:
    offers = []
    for gpu in RUNPOD_GPUS:
        for cloud, price in (("SECURE", gpu.secure), ("COMMUNITY", gpu.community)):
            offers.append(GpuOffer("runpod", gpu.id, gpu.name, gpu.memory_gb, price, True, cloud))
    return offers


# Hugging Face Spaces hardware, $/h for the whole flavor (README §3.5, from
# `huggingface/hub-docs` docs/hub/spaces-gpus.md @ 34ee0f00, 2026-07-21).
_HF: tuple[tuple[str, str, float, float, int], ...] = (
    ("t4-small", "Nvidia T4 small", 16, 0.40, 1),
    ("t4-medium", "Nvidia T4 medium", 16, 0.60, 1),
    ("l4x1", "1x L4", 24, 0.80, 1),
    ("l4x4", "4x L4", 24, 3.80, 4),
    ("a10g-small", "A10G small", 24, 1.00, 1),
    ("a10g-large", "A10G large", 24, 1.50, 1),
    ("a10g-largex2", "2x A10G large", 24, 3.00, 2),
    ("a10g-largex4", "4x A10G large", 24, 5.00, 4),
    ("l40sx1", "1x L40S", 48, 1.80, 1),
    ("l40sx4", "4x L40S", 48, 8.30, 4),
    ("l40sx8", "8x L40S", 48, 23.50, 8),
    ("a100-large", "A100 large", 80, 2.50, 1),
    ("a100x4", "4x A100", 80, 10.00, 4),
    ("a100x8", "8x A100", 80, 20.00, 8),
)

# Lambda instance types. The spec (lambda-cloud-v1.openapi.json) only names gpu_1x_a10,
# gpu_8x_a100 and gpu_8x_h100_sxm5gdr in examples and has no price list (prices come live from
# GET /api/v1/instance-types as price_cents_per_hour): prices stay None until that client exists.
# VRAM per GPU is from NVIDIA datasheets; the other type names are UNVERIFIED.
_LAMBDA: tuple[tuple[str, str, float, int], ...] = (
    ("gpu_1x_a10", "1x A10 (24 GB PCIe)", 24, 1),
    ("gpu_1x_a6000", "1x RTX A6000 (48 GB)", 48, 1),
    ("gpu_1x_a100_sxm4", "1x A100 (40 GB SXM4)", 40, 1),
    ("gpu_1x_h100_pcie", "1x H100 (80 GB PCIe)", 80, 1),
    ("gpu_8x_a100", "8x A100 (40 GB SXM4)", 40, 8),
    ("gpu_8x_h100_sxm5gdr", "8x H100 (80 GB SXM5)", 80, 8),
)

# Kaggle accelerators (README §4.1: machine_shape names "as of Feb 2026"). Kaggle GPU time is free
# within a weekly quota (Kaggle's docs; not in the README: UNVERIFIED), hence $0. Only the two
# shapes open to everyone are listed; VRAM from NVIDIA datasheets (the T4 shape has 2 GPUs).
_KAGGLE: tuple[tuple[str, str, float, int], ...] = (
    ("NvidiaTeslaP100", "Tesla P100", 16, 1),
    ("NvidiaTeslaT4", "2x Tesla T4", 16, 2),
)


def static_offers(provider: str | None = None) -> list[GpuOffer]:
    """The static table, for one provider or all (the local machine is probed, not listed)."""
    offers = _runpod_static()
    offers += [GpuOffer("hf", i, n, v, p, True, "", c) for i, n, v, p, c in _HF]
    offers += [GpuOffer("lambda", i, n, v, None, True, "", c) for i, n, v, c in _LAMBDA]
    offers += [GpuOffer("kaggle", i, n, v, 0.0, True, "", c) for i, n, v, c in _KAGGLE]
    return [o for o in offers if provider is None or o.provider == provider]


def merged_offers(static: Iterable[GpuOffer], live: Iterable[GpuOffer]) -> list[GpuOffer]:
    """Static offers with live ones laid over them (same provider, GPU type and cloud)."""
    merged = {(o.provider, o.gpu_type, o.cloud): o for o in static}
    for offer in live:
        merged[(offer.provider, offer.gpu_type, offer.cloud)] = offer
    return list(merged.values())


def catalog(providers: Mapping[str, Provider] | None = None) -> list[GpuOffer]:
    """Every known offer: the static table, refreshed by each given provider's live ``offers()``.

    A provider that cannot answer (no key, down, throttled) leaves its static rows in place: the
    catalogue is for estimates, and a stale price there beats an empty page.
    """
    offers = static_offers()
    for name, provider in (providers or {}).items():
        try:
            live = provider.offers()
        except ProviderError as exc:
            logger.warning("live offers from %s unavailable, using static prices: %s", name, exc)
            continue
        offers = merged_offers(offers, live)
    return offers


def scaled(offer: GpuOffer, gpu_count: int) -> GpuOffer:
    """A per-GPU offer (RunPod) as a ``gpu_count``-GPU pod: VRAM stays per GPU, price scales."""
    price = None if offer.price_per_hour is None else offer.price_per_hour * gpu_count
    return replace(offer, gpu_count=gpu_count, price_per_hour=price)


# -- Throughput ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuClass:
    name: str
    peak_tflops: float  # dense BF16/FP16 tensor-core peak, no sparsity


# Dense 16-bit tensor peaks from NVIDIA's product datasheets (not in the README; figures as
# published for the SXM/PCIe part named, without the 2:4-sparsity doubling). RTX 4090 is the
# FP32-accumulate figure, which is what BF16 training uses. CPU is a rough allowance for a
# few AVX-512 cores so that "local, CPU only" still gets an (honestly slow) estimate.
GPU_CLASSES: dict[str, GpuClass] = {
    c.name: c
    for c in (
        GpuClass("cpu", 1.0),
        GpuClass("P100", 18.7),
        GpuClass("T4", 65.0),
        GpuClass("A4000", 76.7),
        GpuClass("A10G", 70.0),
        GpuClass("A10", 125.0),
        GpuClass("A5000", 111.1),
        GpuClass("L4", 121.0),
        GpuClass("A6000", 154.8),
        GpuClass("RTX4090", 165.2),
        GpuClass("L40S", 362.1),
        GpuClass("A100", 312.0),
        GpuClass("H100-PCIe", 756.0),
        GpuClass("H100-NVL", 835.0),
        GpuClass("H100-SXM", 989.0),
        GpuClass("H200", 989.0),
        GpuClass("B200", 2250.0),
    )
}

# Model FLOPs utilisation of a LoRA fine-tune with transformers + peft: 30-40 % is what well-fed
# single-GPU runs reach; 0.35 is the planning figure. A CPU reaches far less of its peak.
MFU = 0.35
CPU_MFU = 0.2

# Substrings of a GPU type id / display name → class; first match wins, so the more specific
# names come first ("H100 NVL" before "H100", "A10G" before "A10", "L40S" before "L4").
_CLASS_PATTERNS: tuple[tuple[str, str], ...] = (
    ("h100 nvl", "H100-NVL"),
    ("h100 pcie", "H100-PCIe"),
    ("h100_pcie", "H100-PCIe"),
    ("h100", "H100-SXM"),
    ("h200", "H200"),
    ("b200", "B200"),
    ("a100", "A100"),
    ("l40s", "L40S"),
    ("l4", "L4"),
    ("a10g", "A10G"),
    ("a10", "A10"),
    ("4090", "RTX4090"),
    ("a6000", "A6000"),
    ("a5000", "A5000"),
    ("a4000", "A4000"),
    ("t4", "T4"),
    ("p100", "P100"),
    ("cpu", "cpu"),
)


def gpu_class_of(offer: GpuOffer) -> GpuClass | None:
    """The throughput class of an offer, from its GPU type id or display name."""
    for gpu in RUNPOD_GPUS:
        if gpu.id == offer.gpu_type:
            return GPU_CLASSES[gpu.gpu_class]
    text = f"{offer.gpu_type} {offer.display_name}".lower()
    for pattern, name in _CLASS_PATTERNS:
        if re.search(rf"(^|[^a-z0-9]){re.escape(pattern)}", text):
            return GPU_CLASSES[name]
    return None


def lora_tokens_per_s_per_billion(gpu: GpuClass, flops_per_token_per_param: float = 4.0) -> float:
    """LoRA training tokens/s for a 1-billion-parameter model on one GPU of this class.

    Derived from FLOPs, not measured: throughput = peak x MFU / (k · N), where k · N is the
    training FLOPs per token. Full fine-tuning costs k = 6 (2 forward + 4 backward); LoRA skips
    the gradients of the frozen weights (about a third of the backward), so k ≈ 4, and gradient
    checkpointing adds one more forward pass (k ≈ 6). Divide by the size in billions for a model.
    E.g. H100 SXM: 989e12 x 0.35 / (4 x 1e9) ≈ 86.5k tokens/s per B → 10.8k tokens/s for 8B.
    """
    mfu = CPU_MFU if gpu.name == "cpu" else MFU
    return gpu.peak_tflops * 1e12 * mfu / (flops_per_token_per_param * 1e9)
