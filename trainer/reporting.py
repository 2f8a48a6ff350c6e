"""Event reporting: numbered events, a background sender thread and an on-disk spool.

The training thread only appends to a list under a lock (`Reporter.emit`); everything that can
block — JSON encoding, HTTP, disk — happens on the sender thread, so a slow or absent server never
stalls a training step. Events the server has not acknowledged are written to a JSONL spool in
the output dir and replayed with exponential backoff and jitter; the spool and a tiny state file
also let a resumed run continue the job's `seq` numbering instead of restarting at 1 (which the
server would silently deduplicate away).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from trainer.client import Ack, IngestRejected, IngestUnavailable

log = logging.getLogger(__name__)

Event = dict[str, Any]
EventSink = Callable[[list[Event]], Ack]

SPOOL_NAME = "events.spool.jsonl"
STATE_NAME = "reporter_state.json"


@dataclass
class ReporterSettings:
    report_interval_s: float = 2.0
    max_batch_events: int = 500
    max_batch_bytes: int = 1_048_576
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter: half fixed, half random, so pods don't retry in step."""
    ceiling = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class LogSink:
    """Where events go on a run without a server: a JSONL file, or the log; all acked at once."""

    def __init__(self, path: Path | None = None, stream: TextIO | None = None) -> None:
        self.path = path
        self.stream = stream

    def __call__(self, events: list[Event]) -> Ack:
        lines = "".join(json.dumps(event) + "\n" for event in events)
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(lines)
        if self.stream is not None:
            self.stream.write(lines)
            self.stream.flush()
        if self.path is None and self.stream is None:
            for event in events:
                log.info("event %s %s %s", event["seq"], event["type"], event["data"])
        return Ack(events[-1]["seq"] if events else 0, None)


class Reporter:
    """Numbers events from 1 and delivers them from a background thread, at least once."""

    def __init__(self, send: EventSink, spool_dir: Path, settings: ReporterSettings) -> None:
        self.settings = settings
        self.stop_requested = threading.Event()
        self.last_contact = time.monotonic()
        self._send = send
        self._spool_path = spool_dir / SPOOL_NAME
        self._state_path = spool_dir / STATE_NAME
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._queue: list[Event] = []
        # Sender-thread state below: only `_run` and what it calls touch it.
        self._pending: list[Event] = self._read_spool()
        self._spooled_through = self._pending[-1]["seq"] if self._pending else 0
        self._seq = max(self._spooled_through, self._read_last_seq())
        self._saved_seq = self._seq
        self._attempt = 0
        self._retry_at = 0.0
        self._batch_limit = settings.max_batch_events
        self._refused = False
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._close_deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="tuneboard-reporter", daemon=True)
        self._thread.start()

    # -- training thread -------------------------------------------------------------------

    def emit(self, event_type: str, data: dict[str, Any]) -> int:
        """Queue one event; never blocks on I/O. Returns its seq."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._queue.append({"seq": seq, "type": event_type, "ts": now_iso(), "data": data})
            full = len(self._queue) >= self.settings.max_batch_events
        if full:
            self._wake.set()
        return seq

    def close(self, timeout_s: float) -> bool:
        """Deliver what is left, waiting at most `timeout_s`; True if the server has it all."""
        self._close_deadline = time.monotonic() + timeout_s
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout_s + 5)
        return not self._pending and not self._queue

    @property
    def undelivered(self) -> int:
        return len(self._pending) + len(self._queue)

    # -- sender thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._seconds_to_next_attempt())
            self._wake.clear()
            self._take_queue()
            if time.monotonic() >= self._retry_at and not self._refused:
                self._send_pending()
            if self._closing.is_set() and self._done_closing():
                self._spool_unspooled()
                return

    def _done_closing(self) -> bool:
        with self._lock:
            queued = bool(self._queue)
        nothing_left = not self._pending and not queued
        return nothing_left or self._refused or time.monotonic() >= self._close_deadline

    def _seconds_to_next_attempt(self) -> float:
        now = time.monotonic()
        wait = self.settings.report_interval_s
        if self._closing.is_set():
            # Closing: no more interval pacing, only the backoff and the close deadline.
            if not self._pending:
                return 0.0
            wait = max(0.0, self._close_deadline - now)
        if self._pending and not self._refused:
            wait = min(wait, max(0.0, self._retry_at - now))
        return wait

    def _take_queue(self) -> None:
        with self._lock:
            taken, self._queue = self._queue, []
            last_seq = self._seq
        self._pending.extend(taken)
        if last_seq != self._saved_seq:
            self._state_path.write_text(json.dumps({"last_seq": last_seq}))
            self._saved_seq = last_seq

    def _send_pending(self) -> None:
        while self._pending:
            batch = self._next_batch()
            try:
                ack = self._send(batch)
            except IngestUnavailable as exc:
                self._on_unreachable(exc)
                return
            except IngestRejected as exc:
                if not self._on_refused(exc, batch):
                    return
                continue
            self._on_ack(ack, batch)

    def _next_batch(self) -> list[Event]:
        batch: list[Event] = []
        size = len('{"events": []}')
        for event in self._pending[: self._batch_limit]:
            event_size = len(json.dumps(event)) + 2
            if batch and size + event_size > self.settings.max_batch_bytes:
                break
            batch.append(event)
            size += event_size
        return batch

    def _on_ack(self, ack: Ack, batch: list[Event]) -> None:
        # A 2xx means the whole batch is stored, even if the server's mark lags behind it.
        through = max(ack.acked_through, batch[-1]["seq"])
        self._pending = [event for event in self._pending if event["seq"] > through]
        self._attempt = 0
        self._retry_at = 0.0
        self.last_contact = time.monotonic()
        if ack.command == "stop" and not self.stop_requested.is_set():
            log.info("server asked the trainer to stop")
            self.stop_requested.set()
        if self._spooled_through:
            self._rewrite_spool()

    def _on_unreachable(self, exc: Exception) -> None:
        self._attempt += 1
        delay = backoff_delay(
            self._attempt, self.settings.backoff_base_s, self.settings.backoff_max_s
        )
        self._retry_at = time.monotonic() + delay
        log.warning("ingest unreachable (%s); %d events spooled, retry in %.1fs",
                    exc, len(self._pending), delay)  # fmt: skip
        self._spool_unspooled()

    def _on_refused(self, exc: IngestRejected, batch: list[Event]) -> bool:
        """Handle a 4xx; returns whether to go on sending."""
        if exc.status_code == 413 and len(batch) > 1:
            self._batch_limit = max(1, len(batch) // 2)
            return True
        if exc.status_code == 401:
            # The job is over or the token revoked: nobody will ever take these events.
            log.error("ingest refused our token (%s); reporting stops, spool kept", exc)
            self._refused = True
            self._spool_unspooled()
            return False
        log.error("ingest refused a batch of %d events, dropping it: %s", len(batch), exc)
        dropped = {event["seq"] for event in batch}
        self._pending = [event for event in self._pending if event["seq"] not in dropped]
        return True

    # -- spool -----------------------------------------------------------------------------

    def _spool_unspooled(self) -> None:
        fresh = [event for event in self._pending if event["seq"] > self._spooled_through]
        if not fresh:
            return
        with self._spool_path.open("a") as handle:
            handle.writelines(json.dumps(event) + "\n" for event in fresh)
        self._spooled_through = fresh[-1]["seq"]

    def _rewrite_spool(self) -> None:
        spooled = [event for event in self._pending if event["seq"] <= self._spooled_through]
        tmp = self._spool_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(event) + "\n" for event in spooled))
        tmp.replace(self._spool_path)
        if not spooled:
            self._spooled_through = 0

    def _read_spool(self) -> list[Event]:
        if not self._spool_path.exists():
            return []
        events = [json.loads(line) for line in self._spool_path.read_text().splitlines() if line]
        return sorted(events, key=lambda event: event["seq"])

    def _read_last_seq(self) -> int:
        try:
            return int(json.loads(self._state_path.read_text())["last_seq"])
        except (OSError, ValueError, KeyError):
            return 0
