"""The training config of contracts §1: defaults, merging and dotted-path overrides.

The server sends a fully-defaulted config, but a local `--config` file may be partial, so the
trainer fills the same defaults itself (unknown keys are kept and ignored, as the contract says).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

DEFAULT_CONFIG: dict[str, Any] = {
    "name": "tuneboard-run",
    "model": {
        "name": "meta-llama/Llama-3.2-1B",
        "device_map": "auto",
        "torch_dtype": "auto",
        "trust_remote_code": False,
    },
    "data": {
        "dataset_id": None,
        "train_path": None,
        "eval_split": 0.1,
        "max_samples": None,
        "max_seq_length": 1024,
    },
    "training": {
        "method": "sft",
        "num_epochs": 1,
        "learning_rate": 0.0002,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_steps": -1,
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "optim": "adamw_torch",
        "gradient_checkpointing": False,
        "bf16": False,
        "fp16": False,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target_modules": None,
        "packing": False,
        "logging_steps": 10,
        "eval_steps": None,
        "save_steps": None,
        "seed": 42,
        "beta": 0.1,
        "quantization": {
            "load_in_4bit": False,
            "load_in_8bit": False,
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_compute_dtype": "bfloat16",
            "bnb_4bit_use_double_quant": True,
        },
    },
    "predictions": {
        "enabled": True,
        "sample_count": 5,
        "sample_frequency": "epoch",
        "step_interval": 50,
        "max_new_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
    },
}

METHODS = ("sft", "dpo", "orpo")
SAMPLE_FREQUENCIES = ("epoch", "eval", "steps")


class ConfigError(ValueError):
    """The config asks for something the trainer cannot do."""


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `update` into a copy of `base`; `None` in `update` does not erase a section."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `config["a"]["b"] = value` for `dotted == "a.b"`, creating sections as needed."""
    *parents, leaf = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def resolve(partial: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults into a (possibly partial) config and check the values we branch on."""
    config = merge(DEFAULT_CONFIG, partial)
    method = config["training"]["method"]
    if method not in METHODS:
        raise ConfigError(f"training.method must be one of {METHODS}, not {method!r}")
    frequency = config["predictions"]["sample_frequency"]
    if frequency not in SAMPLE_FREQUENCIES:
        raise ConfigError(
            f"predictions.sample_frequency must be one of {SAMPLE_FREQUENCIES}, not {frequency!r}"
        )
    return config


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a §1 config; a full ingest spec (with a `config` key) is accepted too."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return data.get("config", data) if "training" not in data else data
