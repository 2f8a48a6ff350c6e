"""Trainer fixtures: the tiny model (built once), toy datasets, a live ingest server, launchers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.ingest_server import IngestServer
from trainer.tiny import build_tiny_model

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[2]

# Learnable on purpose: a handful of prompts, each always answered the same way.
INSTRUCTION_ROWS = [
    {"instruction": f"count from {start}", "input": "",
     "output": " ".join(str(start + k) for k in range(5))}
    for start in range(4)
] * 10  # fmt: skip
PREFERENCE_ROWS = [
    {"prompt": f"say {word}", "chosen": f"{word} {word} {word}", "rejected": "no no no"}
    for word in ("cat", "dog", "sun", "sky")
] * 10


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def tiny_config(model_dir: Path, **training: Any) -> dict[str, Any]:
    """A fast config for the tiny model: small LoRA, high learning rate, frequent logging."""
    return {
        "name": "tiny-test",
        "model": {"name": str(model_dir)},
        "data": {"eval_split": 0.1, "max_seq_length": 64},
        "training": {
            "max_steps": 16, "logging_steps": 2, "learning_rate": 0.03, "batch_size": 4,
            "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, **training,
        },
        "predictions": {"sample_count": 2, "max_new_tokens": 12, "sample_frequency": "epoch"},
    }  # fmt: skip


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [json.dumps(row) for row in INSTRUCTION_ROWS + PREFERENCE_ROWS]
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), texts)


@pytest.fixture
def ingest(tiny_model: Path) -> Iterator[IngestServer]:
    server = IngestServer(tiny_config(tiny_model), jsonl(INSTRUCTION_ROWS)).start()
    yield server
    server.take_down()


def trainer_env(server: IngestServer | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBOARD_")}
    env.pop("HF_TOKEN", None)
    env["PYTHONPATH"] = str(REPO)
    return {**env, **(server.env() if server else {})}


def launch(server: IngestServer | None, *args: str) -> subprocess.Popen[str]:
    """`python -m trainer` as the pod runs it, with the test server's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", "--dead-man-seconds", "20", *args],
        cwd=REPO,
        env=trainer_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def run_trainer() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(server: IngestServer | None, *args: str, timeout: float = 180) -> Any:
        process = launch(server, *args)
        output, _ = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, output, "")

    return run


def adapter_tensors(directory: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(directory / "adapter_model.safetensors"))
