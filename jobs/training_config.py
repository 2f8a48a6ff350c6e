"""Validate a training config and fill every default (docs/contracts.md §1).

``validate_config`` is the one gate between what a user (form, API, uploaded JSON) sends and the
frozen snapshot a job carries: it returns the complete canonical dict or raises ``ConfigError``
with every problem keyed by its field path (``training.learning_rate``), so a form can put each
message beside its field.

Decisions:

- Types are strict: a boolean must be ``true``/``false`` (not ``"yes"``, not ``1``), an integer
  field refuses booleans and non-integral numbers (``4.0`` is accepted and stored as ``4``), a
  number field refuses strings, NaN and infinities. Float-only fields are stored as floats.
- Unknown keys are errors naming the key, with a difflib suggestion (``learning_rat`` -> "did
  you mean learning_rate?"): a typo silently falling back to a default is the costly mistake.
- Mutually exclusive pairs (``bf16``/``fp16``, ``load_in_4bit``/``load_in_8bit``) put the message
  on both fields, so both are highlighted.
- ``name`` and ``model.name`` have no default. ``data`` needs exactly one of ``dataset_id`` (a
  UUID) or ``train_path`` unless the caller passes ``require_dataset=False`` (for a config saved
  before its dataset is chosen).
- ``model.name`` is a Hugging Face repo id (``org/name`` or ``name``) or a local path written
  explicitly as one (starting with ``/``, ``./``, ``../`` or ``~/``).
- Cross-field rules that would only fail later on the GPU are checked here: ``eval_steps`` or
  ``sample_frequency: eval`` need ``eval_split > 0``; ``packing`` is an SFT-only option.
- The optimizer list is the subset of transformers' ``OptimizerNames`` that needs no package
  beyond the trainer's (torch, bitsandbytes) and no extra ``optim_args``.

This module imports no Django: the trainer can reuse it.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jobs.json_types import json_type_name

METHODS = ("sft", "dpo", "orpo")
PREFERENCE_METHODS = ("dpo", "orpo")
TORCH_DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = ("bfloat16", "float16", "float32")
SAMPLE_FREQUENCIES = ("epoch", "eval", "steps")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential", "cpu", "cuda", "mps")
OPTIMIZERS = (
    "adamw_torch",
    "adamw_torch_fused",
    "adafactor",
    "sgd",
    "adagrad",
    "rmsprop",
    "adamw_8bit",
    "adamw_bnb_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
    "lion_8bit",
    "lion_32bit",
    "paged_lion_8bit",
    "paged_lion_32bit",
    "ademamix",
    "ademamix_8bit",
    "paged_ademamix_8bit",
    "paged_ademamix_32bit",
    "rmsprop_bnb",
    "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit",
)
ALL_LINEAR = "all-linear"

# numpy's seed (which transformers.set_seed calls) must fit in 32 unsigned bits.
_MAX_SEED = 2**32 - 1
_MAX_NAME = 200
_MAX_PATH = 4096
# Hugging Face repo ids: each part 1..96 of [A-Za-z0-9._-], not starting or ending with - or .,
# and no "--" or ".." (huggingface_hub's validate_repo_id rules).
_HF_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_LOCAL_PATH_PREFIXES = ("/", "./", "../", "~/")
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_CUDA_DEVICE = re.compile(r"cuda:\d+")


class ConfigError(Exception):
    """The config is invalid; ``errors`` maps a field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{path}: {message}" for path, msgs in errors.items() for message in msgs)
        )


@dataclass(frozen=True)
class ValidatedConfig:
    """A complete, canonical config: every field present, JSON-serialisable."""

    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def method(self) -> str:
        return str(self.data["training"]["method"])

    @property
    def model_name(self) -> str:
        return str(self.data["model"]["name"])

    def as_dict(self) -> dict[str, Any]:
        """A deep copy, safe to store or mutate."""
        return copy.deepcopy(self.data)


class _Invalid(Exception):
    """One field's value is wrong; the message is shown next to that field."""


Check = Callable[[Any], Any]


@dataclass(frozen=True)
class _Field:
    default: Any
    check: Check
    required: bool = False


# ---------------------------------------------------------------- value checks


def _fmt(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {json_type_name(value)} {value!r}")
    return value


def _as_number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"must be a number, got {json_type_name(value)}")
    if not math.isfinite(value):
        raise _Invalid(f"must be a finite number, got {value}")
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"must be an integer, got {json_type_name(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _Invalid(f"must be a whole number, got {value:g}")
        return int(value)
    return value


def _integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(value: Any) -> int:
        number = _as_int(value)
        _check_range(number, lo, hi)
        return number

    return check


def _check_range(number: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and hi is not None and not lo <= number <= hi:
        raise _Invalid(f"must be between {_fmt(lo)} and {_fmt(hi)}, got {_fmt(number)}")
    if lo is not None and number < lo:
        raise _Invalid(f"must be at least {_fmt(lo)}, got {_fmt(number)}")
    if hi is not None and number > hi:
        raise _Invalid(f"must be at most {_fmt(hi)}, got {_fmt(number)}")


def _number(
    lo: float,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    keep_int: bool = False,
) -> Check:
    """A real number in a range; ``lo_open``/``hi_open`` exclude the bound itself."""

    def check(value: Any) -> int | float:
        number = _as_number(value)
        too_low = number <= lo if lo_open else number < lo
        too_high = hi is not None and (number >= hi if hi_open else number > hi)
        if too_low or too_high:
            raise _Invalid(f"must be {_describe_range(lo, hi, lo_open, hi_open)}, got {number:g}")
        return number if keep_int else float(number)

    return check


def _describe_range(lo: float, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    low = f"greater than {_fmt(lo)}" if lo_open else f"at least {_fmt(lo)}"
    if hi is None:
        return low
    if not lo_open and not hi_open:
        return f"between {_fmt(lo)} and {_fmt(hi)}"
    high = f"less than {_fmt(hi)}" if hi_open else f"at most {_fmt(hi)}"
    return f"{low} and {high}"


def _choice(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            got = f"{value!r}" if isinstance(value, str) else json_type_name(value)
            raise _Invalid(f"must be one of {', '.join(options)}; got {got}")
        return value

    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def _string(value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {json_type_name(value)}")
    if not value.strip():
        raise _Invalid("must not be empty")
    if len(value) > max_len:
        raise _Invalid(f"must be at most {max_len} characters, got {len(value)}")
    return value


def _name(value: Any) -> str:
    return _string(value, _MAX_NAME).strip()


def _path(value: Any) -> str:
    path = _string(value, _MAX_PATH)
    if any(char in path for char in "\0\n\r"):
        raise _Invalid("must not contain NUL or line breaks")
    return path


def _model_name(value: Any) -> str:
    name = _path(value)
    if name.startswith(_LOCAL_PATH_PREFIXES):
        return name
    parts = name.split("/")
    plausible = len(parts) <= 2 and all(
        _HF_PART.fullmatch(part) and "--" not in part and ".." not in part for part in parts
    )
    if not plausible:
        raise _Invalid(
            f"{name!r} is not a Hugging Face model id (like meta-llama/Llama-3.2-1B) "
            "or a local path (starting with /, ./, ../ or ~/)"
        )
    return name


def _device_map(value: Any) -> str:
    if isinstance(value, str) and (value in DEVICE_MAPS or _CUDA_DEVICE.fullmatch(value)):
        return value
    got = f"{value!r}" if isinstance(value, str) else json_type_name(value)
    raise _Invalid(f"must be one of {', '.join(DEVICE_MAPS)} or cuda:N; got {got}")


def _dataset_id(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise _Invalid(f"must be a UUID string, got {json_type_name(value)}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _Invalid(f"must be a UUID, got {value!r}") from None


def _max_steps(value: Any) -> int:
    steps = _as_int(value)
    if steps != -1 and steps < 1:
        raise _Invalid(f"must be -1 (run num_epochs) or at least 1, got {steps}")
    return steps


def _target_modules(value: Any) -> str | list[str]:
    if value == ALL_LINEAR:
        return ALL_LINEAR
    if not isinstance(value, list | tuple):
        raise _Invalid(f'must be null, "{ALL_LINEAR}" or a list of module names')
    if not value:
        raise _Invalid(f'must not be an empty list (use null or "{ALL_LINEAR}")')
    bad = [name for name in value if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name)]
    if bad:
        raise _Invalid(f"must hold module names like q_proj; not {', '.join(map(repr, bad))}")
    if len(set(value)) != len(value):
        raise _Invalid("must not repeat a module name")
    return list(value)


# ---------------------------------------------------------------- the schema


def _required(check: Check) -> _Field:
    return _Field(default=None, check=check, required=True)


SCHEMA: dict[str, Any] = {
    "name": _required(_name),
    "model": {
        "name": _required(_model_name),
        "device_map": _Field("auto", _device_map),
        "torch_dtype": _Field("auto", _choice(TORCH_DTYPES)),
        "trust_remote_code": _Field(False, _boolean),
    },
    "data": {
        "dataset_id": _Field(None, _nullable(_dataset_id)),
        "train_path": _Field(None, _nullable(_path)),
        "eval_split": _Field(0.1, _number(0, 0.5)),
        "max_samples": _Field(None, _nullable(_integer(1))),
        "max_seq_length": _Field(1024, _integer(16, 32768)),
    },
    "training": {
        "method": _Field("sft", _choice(METHODS)),
        "num_epochs": _Field(1, _number(0, 100, lo_open=True, keep_int=True)),
        "learning_rate": _Field(0.0002, _number(0, 1, lo_open=True)),
        "batch_size": _Field(4, _integer(1, 1024)),
        "gradient_accumulation_steps": _Field(1, _integer(1, 1024)),
        "max_steps": _Field(-1, _max_steps),
        "warmup_steps": _Field(0, _integer(0)),
        "weight_decay": _Field(0.0, _number(0, 1)),
        "optim": _Field("adamw_torch", _choice(OPTIMIZERS)),
        "gradient_checkpointing": _Field(False, _boolean),
        "bf16": _Field(False, _boolean),
        "fp16": _Field(False, _boolean),
        "lora_r": _Field(16, _integer(1, 1024)),
        "lora_alpha": _Field(32, _number(0, lo_open=True, keep_int=True)),
        "lora_dropout": _Field(0.05, _number(0, 1, hi_open=True)),
        "lora_target_modules": _Field(None, _nullable(_target_modules)),
        "packing": _Field(False, _boolean),
        "logging_steps": _Field(10, _integer(1)),
        "eval_steps": _Field(None, _nullable(_integer(1))),
        "save_steps": _Field(None, _nullable(_integer(1))),
        "seed": _Field(42, _integer(0, _MAX_SEED)),
        "beta": _Field(0.1, _number(0, lo_open=True)),
        "quantization": {
            "load_in_4bit": _Field(False, _boolean),
            "load_in_8bit": _Field(False, _boolean),
            "bnb_4bit_quant_type": _Field("nf4", _choice(QUANT_TYPES)),
            "bnb_4bit_compute_dtype": _Field("bfloat16", _choice(COMPUTE_DTYPES)),
            "bnb_4bit_use_double_quant": _Field(True, _boolean),
        },
    },
    "predictions": {
        "enabled": _Field(True, _boolean),
        "sample_count": _Field(5, _integer(0, 100)),
        "sample_frequency": _Field("epoch", _choice(SAMPLE_FREQUENCIES)),
        "step_interval": _Field(50, _integer(1)),
        "max_new_tokens": _Field(64, _integer(1, 2048)),
        "temperature": _Field(0.7, _number(0, 2)),
        "top_p": _Field(0.9, _number(0, 1, lo_open=True)),
    },
}


def default_config() -> dict[str, Any]:
    """Every default of contracts §1; ``name`` and ``model.name`` are None (no default)."""
    return _defaults(SCHEMA)


def _defaults(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _defaults(item) if isinstance(item, dict) else copy.deepcopy(item.default)
        for key, item in spec.items()
    }


# ---------------------------------------------------------------- validation


def validate_config(data: Mapping[str, Any], *, require_dataset: bool = True) -> ValidatedConfig:
    """Check ``data`` against contracts §1 and return it complete, or raise ``ConfigError``."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        raise ConfigError({"": [f"must be an object, got {json_type_name(data)}"]})
    config = _validate_section(data, SCHEMA, "", errors)
    _check_cross_fields(config, errors, require_dataset=require_dataset)
    if errors:
        raise ConfigError(errors)
    return ValidatedConfig(config)


def _validate_section(
    data: Mapping[str, Any], spec: dict[str, Any], prefix: str, errors: dict[str, list[str]]
) -> dict[str, Any]:
    _report_unknown_keys(data, spec, prefix, errors)
    section: dict[str, Any] = {}
    for key, item in spec.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict):
            section[key] = _validate_subsection(data.get(key, {}), item, path, errors)
        elif key not in data:
            if item.required:
                errors.setdefault(path, []).append("is required")
            section[key] = copy.deepcopy(item.default)
        else:
            section[key] = _validate_value(data[key], item, path, errors)
    return section


def _validate_subsection(
    value: Any, spec: dict[str, Any], path: str, errors: dict[str, list[str]]
) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        errors.setdefault(path, []).append(f"must be an object, got {json_type_name(value)}")
        value = {}
    return _validate_section(value, spec, f"{path}.", errors)


def _validate_value(value: Any, item: _Field, path: str, errors: dict[str, list[str]]) -> Any:
    try:
        return item.check(value)
    except _Invalid as invalid:
        errors.setdefault(path, []).append(str(invalid))
        return item.default


def _report_unknown_keys(
    data: Mapping[str, Any], spec: dict[str, Any], prefix: str, errors: dict[str, list[str]]
) -> None:
    for key in data:
        if key in spec:
            continue
        close = difflib.get_close_matches(str(key), list(spec), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        errors.setdefault(f"{prefix}{key}", []).append(f"unknown field{hint}")


def _check_cross_fields(
    config: dict[str, Any], errors: dict[str, list[str]], *, require_dataset: bool
) -> None:
    # A field that already failed holds its default here; _add_cross skips it, so a wrong value
    # never also earns a confusing cross-field message.
    training = config["training"]
    _exclusive(training, "bf16", "fp16", "training.", errors)
    quantization = training["quantization"]
    _exclusive(quantization, "load_in_4bit", "load_in_8bit", "training.quantization.", errors)
    _check_dataset_source(config["data"], errors, require_dataset=require_dataset)
    no_eval = config["data"]["eval_split"] == 0
    if no_eval and training["eval_steps"] is not None:
        _add_cross(errors, "training.eval_steps", "needs data.eval_split above 0 (no eval set)")
    predictions = config["predictions"]
    if no_eval and predictions["enabled"] and predictions["sample_frequency"] == "eval":
        message = "eval needs data.eval_split above 0 (no eval set); use epoch or steps"
        _add_cross(errors, "predictions.sample_frequency", message)
    if training["packing"] and training["method"] != "sft":
        message = f"packing is only supported with sft, not {training['method']}"
        _add_cross(errors, "training.packing", message)


def _add_cross(errors: dict[str, list[str]], path: str, message: str) -> None:
    if path not in errors:
        errors[path] = [message]


def _exclusive(
    section: dict[str, Any], first: str, second: str, prefix: str, errors: dict[str, list[str]]
) -> None:
    if section[first] and section[second]:
        _add_cross(errors, f"{prefix}{first}", f"cannot be true together with {second}; pick one")
        _add_cross(errors, f"{prefix}{second}", f"cannot be true together with {first}; pick one")


def _check_dataset_source(
    data: dict[str, Any], errors: dict[str, list[str]], *, require_dataset: bool
) -> None:
    has_id = data["dataset_id"] is not None
    has_path = data["train_path"] is not None
    if has_id and has_path:
        message = "set either data.dataset_id or data.train_path, not both"
        _add_cross(errors, "data.train_path", message)
    elif require_dataset and not (has_id or has_path) and "data.dataset_id" not in errors:
        _add_cross(errors, "data.dataset_id", "choose a dataset (or set data.train_path)")


# ---------------------------------------------------------------- config x dataset


def check_config_against_dataset(
    config: ValidatedConfig | Mapping[str, Any], dataset_format: str
) -> list[str]:
    """Problems with training this config on a dataset of ``dataset_format``; [] when fine.

    The messages concern ``training.method`` (and the dataset choice).
    """
    data = config.data if isinstance(config, ValidatedConfig) else config
    method = data["training"]["method"]
    if method in PREFERENCE_METHODS and dataset_format != "preference":
        return [
            f"{method} trains on preference pairs: it needs a preference dataset "
            f"(prompt, chosen, rejected), but this dataset is in the {dataset_format} format. "
            "Choose sft, or a preference dataset."
        ]
    if method == "sft" and dataset_format == "preference":
        return [
            "sft trains on a single target text, but this dataset is preference pairs "
            "(prompt, chosen, rejected). Choose dpo or orpo, or a text, chat or instruction "
            "dataset."
        ]
    return []
