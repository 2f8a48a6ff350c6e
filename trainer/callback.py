"""The one `TrainerCallback` that turns training into Tuneboard events and obeys stop requests.

Everything here runs on the training thread between steps, so it only reads what the Trainer
already computed (its `logs` are plain floats) and hands events to `Reporter.emit`: no `.item()`,
no CUDA synchronisation, no I/O except when saving a checkpoint or running a prediction round.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainer.data import Sample
from trainer.predictions import GenerationSettings, run_round
from trainer.reporting import Reporter
from trainer.scoring import Scorer
from trainer.system_stats import SystemStats

log = logging.getLogger(__name__)

CONFIG_NAME = "tuneboard_config.json"
TRAIN_KEYS = ("loss", "learning_rate", "grad_norm")


class TuneboardCallback(TrainerCallback):
    def __init__(
        self,
        reporter: Reporter,
        config: dict[str, Any],
        tokenizer: Any,
        samples: list[Sample],
        tokens_per_row: float,
        deadline: float | None,
    ) -> None:
        self.reporter = reporter
        self.config = config
        self.tokenizer = tokenizer
        self.samples = samples if config["predictions"]["enabled"] else []
        self.tokens_per_row = tokens_per_row
        self.deadline = deadline
        self.stop_reason: str | None = None
        self.last_loss: float | None = None
        self.scorer: Scorer | None = None
        self.generation = GenerationSettings.from_config(config["predictions"])
        self.system = SystemStats()
        self._phase = ""
        self._last_log = (0, time.perf_counter(), 0.0)
        self._predicted_step = -1
        self.evaluated_step = -1
        self._last_system = float("-inf")

    # -- phases and stopping ---------------------------------------------------------------

    def set_phase(self, phase: str, **extras: Any) -> None:
        if phase != self._phase or extras:
            self._phase = phase
            self.reporter.emit("status", {"phase": phase, "message": phase, **extras})

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        self._last_log = (state.global_step, time.perf_counter(), 0.0)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState,
                      control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if self._phase != "training":
            self.set_phase("training")

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if self.stop_reason is None:
            self.stop_reason = self._stop_reason()
        if state.global_step >= state.max_steps:
            # Checkpoint the last step too, so a run shorter than an epoch can still resume.
            control.should_save = True
        if self.stop_reason is not None:
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = False
            return
        if control.should_evaluate:
            self.set_phase("evaluating")
        frequency = self.config["predictions"]["sample_frequency"]
        interval = int(self.config["predictions"]["step_interval"])
        if frequency == "steps" and interval > 0 and state.global_step % interval == 0:
            self.predict(state, kwargs["model"])

    def _stop_reason(self) -> str | None:
        if self.reporter.stop_requested.is_set():
            return "server_stop"
        if self.deadline is not None and time.time() >= self.deadline:
            return "deadline"
        return None

    # -- metrics ---------------------------------------------------------------------------

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        logs = logs or {}
        if "loss" in logs:
            self._report_train_log(args, state, logs)
        if "eval_loss" in logs:
            values = {k: v for k, v in logs.items() if k.startswith("eval_") and _is_number(v)}
            self._emit_metric(state, values)

    def _report_train_log(
        self, args: TrainingArguments, state: TrainerState, logs: dict[str, Any]
    ) -> None:
        values = {k: logs[k] for k in TRAIN_KEYS if _is_number(logs.get(k))}
        values.update(self._throughput(args, state, logs))
        if _is_number(logs["loss"]):
            self.last_loss = float(logs["loss"])
        self._emit_metric(state, values)
        now = time.monotonic()
        # Memory moves slowly; one sample per report interval is plenty and keeps steps cheap.
        if now - self._last_system >= self.reporter.settings.report_interval_s:
            self._last_system = now
            values = self.system.sample()
            self.reporter.emit("system", {"step": state.global_step, "values": values})

    def _throughput(
        self, args: TrainingArguments, state: TrainerState, logs: dict[str, Any]
    ) -> dict[str, float]:
        last_step, last_time, last_tokens = self._last_log
        now = time.perf_counter()
        elapsed = max(now - last_time, 1e-9)
        rows_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        samples = (state.global_step - last_step) * rows_per_step * args.world_size
        tokens_seen = logs.get("num_tokens", logs.get("num_input_tokens_seen"))
        if isinstance(tokens_seen, int | float):
            tokens = float(tokens_seen) - last_tokens
            self._last_log = (state.global_step, now, float(tokens_seen))
        else:  # trl's ORPO counts no tokens: estimate from the data's mean row length
            tokens = samples * self.tokens_per_row
            self._last_log = (state.global_step, now, 0.0)
        return {"samples_per_second": samples / elapsed, "tokens_per_second": tokens / elapsed}

    def _emit_metric(self, state: TrainerState, values: dict[str, Any]) -> None:
        self.reporter.emit(
            "metric",
            {
                "step": state.global_step,
                "epoch": state.epoch,
                "total_steps": state.max_steps,
                "values": values,
            },
        )

    # -- predictions -----------------------------------------------------------------------

    def on_evaluate(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        self.evaluated_step = state.global_step
        if self.config["predictions"]["sample_frequency"] == "eval" and "model" in kwargs:
            self.predict(state, kwargs["model"])

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if self.config["predictions"]["sample_frequency"] == "epoch" and self.stop_reason is None:
            self.predict(state, kwargs["model"])
        if control.should_evaluate:
            self.set_phase("evaluating")

    def predict(self, state: TrainerState, model: Any) -> None:
        """One prediction round at this step (at most one per step)."""
        if not self.samples or state.global_step == self._predicted_step:
            return
        self._predicted_step = state.global_step
        previous = self._phase
        self.set_phase("predicting")
        if self.scorer is None:
            self.scorer = Scorer()
            self.reporter.emit(
                "log", {"level": "info", "message": f"scoring with {self.scorer.backend}"}
            )
        seed = int(self.config["training"]["seed"])
        result = run_round(model, self.tokenizer, self.samples, self.generation, self.scorer, seed)
        where = {"step": state.global_step, "epoch": state.epoch}
        for sample in result.per_sample:
            self.reporter.emit("prediction", {**where, **sample})
        corpus = {f"pred_{key}": value for key, value in result.corpus.items()}
        self._emit_metric(state, corpus)
        if previous:
            self.set_phase(previous)

    # -- checkpoints -----------------------------------------------------------------------

    def on_save(self, args: TrainingArguments, state: TrainerState,
                control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            write_config(checkpoint, self.config)


def write_config(directory: Path, config: dict[str, Any]) -> None:
    """The resolved config beside every checkpoint and adapter: what produced these weights."""
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
