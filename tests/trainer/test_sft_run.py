"""One real SFT run of the tiny model through `python -m trainer`, reporting to a live server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.trainer.conftest import INSTRUCTION_ROWS, adapter_tensors, jsonl, launch, tiny_config
from tests.trainer.ingest_server import IngestServer

pytestmark = pytest.mark.slow


@dataclass
class FinishedRun:
    server: IngestServer
    output_dir: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def sft_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FinishedRun]:
    server = IngestServer(tiny_config(tiny_model), jsonl(INSTRUCTION_ROWS)).start()
    output_dir = tmp_path_factory.mktemp("sft-run")
    process = launch(server, "--output-dir", str(output_dir))
    output, _ = process.communicate(timeout=180)
    yield FinishedRun(
        server, output_dir, subprocess.CompletedProcess([], process.returncode, output)
    )
    server.take_down()


def test_it_exits_cleanly_and_reports_success(sft_run: FinishedRun) -> None:
    assert sft_run.result.returncode == 0, sft_run.result.stdout[-3000:]
    final = sft_run.server.statuses()[-1]
    assert final["phase"] == "succeeded"
    assert final["final_loss"] > 0
    assert final["runtime_s"] > 0
    assert final["adapter_path"] == str(sft_run.output_dir / "adapter")


def test_it_reports_loss_that_falls(sft_run: FinishedRun) -> None:
    metrics = [m for m in sft_run.server.of_type("metric") if "loss" in m["values"]]
    # given logging_steps=2 and max_steps=16, when the run is over:
    assert [m["step"] for m in metrics] == [2, 4, 6, 8, 10, 12, 14, 16]
    losses = [m["values"]["loss"] for m in metrics]
    assert sum(losses[-2:]) / 2 < losses[0] * 0.8


def test_each_logging_step_carries_the_contract_values(sft_run: FinishedRun) -> None:
    metric = next(m for m in sft_run.server.of_type("metric") if "loss" in m["values"])
    assert metric["total_steps"] == 16
    assert metric["epoch"] > 0
    for key in ("loss", "learning_rate", "grad_norm", "samples_per_second", "tokens_per_second"):
        assert metric["values"][key] > 0, key
    system = sft_run.server.of_type("system")
    assert system and system[0]["values"]["cpu_mem_rss_mb"] > 0


def test_it_reports_eval_loss(sft_run: FinishedRun) -> None:
    evals = [m for m in sft_run.server.of_type("metric") if "eval_loss" in m["values"]]
    assert evals and all(m["values"]["eval_loss"] > 0 for m in evals)


def test_events_are_numbered_from_one_without_gaps(sft_run: FinishedRun) -> None:
    seqs = [event["seq"] for event in sft_run.server.stored()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_it_reports_the_phases_in_order(sft_run: FinishedRun) -> None:
    phases = [s["phase"] for s in sft_run.server.statuses()]
    assert phases[:4] == ["loading_model", "loading_data", "started", "training"]
    assert {"evaluating", "predicting", "saving"} <= set(phases)
    started = sft_run.server.statuses()[2]
    assert started["train_rows"] == 36 and started["eval_rows"] == 4
    assert 0 < started["trainable_params"] < started["total_params"]
    assert 0 < started["trainable_percent"] < 100


def test_predictions_arrive_with_scores_between_zero_and_one(sft_run: FinishedRun) -> None:
    predictions = sft_run.server.of_type("prediction")
    assert {p["sample_id"] for p in predictions} == {"s0", "s1"}
    for prediction in predictions:
        assert prediction["prompt"].startswith("count from")
        assert set(prediction["scores"]) == {"bleu", "rouge1", "rouge2", "rougeL"}
        assert all(0.0 <= score <= 1.0 for score in prediction["scores"].values())
    corpus = [m["values"] for m in sft_run.server.of_type("metric") if "pred_bleu" in m["values"]]
    assert corpus and all(0.0 <= v <= 1.0 for values in corpus for v in values.values())


def test_it_changes_the_lora_weights(sft_run: FinishedRun) -> None:
    tensors = adapter_tensors(sft_run.output_dir / "adapter")
    lora_b = [t for name, t in tensors.items() if "lora_B" in name]
    # lora_B starts at zero, so any non-zero value was learnt.
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)


def test_it_saves_adapter_tokenizer_and_config_side_by_side(sft_run: FinishedRun) -> None:
    adapter = sft_run.output_dir / "adapter"
    for name in ("adapter_config.json", "tokenizer.json", "tuneboard_config.json", "README.md"):
        assert (adapter / name).exists(), name
    saved = json.loads((adapter / "tuneboard_config.json").read_text())
    assert saved["training"]["max_steps"] == 16
    assert saved["training"]["optim"] == "adamw_torch"  # defaults filled in
    checkpoint = sft_run.output_dir / "checkpoint-16"
    assert (checkpoint / "tuneboard_config.json").exists()
    assert "Base model" in (adapter / "README.md").read_text()
