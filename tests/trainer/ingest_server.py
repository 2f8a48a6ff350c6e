"""A small real HTTP server speaking ingest API v1 (contracts §3), in memory, for trainer tests.

It binds 127.0.0.1 on a free port, serves one job's spec and dataset, stores events
deduplicated by `seq`, answers `acked_through`, can be told to answer `command: "stop"`, and can
be taken down and brought back on the same port to play an outage.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/api/ingest/v1"
TEST_TOKEN = "test-token"
EVENT_TYPES = {"metric", "prediction", "status", "log", "system"}


class IngestServer:
    def __init__(self, config: dict[str, Any], dataset: bytes, token: str = TEST_TOKEN) -> None:
        self.config = config
        self.dataset = dataset
        self.token = token
        self.spec_extra: dict[str, Any] = {"report_interval_s": 0.2}
        self.command: str | None = None
        self.events: dict[int, dict[str, Any]] = {}
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> IngestServer:
        handler = type("Handler", (_Handler,), {"ingest": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def take_down(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def bring_back(self) -> None:
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "TUNEBOARD_URL": self.url,
            "TUNEBOARD_JOB_ID": "job-1",
            "TUNEBOARD_INGEST_TOKEN": self.token,
        }

    # -- what the tests read -----------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        return {
            "job_id": "job-1",
            "config": self.config,
            "dataset": {"url": f"{self.url}{PREFIX}/dataset", "format": None, "rows": None,
                        "sha256": None},
            "max_batch_events": 500,
            "max_batch_bytes": 1_048_576,
            "deadline_at": None,
            "hub_repo": None,
            "resume": False,
            **self.spec_extra,
        }  # fmt: skip

    def stored(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.events[seq] for seq in sorted(self.events)]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.stored() if e["type"] == event_type]

    def statuses(self) -> list[dict[str, Any]]:
        return self.of_type("status")

    def store(self, events: list[dict[str, Any]]) -> int:
        with self.lock:
            for event in events:
                self.events.setdefault(event["seq"], event)
            self.batches.append([event["seq"] for event in events])
            return max(self.events, default=0)


def validation_error(body: Any) -> str | None:
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        return "body needs an 'events' list"
    for index, event in enumerate(events):
        if not isinstance(event.get("seq"), int) or event["seq"] < 1:
            return f"event {index}: seq must be a positive integer"
        if event.get("type") not in EVENT_TYPES:
            return f"event {index}: unknown type {event.get('type')!r}"
        if not isinstance(event.get("data"), dict) or not isinstance(event.get("ts"), str):
            return f"event {index}: data must be an object and ts a string"
    return None


class _Handler(BaseHTTPRequestHandler):
    ingest: IngestServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.ingest.token}":
            return True
        self._reply(401, {"detail": "bad token"})
        return False

    def _reply(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path == f"{PREFIX}/spec":
            self._reply(200, self.ingest.spec())
        elif self.path == f"{PREFIX}/dataset":
            self._reply(200, self.ingest.dataset, "application/jsonl")
        else:
            self._reply(404, {"detail": "not found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        if self.path != f"{PREFIX}/events":
            self._reply(404, {"detail": "not found"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError:
            self._reply(400, {"detail": "body is not JSON"})
            return
        error = validation_error(body)
        if error:
            self._reply(400, {"detail": error})
            return
        acked = self.ingest.store(body["events"])
        self._reply(200, {"acked_through": acked, "command": self.ingest.command})


def serve_forever() -> None:
    """`python -m tests.trainer.ingest_server`: serve in its own process, print the URL."""
    import time

    server = IngestServer({}, b"").start()
    print(server.url, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    serve_forever()
