from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from jobs.training_config import (
    OPTIMIZERS,
    ConfigError,
    ValidatedConfig,
    check_config_against_dataset,
    default_config,
    validate_config,
)

DATASET_ID = "5f0c8a8e-2b0c-4a44-9d0e-3f1f7f0e6a11"


def _minimal(**sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "llama-sft-demo",
        "model": {"name": "meta-llama/Llama-3.2-1B"},
        "data": {"dataset_id": DATASET_ID},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    return config


def _errors(data: dict[str, Any], **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as caught:
        validate_config(data, **kwargs)
    return caught.value.errors


def _training(**fields: Any) -> dict[str, Any]:
    return _minimal(training=fields)


def test_it_fills_every_default_of_the_contract() -> None:
    config = validate_config(_minimal())

    assert config.data == {
        "name": "llama-sft-demo",
        "model": {
            "name": "meta-llama/Llama-3.2-1B",
            "device_map": "auto",
            "torch_dtype": "auto",
            "trust_remote_code": False,
        },
        "data": {
            "dataset_id": DATASET_ID,
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


def test_a_validated_config_survives_a_json_round_trip_and_validates_again() -> None:
    config = validate_config(_minimal(training={"lora_target_modules": ["q_proj", "v_proj"]}))

    again = validate_config(json.loads(json.dumps(config.data)))

    assert again == config


def test_it_keeps_the_values_given() -> None:
    config = validate_config(
        _minimal(
            training={"method": "dpo", "learning_rate": 1e-5, "num_epochs": 2.5, "beta": 0.3},
            predictions={"sample_frequency": "steps", "step_interval": 25},
        )
    )

    assert config.method == "dpo"
    assert config.data["training"]["learning_rate"] == 1e-5
    assert config.data["training"]["num_epochs"] == 2.5
    assert config.data["predictions"]["step_interval"] == 25


def test_the_default_template_has_no_name_or_model() -> None:
    template = default_config()

    assert template["name"] is None
    assert template["model"]["name"] is None
    assert template["training"]["quantization"]["bnb_4bit_quant_type"] == "nf4"


def test_name_and_model_name_are_required() -> None:
    errors = _errors({"data": {"dataset_id": DATASET_ID}})

    assert errors == {"name": ["is required"], "model.name": ["is required"]}


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "must not be empty"), ("   ", "must not be empty"), ("x" * 201, "at most 200")],
)
def test_a_blank_or_long_name_is_refused(name, message) -> None:
    errors = _errors(_minimal(name=name))

    assert message in errors["name"][0]


@pytest.mark.parametrize(
    "model_name",
    [
        "gpt2",
        "meta-llama/Llama-3.2-1B",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "org_x/model.v1",
        "/models/llama",
        "./checkpoints/run-1",
        "~/models/tiny",
    ],
)
def test_it_accepts_hub_ids_and_local_paths_as_model_names(model_name) -> None:
    assert validate_config(_minimal(model={"name": model_name})).model_name == model_name


@pytest.mark.parametrize(
    "model_name", ["a/b/c", "has space/model", "-org/model", "org/model-", "org/mo--del", "a b"]
)
def test_it_refuses_implausible_model_names(model_name) -> None:
    errors = _errors(_minimal(model={"name": model_name}))

    assert "not a Hugging Face model id" in errors["model.name"][0]


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("model", "torch_dtype", "int8", "must be one of auto, bfloat16, float16, float32"),
        ("model", "device_map", "gpu", "must be one of auto"),
        ("data", "eval_split", 0.6, "must be between 0 and 0.5, got 0.6"),
        ("data", "eval_split", -0.1, "must be between 0 and 0.5"),
        ("data", "max_samples", 0, "must be at least 1, got 0"),
        ("data", "max_seq_length", 8, "must be between 16 and 32768, got 8"),
        ("data", "max_seq_length", 40_000, "must be between 16 and 32768"),
        ("training", "method", "ppo", "must be one of sft, dpo, orpo; got 'ppo'"),
        ("training", "num_epochs", 0, "must be greater than 0 and at most 100, got 0"),
        ("training", "num_epochs", 101, "at most 100"),
        ("training", "learning_rate", 0, "must be greater than 0 and at most 1, got 0"),
        ("training", "learning_rate", 1.5, "at most 1"),
        ("training", "batch_size", 0, "must be between 1 and 1024, got 0"),
        ("training", "batch_size", 2048, "must be between 1 and 1024"),
        ("training", "gradient_accumulation_steps", 0, "must be between 1 and 1024"),
        ("training", "max_steps", 0, "must be -1 (run num_epochs) or at least 1, got 0"),
        ("training", "max_steps", -2, "must be -1"),
        ("training", "warmup_steps", -1, "must be at least 0"),
        ("training", "weight_decay", 1.5, "must be between 0 and 1"),
        ("training", "optim", "adam", "must be one of adamw_torch"),
        ("training", "lora_r", 0, "must be between 1 and 1024"),
        ("training", "lora_alpha", 0, "must be greater than 0"),
        ("training", "lora_dropout", 1, "must be at least 0 and less than 1, got 1"),
        ("training", "lora_dropout", -0.1, "at least 0"),
        ("training", "lora_target_modules", [], "must not be an empty list"),
        ("training", "lora_target_modules", ["q-proj"], "module names like q_proj"),
        ("training", "lora_target_modules", "all", 'must be null, "all-linear" or a list'),
        ("training", "lora_target_modules", ["q_proj", "q_proj"], "must not repeat"),
        ("training", "logging_steps", 0, "must be at least 1"),
        ("training", "eval_steps", 0, "must be at least 1"),
        ("training", "save_steps", -5, "must be at least 1"),
        ("training", "seed", -1, "must be between 0 and 4294967295"),
        ("training", "beta", 0, "must be greater than 0"),
        ("predictions", "sample_count", 101, "must be between 0 and 100"),
        ("predictions", "sample_frequency", "hourly", "must be one of epoch, eval, steps"),
        ("predictions", "step_interval", 0, "must be at least 1"),
        ("predictions", "max_new_tokens", 0, "must be between 1 and 2048"),
        ("predictions", "max_new_tokens", 4096, "must be between 1 and 2048"),
        ("predictions", "temperature", 2.5, "must be between 0 and 2"),
        ("predictions", "top_p", 0, "must be greater than 0 and at most 1"),
        ("predictions", "top_p", 1.1, "at most 1"),
    ],
)
def test_an_out_of_range_value_is_reported_under_its_field_path(
    section, field, value, message
) -> None:
    errors = _errors(_minimal(**{section: {field: value}}))

    assert list(errors) == [f"{section}.{field}"]
    assert message in errors[f"{section}.{field}"][0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("load_in_4bit", "yes", "must be true or false, got string 'yes'"),
        ("bnb_4bit_quant_type", "int4", "must be one of nf4, fp4"),
        ("bnb_4bit_compute_dtype", "auto", "must be one of bfloat16, float16, float32"),
        ("bnb_4bit_use_double_quant", 1, "must be true or false, got number 1"),
    ],
)
def test_quantization_errors_carry_the_nested_path(field, value, message) -> None:
    errors = _errors(_training(quantization={field: value}))

    assert message in errors[f"training.quantization.{field}"][0]


def test_4bit_and_8bit_together_is_an_error_on_both_fields() -> None:
    errors = _errors(_training(quantization={"load_in_4bit": True, "load_in_8bit": True}))

    assert errors == {
        "training.quantization.load_in_4bit": [
            "cannot be true together with load_in_8bit; pick one"
        ],
        "training.quantization.load_in_8bit": [
            "cannot be true together with load_in_4bit; pick one"
        ],
    }


def test_bf16_and_fp16_together_is_an_error_on_both_fields() -> None:
    errors = _errors(_training(bf16=True, fp16=True))

    assert set(errors) == {"training.bf16", "training.fp16"}


def test_booleans_must_be_real_booleans() -> None:
    errors = _errors(_minimal(model={"trust_remote_code": "true"}, predictions={"enabled": 0}))

    assert errors["model.trust_remote_code"] == ["must be true or false, got string 'true'"]
    assert errors["predictions.enabled"] == ["must be true or false, got number 0"]


def test_integers_refuse_booleans_strings_and_fractions() -> None:
    errors = _errors(_training(batch_size=True, lora_r="16", logging_steps=2.5))

    assert errors["training.batch_size"] == ["must be an integer, got boolean"]
    assert errors["training.lora_r"] == ["must be an integer, got string"]
    assert errors["training.logging_steps"] == ["must be a whole number, got 2.5"]


def test_a_whole_float_is_stored_as_an_integer() -> None:
    config = validate_config(_training(batch_size=8.0))

    assert config.data["training"]["batch_size"] == 8
    assert isinstance(config.data["training"]["batch_size"], int)


def test_numbers_refuse_strings_booleans_and_nan() -> None:
    errors = _errors(_training(learning_rate="2e-4", weight_decay=True, beta=float("nan")))

    assert errors["training.learning_rate"] == ["must be a number, got string"]
    assert errors["training.weight_decay"] == ["must be a number, got boolean"]
    assert errors["training.beta"] == ["must be a finite number, got nan"]


def test_float_fields_are_stored_as_floats() -> None:
    config = validate_config(_minimal(data={"eval_split": 0}, predictions={"temperature": 1}))

    assert config.data["data"]["eval_split"] == 0.0
    assert isinstance(config.data["data"]["eval_split"], float)
    assert isinstance(config.data["predictions"]["temperature"], float)


def test_an_unknown_field_is_named_with_a_suggestion() -> None:
    errors = _errors(_training(learning_rat=0.001))

    assert errors == {"training.learning_rat": ["unknown field; did you mean learning_rate?"]}


def test_unknown_fields_are_found_in_every_section() -> None:
    errors = _errors(
        _minimal(
            nmae="x",
            model={"dtype": "auto"},
            training={"quantization": {"load_in_4bits": True}},
            extras={},
        )
    )

    assert errors["nmae"] == ["unknown field; did you mean name?"]
    assert errors["model.dtype"] == ["unknown field; did you mean torch_dtype?"]
    assert errors["training.quantization.load_in_4bits"] == [
        "unknown field; did you mean load_in_4bit?"
    ]
    assert errors["extras"] == ["unknown field"]


def test_a_section_that_is_not_an_object_is_an_error() -> None:
    errors = _errors(_minimal(training=["sft"]))

    assert errors == {"training": ["must be an object, got array"]}


def test_a_config_that_is_not_an_object_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(["name"])  # type: ignore[arg-type]

    assert caught.value.errors == {"": ["must be an object, got array"]}


def test_every_error_is_reported_at_once() -> None:
    errors = _errors(
        _minimal(
            name="",
            training={"learning_rate": 0, "batch_size": 0},
            predictions={"temperature": 3},
        )
    )

    assert set(errors) == {
        "name",
        "training.learning_rate",
        "training.batch_size",
        "predictions.temperature",
    }


def test_the_error_text_lists_each_path_and_message() -> None:
    with pytest.raises(ConfigError, match=r"training\.batch_size: must be between 1 and 1024"):
        validate_config(_training(batch_size=0))


def test_a_dataset_is_required_unless_the_caller_says_otherwise() -> None:
    config = _minimal(data={"dataset_id": None})

    assert _errors(config) == {"data.dataset_id": ["choose a dataset (or set data.train_path)"]}
    assert validate_config(config, require_dataset=False).data["data"]["dataset_id"] is None


def test_a_train_path_can_replace_the_dataset_id() -> None:
    config = validate_config(_minimal(data={"dataset_id": None, "train_path": "data/train.jsonl"}))

    assert config.data["data"]["train_path"] == "data/train.jsonl"


def test_dataset_id_and_train_path_together_is_an_error() -> None:
    errors = _errors(_minimal(data={"train_path": "train.jsonl"}))

    assert errors == {
        "data.train_path": ["set either data.dataset_id or data.train_path, not both"]
    }


def test_the_dataset_id_must_be_a_uuid_and_is_stored_canonically() -> None:
    assert "must be a UUID" in _errors(_minimal(data={"dataset_id": "abc"}))["data.dataset_id"][0]
    config = validate_config(_minimal(data={"dataset_id": DATASET_ID.upper().replace("-", "")}))
    assert config.data["data"]["dataset_id"] == DATASET_ID


def test_eval_steps_without_an_eval_split_is_an_error() -> None:
    errors = _errors(_minimal(data={"eval_split": 0}, training={"eval_steps": 100}))

    assert errors == {"training.eval_steps": ["needs data.eval_split above 0 (no eval set)"]}


def test_predictions_on_eval_without_an_eval_split_is_an_error() -> None:
    errors = _errors(_minimal(data={"eval_split": 0}, predictions={"sample_frequency": "eval"}))

    assert "use epoch or steps" in errors["predictions.sample_frequency"][0]


def test_packing_is_refused_for_preference_methods() -> None:
    errors = _errors(_training(method="orpo", packing=True))

    assert errors == {"training.packing": ["packing is only supported with sft, not orpo"]}


def test_all_linear_and_module_lists_are_accepted_as_lora_targets() -> None:
    linear = validate_config(_training(lora_target_modules="all-linear"))
    listed = validate_config(_training(lora_target_modules=["q_proj", "mlp.down_proj"]))

    assert linear.data["training"]["lora_target_modules"] == "all-linear"
    assert listed.data["training"]["lora_target_modules"] == ["q_proj", "mlp.down_proj"]


def test_validation_does_not_mutate_or_share_the_input() -> None:
    data = _training(lora_target_modules=["q_proj"])
    config = validate_config(data)

    config.as_dict()["training"]["lora_target_modules"].append("k_proj")

    assert data["training"]["lora_target_modules"] == ["q_proj"]
    assert config.data["training"]["lora_target_modules"] == ["q_proj"]


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_preference_methods_need_a_preference_dataset(method) -> None:
    config = validate_config(_training(method=method))

    problems = check_config_against_dataset(config, "chat")

    assert len(problems) == 1
    assert f"{method} trains on preference pairs" in problems[0]
    assert "chat format" in problems[0]
    assert check_config_against_dataset(config, "preference") == []


def test_sft_on_preference_data_suggests_dpo_or_orpo() -> None:
    config = validate_config(_minimal())

    problems = check_config_against_dataset(config, "preference")

    assert len(problems) == 1
    assert "Choose dpo or orpo" in problems[0]


@pytest.mark.parametrize("dataset_format", ["text", "chat", "instruction"])
def test_sft_accepts_every_non_preference_format(dataset_format) -> None:
    config = validate_config(_minimal())

    assert check_config_against_dataset(config.data, dataset_format) == []


def test_validated_config_exposes_its_main_fields() -> None:
    config = validate_config(_minimal(training={"method": "orpo"}))

    assert isinstance(config, ValidatedConfig)
    assert (config.name, config.method, config.model_name) == (
        "llama-sft-demo",
        "orpo",
        "meta-llama/Llama-3.2-1B",
    )


def test_every_offered_optimizer_is_one_transformers_accepts() -> None:
    # Read transformers' OptimizerNames from its source: importing transformers takes seconds.
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        pytest.skip("transformers is not installed (it belongs to the trainer extra)")
    source = (Path(spec.origin).parent / "training_args.py").read_text()
    after = source.split("class OptimizerNames", 1)[1]
    body = re.split(r"\n(?=\S)", after, maxsplit=1)[0]  # up to the next top-level statement
    accepted = set(re.findall(r'^\s+\w+ = "(\w+)"', body, flags=re.MULTILINE))

    assert set(OPTIMIZERS) <= accepted
