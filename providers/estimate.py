"""Pre-launch estimate (DESIGN §7): does the fine-tune fit each offer's GPU memory, how long would
it take and what would it cost, and which fitting offer is cheapest.

Pure functions over the training config of docs/contracts.md §1 (a plain dict), the model size,
the dataset's token count and a list of :class:`GpuOffer`. Every figure is a planning estimate:
the formulas and their sources are in the docstrings, so a surprising number can be checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from providers.base import GpuOffer
from providers.catalog import gpu_class_of, lora_tokens_per_s_per_billion

GIB = 1024**3

# (parameters, layers, hidden size, vocabulary) from each model's config.json on the Hub. Keys are
# lowercased repo ids; the name alone (after the "/") also matches.
KNOWN_MODELS: dict[str, tuple[float, int, int, int]] = {
    "gpt2": (124e6, 12, 768, 50257),
    "huggingfacetb/smollm2-135m": (135e6, 30, 576, 49152),
    "huggingfacetb/smollm2-360m": (362e6, 32, 960, 49152),
    "huggingfacetb/smollm2-1.7b": (1.71e9, 24, 2048, 49152),
    "qwen/qwen2.5-0.5b": (494e6, 24, 896, 151936),
    "qwen/qwen2.5-1.5b": (1.54e9, 28, 1536, 151936),
    "qwen/qwen2.5-3b": (3.09e9, 36, 2048, 151936),
    "qwen/qwen2.5-7b": (7.62e9, 28, 3584, 152064),
    "qwen/qwen2.5-14b": (14.8e9, 48, 5120, 152064),
    "tinyllama/tinyllama-1.1b-chat-v1.0": (1.10e9, 22, 2048, 32000),
    "meta-llama/llama-3.2-1b": (1.24e9, 16, 2048, 128256),
    "meta-llama/llama-3.2-3b": (3.21e9, 28, 3072, 128256),
    "meta-llama/llama-3.1-8b": (8.03e9, 32, 4096, 128256),
    "meta-llama/meta-llama-3-8b": (8.03e9, 32, 4096, 128256),
    "meta-llama/llama-3.1-70b": (70.6e9, 80, 8192, 128256),
    "meta-llama/llama-3.3-70b-instruct": (70.6e9, 80, 8192, 128256),
    "meta-llama/llama-2-7b-hf": (6.74e9, 32, 4096, 32000),
    "meta-llama/llama-2-13b-hf": (13.0e9, 40, 5120, 32000),
    "mistralai/mistral-7b-v0.1": (7.24e9, 32, 4096, 32000),
    "mistralai/mistral-7b-v0.3": (7.25e9, 32, 4096, 32768),
    "google/gemma-2-2b": (2.61e9, 26, 2304, 256000),
    "google/gemma-2-9b": (9.24e9, 42, 3584, 256000),
    "microsoft/phi-2": (2.78e9, 32, 2560, 51200),
    "microsoft/phi-3-mini-4k-instruct": (3.82e9, 32, 3072, 32064),
}
_INSTRUCT_SUFFIX = re.compile(r"-(instruct|chat|it|hf)$")
# Sizes in names: "8B", "0.5b", "135M"; "8x7B" (mixture of experts: all experts sit in memory).
_SIZE = re.compile(r"(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?![a-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class ModelSize:
    params: float | None
    layers: int | None
    hidden: int | None
    vocab: int | None
    source: Literal["known", "name", "given", "unknown"]


def params_from_name(name: str) -> float | None:
    """The parameter count a model's name states ("Llama-3.1-8B" → 8e9), the largest if several."""
    sizes = []
    for experts, number, unit in _SIZE.findall(name.rsplit("/", 1)[-1]):
        size = float(number) * (1e9 if unit.lower() == "b" else 1e6) * int(experts or 1)
        sizes.append(size)
    return max(sizes) if sizes else None


def model_size(name: str, params: float | None = None) -> ModelSize:
    """Size and shape of a model: the known table, else the size in its name, else unknown.

    ``params`` (e.g. read from the checkpoint) wins over both for the count.
    """
    known = _known(name)
    if known is not None:
        count, layers, hidden, vocab = known
        return ModelSize(params or count, layers, hidden, vocab, "given" if params else "known")
    guessed = params or params_from_name(name)
    if guessed is None:
        return ModelSize(None, None, None, None, "unknown")
    hidden = _hidden_for(guessed)
    layers = max(1, round(guessed / (13 * hidden**2)))
    return ModelSize(guessed, layers, hidden, 128256, "given" if params else "name")


def _known(name: str) -> tuple[float, int, int, int] | None:
    key = name.strip().lower()
    candidates = [key, _INSTRUCT_SUFFIX.sub("", key)]
    for candidate in candidates:
        if candidate in KNOWN_MODELS:
            return KNOWN_MODELS[candidate]
    base = key.rsplit("/", 1)[-1]
    for model, shape in KNOWN_MODELS.items():
        if model.rsplit("/", 1)[-1] in (base, _INSTRUCT_SUFFIX.sub("", base)):
            return shape
    return None


def _hidden_for(params: float) -> int:
    # Llama-family widths grow about as the cube root of size (1B→2048, 8B→4096, 70B→8192).
    return max(256, round(2048 * (params / 1e9) ** (1 / 3) / 128) * 128)


# -- memory --------------------------------------------------------------------------------------

# LoRA adapter size per layer, in units of the hidden size d, for each target module: (in + out)
# features of a Llama-style block with 4:1 grouped-query attention and a 3.5 d SwiGLU MLP.
_LORA_UNITS = {
    "q_proj": 2.0, "k_proj": 1.25, "v_proj": 1.25, "o_proj": 2.0,
    "gate_proj": 4.5, "up_proj": 4.5, "down_proj": 4.5,
}  # fmt: skip
ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN = 40  # per layer, 16-bit; see estimate_memory
CUDA_CONTEXT_GIB = 0.8
FRAGMENTATION = 0.10


@dataclass(frozen=True)
class MemoryEstimate:
    """GiB needed by one training run (all GPUs together), by component."""

    weights_gib: float
    lora_gib: float
    activations_gib: float
    logits_gib: float
    overhead_gib: float
    total_gib: float
    lora_params: float


def estimate_memory(config: Mapping[str, Any], model: ModelSize) -> MemoryEstimate | None:
    """GPU memory for a LoRA / QLoRA fine-tune, None if the model size is unknown.

    total = (weights + lora + activations + logits) x (1 + 10 % fragmentation) + 0.8 GiB context

    - weights: N x bits/8. 4-bit NF4 is 4.5 bits/param with its block-64 fp32 scales, 4.13 with
      double quantisation; 8-bit is 8 bits; else 16 (``torch_dtype`` float32: 32). Embeddings and
      the LM head (2 x vocab x d) stay 16-bit under bitsandbytes.
    - lora: P_lora = r x layers x d x Σ units(target) (table above; ``null``/"all-linear" = all
      seven projections), each trainable param costing 4 (fp32 weight) + 4 (grad) + 8 (AdamW
      moments; 2 for 8-bit optimisers) bytes.
    - activations (16-bit, SDPA attention so no s² term; Korthikanti et al. 2022 give 34·s·b·d
      bytes per layer for a GeLU block, ~40 for SwiGLU): 40·s·b·d·layers; with gradient
      checkpointing only each layer's input (2·s·b·d) is kept, plus one layer recomputed.
    - logits: b·s·vocab x 8 bytes (fp32 logits and their gradient for the loss).
    - DPO / ORPO run chosen and rejected together: activations and logits double.
    """
    if model.params is None or model.layers is None or model.hidden is None:
        return None
    training, quant = config.get("training", {}), config.get("training", {}).get("quantization", {})
    n, d, layers, vocab = model.params, model.hidden, model.layers, model.vocab or 128256
    embed = min(n / 2, 2 * vocab * d)
    weights = (n - embed) * _weight_bits(config) / 8 + embed * 2
    if not (quant.get("load_in_4bit") or quant.get("load_in_8bit")):
        weights = n * _weight_bits(config) / 8
    lora_params = training.get("lora_r", 16) * layers * d * _lora_units(training)
    optim_bytes = 2 if "8bit" in str(training.get("optim", "")) else 8
    lora = lora_params * (4 + 4 + optim_bytes)
    tokens = training.get("batch_size", 4) * config.get("data", {}).get("max_seq_length", 1024)
    if training.get("method", "sft") in ("dpo", "orpo"):
        tokens *= 2
    full_layer = ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN * tokens * d
    if training.get("gradient_checkpointing"):
        activations = 2 * tokens * d * layers + full_layer
    else:
        activations = full_layer * layers
    logits = tokens * vocab * 8
    subtotal = (weights + lora + activations + logits) / GIB
    overhead = subtotal * FRAGMENTATION + CUDA_CONTEXT_GIB
    return MemoryEstimate(
        weights_gib=weights / GIB,
        lora_gib=lora / GIB,
        activations_gib=activations / GIB,
        logits_gib=logits / GIB,
        overhead_gib=overhead,
        total_gib=subtotal + overhead,
        lora_params=lora_params,
    )


def _weight_bits(config: Mapping[str, Any]) -> float:
    quant = config.get("training", {}).get("quantization", {})
    if quant.get("load_in_4bit"):
        return 4.13 if quant.get("bnb_4bit_use_double_quant", True) else 4.5
    if quant.get("load_in_8bit"):
        return 8.0
    return 32.0 if config.get("model", {}).get("torch_dtype") == "float32" else 16.0


def _lora_units(training: Mapping[str, Any]) -> float:
    targets = training.get("lora_target_modules")
    if targets is None or targets == "all-linear":
        return sum(_LORA_UNITS.values())
    return sum(_LORA_UNITS.get(str(t), 2.0) for t in targets)


# -- time and money ------------------------------------------------------------------------------

# Provisioning, image pull, install and model download before the first step, then the final
# save/upload: a fixed allowance, so that a tiny job is not priced at a few seconds.
STARTUP_HOURS = 0.15


def training_tokens(
    config: Mapping[str, Any], dataset_tokens: float, dataset_rows: int | None = None
) -> float:
    """Tokens the run processes: train split x epochs, or max_steps x tokens per step.

    Rows are truncated at ``max_seq_length``; with rows unknown, the average row is assumed to
    fit. Evaluation forward passes (once per epoch, or every ``eval_steps``) are counted at the
    cost of a third of a training token.
    """
    data, training = config.get("data", {}), config.get("training", {})
    seq = data.get("max_seq_length", 1024)
    eval_split = data.get("eval_split", 0.1) or 0.0
    rows = dataset_rows
    per_row = min(dataset_tokens / rows, seq) if rows else None
    if rows and data.get("max_samples"):
        rows = min(rows, data["max_samples"])
    epoch = (rows * per_row if rows and per_row else dataset_tokens) * (1 - eval_split)
    per_step = training.get("batch_size", 4) * training.get("gradient_accumulation_steps", 1)
    step_tokens = per_step * (seq if training.get("packing") or per_row is None else per_row)
    if training.get("max_steps", -1) > 0:
        train = training["max_steps"] * step_tokens
        evals = 1.0
    else:
        train = epoch * training.get("num_epochs", 1)
        evals = float(training.get("num_epochs", 1))
    if training.get("eval_steps"):
        evals = max(evals, train / step_tokens / training["eval_steps"])
    eval_tokens = epoch / (1 - eval_split) * eval_split if eval_split < 1 else 0.0
    return train + evals * eval_tokens / 3


def tokens_per_second(config: Mapping[str, Any], model: ModelSize, offer: GpuOffer) -> float | None:
    """Training throughput on one offer (see catalog.lora_tokens_per_s_per_billion).

    k = 4 FLOPs per token per parameter for LoRA, +2 with gradient checkpointing (a second
    forward), +2 for DPO's reference forward. 4-bit weights are dequantised on every use (x 0.7),
    bitsandbytes int8 matmuls are slow (x 0.4). With ``device_map: auto`` several GPUs hold
    consecutive layers and run one after the other, so extra GPUs add memory, not speed.
    """
    gpu = gpu_class_of(offer)
    if gpu is None or model.params is None:
        return None
    training = config.get("training", {})
    quant = training.get("quantization", {})
    k = 4.0 + (2.0 if training.get("gradient_checkpointing") else 0.0)
    k += 2.0 if training.get("method") == "dpo" else 0.0
    factor = 0.7 if quant.get("load_in_4bit") else 0.4 if quant.get("load_in_8bit") else 1.0
    return lora_tokens_per_s_per_billion(gpu, k) / (model.params / 1e9) * factor


@dataclass(frozen=True)
class OfferEstimate:
    offer: GpuOffer
    fits: bool | None  # None: the model size is unknown
    memory_needed_gib: float | None  # on the busiest GPU
    memory_available_gib: float
    tokens_per_s: float | None
    hours: float | None
    dollars: float | None
    cheapest: bool
    note: str


@dataclass(frozen=True)
class Estimate:
    model: ModelSize
    train_tokens: float
    memory: MemoryEstimate | None
    offers: list[OfferEstimate]

    @property
    def cheapest(self) -> OfferEstimate | None:
        return next((o for o in self.offers if o.cheapest), None)


def estimate(
    config: Mapping[str, Any],
    dataset_tokens: float,
    offers: Iterable[GpuOffer],
    params: float | None = None,
    dataset_rows: int | None = None,
) -> Estimate:
    """Fit, hours and dollars for each offer; the cheapest fitting available offer is marked."""
    model = model_size(config.get("model", {}).get("name", ""), params)
    memory = estimate_memory(config, model)
    tokens = training_tokens(config, dataset_tokens, dataset_rows)
    rows = [_for_offer(config, model, memory, tokens, offer) for offer in offers]
    return Estimate(model, tokens, memory, _mark_cheapest(rows))


def _for_offer(
    config: Mapping[str, Any],
    model: ModelSize,
    memory: MemoryEstimate | None,
    tokens: float,
    offer: GpuOffer,
) -> OfferEstimate:
    count = max(1, offer.gpu_count)
    available = float(offer.vram_gb)  # "24 GB" cards carry 24 GiB
    needed = _busiest_gpu(memory, count) if memory else None
    fits = None if needed is None else needed <= available
    speed = tokens_per_second(config, model, offer)
    hours = STARTUP_HOURS + tokens / speed / 3600 if speed else None
    price = offer.price_per_hour
    dollars = hours * price if hours is not None and price is not None else None
    return OfferEstimate(offer, fits, needed, available, speed, hours, dollars, False,
                         _note(model, fits, speed, price))  # fmt: skip


def _busiest_gpu(memory: MemoryEstimate, count: int) -> float:
    # device_map="auto" spreads layers (weights, adapters, activations) over the GPUs; the logits
    # and the loss sit on the last one, and every GPU pays its own CUDA context.
    spread = memory.weights_gib + memory.lora_gib + memory.activations_gib
    per_gpu = spread / count + memory.logits_gib
    return per_gpu * (1 + FRAGMENTATION) + CUDA_CONTEXT_GIB


def _note(model: ModelSize, fits: bool | None, speed: float | None, price: float | None) -> str:
    if model.params is None:
        return "unknown model size: give the parameter count"
    if fits is False:
        return "does not fit in GPU memory"
    if speed is None:
        return "no throughput figure for this GPU"
    if price is None:
        return "no price known for this offer"
    return ""


def _mark_cheapest(rows: list[OfferEstimate]) -> list[OfferEstimate]:
    candidates = [
        (r.dollars, r.hours, i)
        for i, r in enumerate(rows)
        if r.fits and r.offer.available and r.dollars is not None and r.hours is not None
    ]
    if not candidates:
        return rows
    best = min(candidates)[2]
    return [replace(r, cheapest=True) if i == best else r for i, r in enumerate(rows)]
