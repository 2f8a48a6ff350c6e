"""DPO and ORPO runs on preference data, and failures that must reach the server as `failed`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.conftest import PREFERENCE_ROWS, adapter_tensors, jsonl
from tests.trainer.ingest_server import IngestServer
from trainer.train import main


def run_in_process(server: IngestServer, output_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return main(["--output-dir", str(output_dir), "--dead-man-seconds", "10"])


def losses(server: IngestServer) -> list[float]:
    return [m["values"]["loss"] for m in server.of_type("metric") if "loss" in m["values"]]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_preference_methods_report_loss_that_falls(
    method: str, ingest: IngestServer, run_trainer: Any, tmp_path: Path
) -> None:
    # given a preference dataset the tiny model can learn
    ingest.dataset = jsonl(PREFERENCE_ROWS)
    ingest.config["training"].update(method=method, max_steps=16, beta=0.1)
    # when
    result = run_trainer(ingest, "--output-dir", str(tmp_path))
    # then
    assert result.returncode == 0, result.stdout[-3000:]
    reported = losses(ingest)
    assert len(reported) == 8
    assert sum(reported[-2:]) / 2 < reported[0]
    assert ingest.statuses()[-1]["phase"] == "succeeded"
    predictions = ingest.of_type("prediction")
    assert predictions and predictions[0]["expected"].split()[0] in {"cat", "dog", "sun", "sky"}
    lora_b = [t for name, t in adapter_tensors(tmp_path / "adapter").items() if "lora_B" in name]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)


def test_a_bad_model_name_arrives_as_a_failed_status(
    ingest: IngestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest.config["model"]["name"] = str(tmp_path / "no-such-model")
    code = run_in_process(ingest, tmp_path / "out", monkeypatch)
    assert code == 1
    failed = ingest.statuses()[-1]
    assert failed["phase"] == "failed"
    assert "no-such-model" in failed["message"]
    assert failed["error_type"] and "Traceback" in failed["traceback"]


def test_a_bad_dataset_arrives_as_a_failed_status(
    ingest: IngestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest.dataset = b'{"text": "fine"}\nthis is not json\n'
    code = run_in_process(ingest, tmp_path / "out", monkeypatch)
    assert code == 1
    failed = ingest.statuses()[-1]
    assert failed == failed | {"phase": "failed", "error_type": "DataError"}
    assert "line 2 is not JSON" in failed["message"]


def test_dpo_on_instruction_data_fails_with_a_clear_message(
    ingest: IngestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest.config["training"]["method"] = "dpo"
    assert run_in_process(ingest, tmp_path / "out", monkeypatch) == 1
    assert "dpo needs a preference dataset" in ingest.statuses()[-1]["message"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA refusal")
def test_quantization_without_cuda_fails_with_a_clear_message(
    ingest: IngestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest.config["training"]["quantization"] = {"load_in_4bit": True}
    assert run_in_process(ingest, tmp_path / "out", monkeypatch) == 1
    failed = ingest.statuses()[-1]
    assert failed["error_type"] == "QuantizationUnavailable"
    assert "CUDA" in failed["message"]
