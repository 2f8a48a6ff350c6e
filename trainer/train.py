"""Fine-tune a causal LM with LoRA (SFT, DPO or ORPO) and report to Tuneboard.

Inside a pod, everything comes from the environment and the server's frozen spec:

    TUNEBOARD_URL=https://tuneboard.example TUNEBOARD_JOB_ID=<uuid> \\
    TUNEBOARD_INGEST_TOKEN=<token> python -m trainer --output-dir /workspace/out

Without a server, from a config file (contracts §1 shape) and a local JSONL dataset, with any
config value overridden on the command line:

    python -m trainer.tiny /tmp/tiny-llama
    python -m trainer --config run.json --dataset data.jsonl --model-name /tmp/tiny-llama \\
        --max-steps 20 --output-dir /tmp/run --events-file /tmp/run/events.jsonl

Steps: fetch spec and dataset → load tokenizer and model (4/8-bit through bitsandbytes on CUDA)
→ build the trl trainer with a LoRA config → train, reporting through `TuneboardCallback` →
evaluate → save adapter, tokenizer and `tuneboard_config.json` → push to the Hub with HF_TOKEN.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser

from trainer.callback import TuneboardCallback, write_config
from trainer.client import IngestClient, with_retries
from trainer.config import ConfigError, load_config_file, resolve, set_path
from trainer.data import mean_tokens_per_row, prepare, read_jsonl
from trainer.reporting import LogSink, Reporter, ReporterSettings

log = logging.getLogger("trainer")


def arg(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class ScriptArguments:
    """Command line of `python -m trainer`; fields in CONFIG_OVERRIDES override the config."""

    config: str | None = arg(
        None, "JSON config file (contracts §1 shape) for a run without server."
    )
    dataset: str | None = arg(None, "Local JSONL dataset for a run without server.")
    output_dir: str = arg("tuneboard-output", "Checkpoints, adapter, spool and config go here.")
    model_name: str | None = arg(None, "Base model id or local path (model.name).")
    method: str | None = arg(None, "sft | dpo | orpo (training.method).")
    max_steps: int | None = arg(None, "Optimizer steps; > 0 wins over epochs (training.max_steps).")
    num_epochs: float | None = arg(None, "Epochs (training.num_epochs).")
    learning_rate: float | None = arg(None, "Peak learning rate (training.learning_rate).")
    batch_size: int | None = arg(None, "Per-device batch size (training.batch_size).")
    logging_steps: int | None = arg(None, "Report metrics every N steps (training.logging_steps).")
    eval_steps: int | None = arg(None, "Evaluate every N steps (training.eval_steps).")
    save_steps: int | None = arg(None, "Checkpoint every N steps (training.save_steps).")
    seed: int | None = arg(None, "Random seed (training.seed).")
    events_file: str | None = arg(
        None, "Without server: append events here as JSONL; '-' = stdout."
    )
    deadline_at: str | None = arg(None, "ISO time to stop and save at (overrides the spec's).")
    report_interval_s: float | None = arg(None, "Seconds between event batches (overrides spec).")
    dead_man_seconds: float = arg(600.0, "After training, exit if the server stays unreachable.")
    backoff_max_s: float = arg(60.0, "Longest wait between retries to an unreachable server.")
    resume: bool = arg(False, "Resume from the latest checkpoint in --output-dir.")


CONFIG_OVERRIDES = {
    "model_name": "model.name",
    "method": "training.method",
    "max_steps": "training.max_steps",
    "num_epochs": "training.num_epochs",
    "learning_rate": "training.learning_rate",
    "batch_size": "training.batch_size",
    "logging_steps": "training.logging_steps",
    "eval_steps": "training.eval_steps",
    "save_steps": "training.save_steps",
    "seed": "training.seed",
}


@dataclass
class Run:
    """Everything one run needs, gathered before training starts."""

    args: ScriptArguments
    config: dict[str, Any]
    spec: dict[str, Any]
    dataset_path: Path
    output_dir: Path
    reporter: Reporter
    started: float = field(default_factory=time.monotonic)


@dataclass
class Outcome:
    stop_reason: str | None
    final_loss: float | None
    adapter_path: Path
    hub_repo: str | None


class QuantizationUnavailable(RuntimeError):
    """4/8-bit loading needs bitsandbytes on CUDA."""


# LoRA on the attention projections: the usual choice, and names differ per architecture.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value"],
    "falcon": ["query_key_value"],
}


# -- setting up ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> ScriptArguments:
    parser = HfArgumentParser(ScriptArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    assert isinstance(args, ScriptArguments)
    return args


def apply_overrides(config: dict[str, Any], args: ScriptArguments) -> dict[str, Any]:
    for name, key in CONFIG_OVERRIDES.items():
        value = getattr(args, name)
        if value is not None:
            set_path(config, key, value)
    return resolve(config)


def open_run(args: ScriptArguments) -> Run:
    """Spec and dataset from the server (env) or from --config/--dataset, and a reporter."""
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    settings = ReporterSettings(backoff_max_s=args.backoff_max_s)
    url = os.environ.get("TUNEBOARD_URL")
    if url and not args.config:
        client = IngestClient(url, os.environ["TUNEBOARD_INGEST_TOKEN"])
        reporter = Reporter(client.post_events, output_dir, settings)
        spec = with_retries(client.get_spec)
        dataset_url = (spec.get("dataset") or {}).get("url")
        dataset_path = with_retries(
            lambda: client.download_dataset(dataset_url, output_dir / "dataset.jsonl")
        )
    else:
        reporter = Reporter(local_sink(args.events_file), output_dir, settings)
        spec = {"config": load_config_file(Path(args.config)) if args.config else {}}
        if not args.dataset:
            raise ConfigError("without TUNEBOARD_URL, --dataset is required")
        dataset_path = Path(args.dataset)
    try:
        apply_spec_settings(settings, spec, args)
        config = apply_overrides(spec["config"], args)
    except Exception as exc:  # a bad config is the job's failure: tell the server, then re-raise
        report_failure(reporter, exc)
        reporter.close(min(args.dead_man_seconds, 60.0))
        raise
    return Run(args, config, spec, dataset_path, output_dir, reporter)


def local_sink(events_file: str | None) -> LogSink:
    if events_file == "-":
        return LogSink(stream=sys.stdout)
    return LogSink(path=Path(events_file) if events_file else None)


def apply_spec_settings(
    settings: ReporterSettings, spec: dict[str, Any], args: ScriptArguments
) -> None:
    settings.report_interval_s = float(
        args.report_interval_s or spec.get("report_interval_s") or settings.report_interval_s
    )
    settings.max_batch_events = int(spec.get("max_batch_events") or settings.max_batch_events)
    settings.max_batch_bytes = int(spec.get("max_batch_bytes") or settings.max_batch_bytes)


def deadline_of(run: Run) -> float | None:
    raw = run.args.deadline_at or run.spec.get("deadline_at")
    return datetime.fromisoformat(raw).timestamp() if raw else None


# -- model --------------------------------------------------------------------------------


def load_tokenizer(config: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        config["model"]["name"],
        trust_remote_code=config["model"]["trust_remote_code"],
        token=os.environ.get("HF_TOKEN"),
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(config: dict[str, Any]) -> Any:
    quant = config["training"]["quantization"]
    if not (quant["load_in_4bit"] or quant["load_in_8bit"]):
        return None
    if not torch.cuda.is_available():
        raise QuantizationUnavailable(
            "4-bit/8-bit quantization (bitsandbytes) needs a CUDA GPU; this machine has none"
        )
    from transformers import BitsAndBytesConfig

    if quant["load_in_8bit"]:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant["bnb_4bit_quant_type"],
        bnb_4bit_compute_dtype=getattr(torch, quant["bnb_4bit_compute_dtype"]),
        bnb_4bit_use_double_quant=quant["bnb_4bit_use_double_quant"],
    )


def load_model(config: dict[str, Any]) -> Any:
    from transformers import AutoModelForCausalLM

    model_config = config["model"]
    quantization = quantization_config(config)
    dtype = model_config["torch_dtype"]
    kwargs: dict[str, Any] = {
        "trust_remote_code": model_config["trust_remote_code"],
        "dtype": dtype if dtype in (None, "auto") else getattr(torch, dtype),
        "token": os.environ.get("HF_TOKEN"),
    }
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if torch.cuda.is_available() and model_config["device_map"]:
        kwargs["device_map"] = model_config["device_map"]
    model = AutoModelForCausalLM.from_pretrained(model_config["name"], **kwargs)
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config["training"]["gradient_checkpointing"]
        )
    return model


def lora_config(config: dict[str, Any], model: Any) -> Any:
    from peft import LoraConfig

    training = config["training"]
    targets = training["lora_target_modules"] or DEFAULT_TARGETS.get(
        model.config.model_type, "all-linear"
    )
    return LoraConfig(
        r=int(training["lora_r"]),
        lora_alpha=int(training["lora_alpha"]),
        lora_dropout=float(training["lora_dropout"]),
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


# -- trainer ------------------------------------------------------------------------------


def training_arguments(config: dict[str, Any], output_dir: Path, has_eval: bool) -> dict[str, Any]:
    """Arguments shared by SFTConfig, DPOConfig and ORPOConfig."""
    training = config["training"]
    eval_steps, save_steps = training["eval_steps"], training["save_steps"]
    eval_strategy = "steps" if eval_steps else "epoch"
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": float(training["num_epochs"]),
        "max_steps": int(training["max_steps"]),
        "per_device_train_batch_size": int(training["batch_size"]),
        "per_device_eval_batch_size": int(training["batch_size"]),
        "gradient_accumulation_steps": int(training["gradient_accumulation_steps"]),
        "learning_rate": float(training["learning_rate"]),
        "warmup_steps": int(training["warmup_steps"]),
        "weight_decay": float(training["weight_decay"]),
        "optim": training["optim"],
        "gradient_checkpointing": bool(training["gradient_checkpointing"]),
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "bf16": bool(training["bf16"]),
        "fp16": bool(training["fp16"]),
        "logging_steps": int(training["logging_steps"]),
        "eval_strategy": eval_strategy if has_eval else "no",
        "eval_steps": eval_steps,
        "save_strategy": "steps" if save_steps else "epoch",
        "save_steps": save_steps or 500,
        "save_total_limit": 2,
        "seed": int(training["seed"]),
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": not torch.cuda.is_available(),
        "max_length": int(config["data"]["max_seq_length"]),
    }


def build_trainer(
    config: dict[str, Any], model: Any, tokenizer: Any, data: Any, output_dir: Path,
    callbacks: list[Any],
) -> Any:  # fmt: skip
    method = config["training"]["method"]
    common = training_arguments(config, output_dir, data.eval is not None)
    kwargs = {
        "model": model,
        "train_dataset": data.train,
        "eval_dataset": data.eval,
        "processing_class": tokenizer,
        "peft_config": lora_config(config, model),
        "callbacks": callbacks,
    }
    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(
            **common, packing=bool(config["training"]["packing"]), dataset_text_field="text"
        )
        return SFTTrainer(args=args, **kwargs)
    beta = float(config["training"]["beta"])
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer(args=DPOConfig(**common, beta=beta), **kwargs)
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOTrainer(args=ORPOConfig(**common, beta=beta), **kwargs)


def parameter_counts(model: Any) -> dict[str, Any]:
    trainable, total = model.get_nb_trainable_parameters()
    percent = 100.0 * trainable / total if total else 0.0
    return {"total_params": total, "trainable_params": trainable, "trainable_percent": percent}


# -- the run ------------------------------------------------------------------------------


def train(run: Run) -> Outcome:
    config, reporter = run.config, run.reporter
    status(reporter, "loading_model", f"loading {config['model']['name']}")
    tokenizer = load_tokenizer(config)
    model = load_model(config)
    status(reporter, "loading_data", f"reading {run.dataset_path.name}")
    data = prepare(read_jsonl(run.dataset_path), config, tokenizer)
    callback = TuneboardCallback(
        reporter, config, tokenizer, data.samples,
        mean_tokens_per_row(data.train, tokenizer), deadline_of(run),
    )  # fmt: skip
    trainer = build_trainer(config, model, tokenizer, data, run.output_dir, [callback])
    counts = parameter_counts(trainer.model)
    rows = {"train_rows": len(data.train), "eval_rows": len(data.eval) if data.eval else 0}
    status(reporter, "started", f"{data.data_format} data, {config['training']['method']}",
           **counts, **rows)  # fmt: skip
    write_config(run.output_dir, config)
    callback.set_phase("training")
    trainer.train(resume_from_checkpoint=resume_checkpoint(run))
    if callback.stop_reason is None:
        finish_evaluation(trainer, callback, data)
    adapter = save_adapter(run, trainer, tokenizer, callback)
    # A stopped run uploads too: DESIGN §5 "stop asks the trainer to save, upload and exit".
    hub_repo = upload(run, adapter, callback)
    return Outcome(callback.stop_reason, callback.last_loss, adapter, hub_repo)


def resume_checkpoint(run: Run) -> str | None:
    if not (run.args.resume or run.spec.get("resume")):
        return None
    from transformers.trainer_utils import get_last_checkpoint

    checkpoint = get_last_checkpoint(str(run.output_dir))
    if checkpoint:
        log.info("resuming from %s", checkpoint)
        run.reporter.emit("log", {"level": "info", "message": f"resuming from {checkpoint}"})
    return checkpoint


def finish_evaluation(trainer: Any, callback: TuneboardCallback, data: Any) -> None:
    state = trainer.state
    if data.eval is not None and callback.evaluated_step != state.global_step:
        callback.set_phase("evaluating")
        trainer.evaluate()
    callback.predict(state, trainer.model)


def save_adapter(run: Run, trainer: Any, tokenizer: Any, callback: TuneboardCallback) -> Path:
    from trainer.hub import CardFacts, model_card

    callback.set_phase("saving")
    adapter = run.output_dir / "adapter"
    trainer.save_model(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    write_config(adapter, run.config)
    facts = CardFacts(
        base_model=run.config["model"]["name"],
        dataset_sha256=dataset_sha256(run),
        method=run.config["training"]["method"],
        final_loss=callback.last_loss,
        runtime_s=time.monotonic() - run.started,
        cost=cost_so_far(run),
    )
    (adapter / "README.md").write_text(model_card(facts, run.config))
    return adapter


def dataset_sha256(run: Run) -> str:
    known = (run.spec.get("dataset") or {}).get("sha256")
    return str(known) if known else hashlib.sha256(run.dataset_path.read_bytes()).hexdigest()


def cost_so_far(run: Run) -> str:
    # The spec carries no price today; a server that adds `price_per_hour` gets a real figure.
    price = run.spec.get("price_per_hour")
    if price is None:
        return "unknown"
    hours = (time.monotonic() - run.started) / 3600
    return f"${float(price) * hours:.2f}"


def upload(run: Run, adapter: Path, callback: TuneboardCallback) -> str | None:
    token, repo = os.environ.get("HF_TOKEN"), run.spec.get("hub_repo")
    if not (token and repo):
        return None
    from trainer.hub import push_adapter

    callback.set_phase("uploading")
    push_adapter(adapter, repo, token)
    return str(repo)


def status(reporter: Reporter, phase: str, message: str, **extras: Any) -> None:
    log.info("%s: %s", phase, message)
    reporter.emit("status", {"phase": phase, "message": message, **extras})


def report_outcome(run: Run, outcome: Outcome) -> None:
    common = {"adapter_path": str(outcome.adapter_path), "final_loss": outcome.final_loss}
    if outcome.stop_reason:
        status(run.reporter, "stopped", f"stopped: {outcome.stop_reason}",
               reason=outcome.stop_reason, **common)  # fmt: skip
        return
    runtime = time.monotonic() - run.started
    status(run.reporter, "succeeded", "training finished",
           runtime_s=runtime, hub_repo=outcome.hub_repo, **common)  # fmt: skip


def report_failure(reporter: Reporter, exc: BaseException) -> None:
    log.exception("training failed")
    status(reporter, "failed", str(exc) or type(exc).__name__, error_type=type(exc).__name__,
           traceback=traceback.format_exc())  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        run = open_run(args)
    except Exception:
        log.exception("could not start: no spec, dataset or config")
        return 2
    code = 0
    try:
        report_outcome(run, train(run))
    except Exception as exc:
        report_failure(run.reporter, exc)
        code = 1
    if not run.reporter.close(args.dead_man_seconds):
        log.error("dead man's switch: server unreachable for %.0fs, exiting with %d events spooled",
                  args.dead_man_seconds, run.reporter.undelivered)  # fmt: skip
    return code
