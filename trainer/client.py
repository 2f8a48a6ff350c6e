"""HTTP client for the ingest API v1 (DESIGN §5, contracts §3)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

API_PREFIX = "/api/ingest/v1"

T = TypeVar("T")


class IngestUnavailable(Exception):
    """The server could not be reached or answered 5xx: worth retrying later."""


class IngestRejected(Exception):
    """The server refused the request (4xx): retrying the same request will not help."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


@dataclass(frozen=True)
class Ack:
    """The server's answer to a batch of events."""

    acked_through: int
    command: str | None


class IngestClient:
    """Talks to one job's ingest endpoints with its bearer token."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def get_spec(self) -> dict[str, Any]:
        response = self._request("GET", f"{self.base_url}{API_PREFIX}/spec")
        spec = response.json()
        if not isinstance(spec, dict) or "config" not in spec:
            raise IngestRejected(response.status_code, "spec has no 'config'")
        return spec

    def download_dataset(self, url: str | None, dest: Path) -> Path:
        """Stream the dataset JSONL to `dest`; `url` defaults to our own dataset endpoint."""
        url = url or f"{self.base_url}{API_PREFIX}/dataset"
        response = self._request("GET", url, stream=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as handle:
            for chunk in response.iter_content(chunk_size=1 << 20):
                handle.write(chunk)
        return dest

    def post_events(self, events: list[dict[str, Any]]) -> Ack:
        body = json.dumps({"events": events}).encode()
        response = self._request(
            "POST",
            f"{self.base_url}{API_PREFIX}/events",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        answer = response.json()
        return Ack(int(answer.get("acked_through", 0)), answer.get("command"))

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise IngestUnavailable(f"{method} {url}: {exc}") from exc
        if response.status_code >= 500:
            raise IngestUnavailable(f"{method} {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise IngestRejected(response.status_code, response.text[:500])
        return response


def with_retries(call: Callable[[], T], attempts: int = 5, first_delay_s: float = 1.0) -> T:
    """Retry a start-up call (spec, dataset) on transient failures; a pod may boot before DNS."""
    delay = first_delay_s
    for attempt in range(attempts):
        try:
            return call()
        except IngestUnavailable:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
