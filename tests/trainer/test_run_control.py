"""Stopping, deadlines, outages and resuming: real runs of `python -m trainer` on the tiny model."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.conftest import adapter_tensors, launch
from tests.trainer.ingest_server import IngestServer
from trainer.reporting import SPOOL_NAME

pytestmark = pytest.mark.slow


def loss_steps(server: IngestServer) -> list[int]:
    return [m["step"] for m in server.of_type("metric") if "loss" in m["values"]]


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def long_run(server: IngestServer, steps: int = 300) -> None:
    """Many short steps, one event pair per step, nothing but training in between."""
    server.config["training"].update(max_steps=steps, logging_steps=1)
    server.config["predictions"]["enabled"] = False
    server.config["data"]["eval_split"] = 0


def test_a_stop_command_ends_the_run_with_an_adapter_saved(
    ingest: IngestServer, run_trainer: Any, tmp_path: Path
) -> None:
    # given a long run and a server that answers "stop"
    long_run(ingest)
    ingest.command = "stop"
    # when
    result = run_trainer(ingest, "--output-dir", str(tmp_path))
    # then
    assert result.returncode == 0, result.stdout[-3000:]
    final = ingest.statuses()[-1]
    assert final["phase"] == "stopped" and final["reason"] == "server_stop"
    assert final["adapter_path"] == str(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert max(loss_steps(ingest), default=0) < 300
    assert list(tmp_path.glob("checkpoint-*")), "a checkpoint to resume from"


def test_the_deadline_ends_the_run_with_an_adapter_saved(
    ingest: IngestServer, run_trainer: Any, tmp_path: Path
) -> None:
    long_run(ingest)
    ingest.spec_extra["deadline_at"] = datetime.now(UTC).isoformat()
    result = run_trainer(ingest, "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    final = ingest.statuses()[-1]
    assert final["phase"] == "stopped" and final["reason"] == "deadline"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert max(loss_steps(ingest), default=0) < 300


def test_a_server_outage_loses_no_event_and_duplicates_none(
    ingest: IngestServer, tmp_path: Path
) -> None:
    # given a run under way
    long_run(ingest)
    process = launch(ingest, "--output-dir", str(tmp_path), "--backoff-max-s", "0.5")
    wait_for(lambda: bool(loss_steps(ingest)))
    # when the server goes away for a while and comes back
    ingest.take_down()
    time.sleep(2)
    ingest.bring_back()
    output, _ = process.communicate(timeout=180)
    # then every event arrived exactly once, in one unbroken numbering
    assert process.returncode == 0, output[-3000:]
    assert "ingest unreachable" in output
    seqs = [event["seq"] for event in ingest.stored()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sum(len(batch) for batch in ingest.batches) == len(seqs)
    assert ingest.statuses()[-1]["phase"] == "succeeded"
    assert loss_steps(ingest) == list(range(1, 301))
    assert (tmp_path / SPOOL_NAME).read_text() == ""


def test_it_exits_when_the_server_never_comes_back(ingest: IngestServer, tmp_path: Path) -> None:
    # given a server that disappears during training for good
    long_run(ingest, steps=100)
    process = launch(
        ingest, "--output-dir", str(tmp_path), "--backoff-max-s", "0.5", "--dead-man-seconds", "3"
    )
    wait_for(lambda: bool(loss_steps(ingest)))
    ingest.take_down()
    # when training ends, the dead man's switch lets the pod go
    output, _ = process.communicate(timeout=120)
    # then it exits anyway, with the undelivered events kept in the spool
    assert process.returncode == 0, output[-3000:]
    assert "dead man's switch" in output
    spool = (tmp_path / SPOOL_NAME).read_text()
    assert '"phase": "succeeded"' in spool


def test_it_resumes_from_its_latest_checkpoint(
    ingest: IngestServer, run_trainer: Any, tmp_path: Path
) -> None:
    # given a first run that stopped at step 6
    ingest.config["training"]["max_steps"] = 6
    first = run_trainer(ingest, "--output-dir", str(tmp_path))
    assert first.returncode == 0, first.stdout[-3000:]
    first_adapter = adapter_tensors(tmp_path / "adapter")
    # when the job is relaunched with resume and more steps
    ingest.config["training"]["max_steps"] = 10
    ingest.spec_extra["resume"] = True
    second = run_trainer(ingest, "--output-dir", str(tmp_path))
    # then training picks up after step 6 and the event numbering carries on
    assert second.returncode == 0, second.stdout[-3000:]
    assert any("resuming from" in entry["message"] for entry in ingest.of_type("log"))
    assert loss_steps(ingest) == [2, 4, 6, 8, 10]
    seqs = [event["seq"] for event in ingest.stored()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert any(
        not (first_adapter[name] == tensor).all()
        for name, tensor in adapter_tensors(tmp_path / "adapter").items()
    )
