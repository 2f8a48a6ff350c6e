"""The reporter thread against the real test ingest server: batching, spool, replay, commands."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.trainer.ingest_server import IngestServer
from trainer.client import IngestClient
from trainer.reporting import SPOOL_NAME, Reporter, ReporterSettings, backoff_delay

FAST = ReporterSettings(report_interval_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2)


@pytest.fixture
def server() -> Iterator[IngestServer]:
    server = IngestServer({}, b"").start()
    yield server
    server.take_down()


def reporter_for(
    server: IngestServer, spool_dir: Path, settings: ReporterSettings = FAST
) -> Reporter:
    client = IngestClient(server.url, server.token, timeout_s=2)
    return Reporter(client.post_events, spool_dir, settings)


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_it_delivers_events_numbered_from_one(server: IngestServer, tmp_path: Path) -> None:
    reporter = reporter_for(server, tmp_path)
    for step in range(25):
        reporter.emit("metric", {"step": step, "values": {"loss": 1.0}})
    assert reporter.close(timeout_s=5)
    assert [e["seq"] for e in server.stored()] == list(range(1, 26))
    assert server.stored()[3]["data"]["step"] == 3


def test_it_sends_a_full_batch_without_waiting_for_the_interval(
    server: IngestServer, tmp_path: Path
) -> None:
    settings = ReporterSettings(report_interval_s=60, max_batch_events=10)
    reporter = reporter_for(server, tmp_path, settings)
    for step in range(10):
        reporter.emit("metric", {"step": step, "values": {}})
    wait_for(lambda: len(server.stored()) == 10, timeout=5)
    assert reporter.close(timeout_s=5)


def test_it_spools_while_the_server_is_down_and_replays_once_back(
    server: IngestServer, tmp_path: Path
) -> None:
    # given a reporter that has delivered one event
    reporter = reporter_for(server, tmp_path)
    reporter.emit("log", {"level": "info", "message": "first"})
    wait_for(lambda: len(server.stored()) == 1)
    # when the server goes away, events are kept on disk
    server.take_down()
    for step in range(5):
        reporter.emit("metric", {"step": step, "values": {}})
    spool = tmp_path / SPOOL_NAME
    wait_for(lambda: spool.exists() and len(spool.read_text().splitlines()) == 5)
    # and once it is back they are replayed, each exactly once, and the spool empties
    server.bring_back()
    assert reporter.close(timeout_s=10)
    assert [e["seq"] for e in server.stored()] == [1, 2, 3, 4, 5, 6]
    assert sum(len(batch) for batch in server.batches) == 6
    assert spool.read_text() == ""


def test_close_gives_up_after_its_timeout_keeping_the_spool(
    server: IngestServer, tmp_path: Path
) -> None:
    server.take_down()
    reporter = reporter_for(server, tmp_path)
    reporter.emit("status", {"phase": "succeeded", "message": "done"})
    started = time.monotonic()
    assert not reporter.close(timeout_s=1)
    assert time.monotonic() - started < 5
    spooled = [json.loads(line) for line in (tmp_path / SPOOL_NAME).read_text().splitlines()]
    assert [e["data"]["phase"] for e in spooled] == ["succeeded"]


def test_a_new_reporter_continues_the_numbering_and_replays_the_spool(
    server: IngestServer, tmp_path: Path
) -> None:
    # given a previous process that could not deliver its last events
    first = reporter_for(server, tmp_path)
    first.emit("log", {"level": "info", "message": "delivered"})
    wait_for(lambda: len(server.stored()) == 1)
    server.take_down()
    first.emit("log", {"level": "info", "message": "spooled"})
    first.close(timeout_s=0.5)
    server.bring_back()
    # when a resumed process reports again
    second = reporter_for(server, tmp_path)
    second.emit("log", {"level": "info", "message": "after resume"})
    assert second.close(timeout_s=5)
    # then nothing is lost and nothing is renumbered
    assert [(e["seq"], e["data"]["message"]) for e in server.stored()] == [
        (1, "delivered"), (2, "spooled"), (3, "after resume"),
    ]  # fmt: skip


def test_a_stop_command_is_noticed(server: IngestServer, tmp_path: Path) -> None:
    server.command = "stop"
    reporter = reporter_for(server, tmp_path)
    reporter.emit("log", {"level": "info", "message": "hello"})
    wait_for(reporter.stop_requested.is_set)
    reporter.close(timeout_s=2)


def test_a_refused_token_stops_reporting_without_hanging(
    server: IngestServer, tmp_path: Path
) -> None:
    client = IngestClient(server.url, "wrong-token", timeout_s=2)
    reporter = Reporter(client.post_events, tmp_path, FAST)
    reporter.emit("log", {"level": "info", "message": "nobody listens"})
    assert not reporter.close(timeout_s=30)
    assert server.stored() == []
    assert (tmp_path / SPOOL_NAME).read_text().count("nobody listens") == 1


def test_backoff_grows_exponentially_with_jitter_up_to_a_cap() -> None:
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (20, 30.0)]:
        delays = [backoff_delay(attempt, base_s=1.0, max_s=30.0) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not lock-step
