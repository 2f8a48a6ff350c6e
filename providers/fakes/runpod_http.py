"""Wire-level helpers of the fake RunPod server: problem+json, rate-limit windows, validation.

From ``runpod-rest-v2.openapi.json``: ErrorResponse, the RateLimit / RateLimit-Policy headers
(IETF draft structured fields), CreatePodRequest, PodActionRequest and the billing parameters.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
}


class Problem(Exception):
    """An RFC 9457 answer: ``{"title", "status", "detail", "errors"?}``."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


# The spec's example quotas are 60/min, 3000/h, 50000/day and the real ones are UNVERIFIED
# (README §1.2). The fake defaults to ten times the examples so polling test suites are not
# throttled by accident; pass the examples to exercise real-sized limits.
DEFAULT_QUOTAS = {"minute": 600, "hour": 30000, "day": 500000}
WINDOW_S = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class RateWindows:
    """Fixed windows per caller, as the RateLimit headers describe them."""

    quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    _used: dict[str, int] = field(default_factory=dict)
    _reset_at: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        """Count one request; None if allowed, else the seconds until the full window resets."""
        with self._lock:
            now = time.monotonic()
            for window, seconds in WINDOW_S.items():
                if now >= self._reset_at.get(window, 0.0):
                    self._reset_at[window], self._used[window] = now + seconds, 0
            for window in WINDOW_S:
                if self._used[window] >= self.quotas[window]:
                    return max(1, int(self._reset_at[window] - now + 0.999))
            for window in WINDOW_S:
                self._used[window] += 1
            return None

    def exceeded_window(self) -> str:
        with self._lock:
            return next((w for w in WINDOW_S if self._used.get(w, 0) >= self.quotas[w]), "minute")

    def headers(self) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            live = ", ".join(
                f'"{w}";r={max(0, self.quotas[w] - self._used.get(w, 0))};'
                f"t={max(0, int(self._reset_at.get(w, now) - now))}"
                for w in WINDOW_S
            )
            policy = ", ".join(f'"{w}";q={self.quotas[w]};w={s}' for w, s in WINDOW_S.items())
        return {"RateLimit": live, "RateLimit-Policy": policy}


# -- CreatePodRequest validation ---------------------------------------------------------------

CREATE_FIELDS = {
    "name",
    "image",
    "args",
    "disk",
    "env",
    "ports",
    "registry",
    "cloud",
    "cpu",
    "dataCenterIds",
    "globalNetworking",
    "gpu",
    "mounts",
    "startJupyter",
    "startSsh",
    "templateId",
}
GPU_FIELDS = {"id", "count", "allowedCudaVersions", "minCudaVersion"}


def _check_type(
    errors: list[str], body: dict[str, Any], key: str, kind: type | tuple[type, ...]
) -> None:
    if key in body and (
        not isinstance(body[key], kind) or (isinstance(body[key], bool) and kind is int)
    ):
        errors.append(f"$.{key}: wrong type")


def validate_create(body: Any) -> dict[str, Any]:
    """Contract violations → 422 with ``errors``; cross-field rules → 400 (as the spec says)."""
    if not isinstance(body, dict):
        raise Problem(422, "Request validation failed.", ["$: expected an object"])
    errors = [
        f"$: additional properties '{k}' not allowed" for k in sorted(set(body) - CREATE_FIELDS)
    ]
    if not isinstance(body.get("name"), str) or not body.get("name"):
        errors.append("$.name: required, a non-empty string")
    for key, kind in (
        ("image", str),
        ("args", str),
        ("disk", int),
        ("env", dict),
        ("ports", list),
        ("cloud", str),
        ("gpu", dict),
        ("mounts", dict),
    ):
        _check_type(errors, body, key, kind)
    if "templateId" not in body and "image" not in body:
        errors.append("$.image: required unless templateId is set")
    if isinstance(body.get("disk"), int) and body["disk"] < 1:
        errors.append("$.disk: minimum 1")
    if body.get("cloud", "SECURE") not in ("SECURE", "COMMUNITY"):
        errors.append("$.cloud: must be SECURE or COMMUNITY")
    if isinstance(body.get("env"), dict) and not all(
        isinstance(v, str) for v in body["env"].values()
    ):
        errors.append("$.env: values must be strings")
    errors += _gpu_errors(body.get("gpu"))
    errors += _mount_errors(body.get("mounts"))
    if errors:
        raise Problem(422, "Request validation failed.", errors)
    if ("gpu" in body) == ("cpu" in body):
        raise Problem(400, "exactly one of gpu or cpu must be set")
    if "cpu" in body:
        raise Problem(400, "CPU pods are not modelled by this fake server")
    if {"persistent", "network"} <= set(body.get("mounts", {})):
        raise Problem(400, "mounts.persistent and mounts.network are mutually exclusive")
    return body


def _gpu_errors(gpu: Any) -> list[str]:
    if not isinstance(gpu, dict):
        return []
    errors = [
        f"$.gpu: additional properties '{k}' not allowed" for k in sorted(set(gpu) - GPU_FIELDS)
    ]
    if not isinstance(gpu.get("id"), str):
        errors.append("$.gpu.id: required, a string")
    count = gpu.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        errors.append("$.gpu.count: an integer, minimum 1")
    return errors


def _mount_errors(mounts: Any) -> list[str]:
    if not isinstance(mounts, dict):
        return []
    errors = [
        f"$.mounts: additional properties '{k}' not allowed"
        for k in sorted(set(mounts) - {"persistent", "network"})
    ]
    persistent = mounts.get("persistent")
    if persistent is not None:
        size = persistent.get("size") if isinstance(persistent, dict) else None
        if not isinstance(size, int) or size < 10:
            errors.append("$.mounts.persistent.size: an integer, minimum 10")
        if not isinstance(persistent, dict) or not isinstance(persistent.get("path"), str):
            errors.append("$.mounts.persistent.path: required, a string")
    return errors


def validate_action(body: Any) -> str:
    if not isinstance(body, dict) or set(body) != {"action"}:
        raise Problem(422, "Request validation failed.", ["$: exactly one property, 'action'"])
    if body["action"] not in ("start", "stop", "restart", "terminate"):
        raise Problem(
            422,
            "Request validation failed.",
            ["$.action: must be one of start, stop, restart, terminate"],
        )
    return str(body["action"])


# -- Billing buckets -----------------------------------------------------------------------------

BUCKETS = ("hour", "day", "week", "month", "year")


def bucket_floor(dt: datetime, size: str) -> datetime:
    dt = dt.astimezone(UTC)
    if size == "hour":
        return dt.replace(minute=0, second=0, microsecond=0)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if size == "day":
        return day
    if size == "week":  # ISO weeks start on Monday
        return day - timedelta(days=day.weekday())
    if size == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def bucket_next(dt: datetime, size: str) -> datetime:
    if size == "hour":
        return dt + timedelta(hours=1)
    if size == "day":
        return dt + timedelta(days=1)
    if size == "week":
        return dt + timedelta(days=7)
    if size == "month":
        return dt.replace(year=dt.year + dt.month // 12, month=dt.month % 12 + 1)
    return dt.replace(year=dt.year + 1)


def bucket_ceil(dt: datetime, size: str) -> datetime:
    floor = bucket_floor(dt, size)
    return floor if floor == dt else bucket_next(floor, size)


def billing_window(query: dict[str, str], now: datetime) -> tuple[datetime, datetime, str]:
    """(start, end, bucketSize) as the spec resolves them: snapped out to bucket boundaries."""
    size = query.get("bucketSize", "day")
    if size not in BUCKETS:
        raise Problem(400, f"bucketSize must be one of {', '.join(BUCKETS)}")
    if "lastN" in query:
        if "startTime" in query or "endTime" in query:
            raise Problem(400, "lastN is mutually exclusive with startTime/endTime")
        try:
            count = int(query["lastN"])
        except ValueError:
            raise Problem(400, "lastN must be an integer") from None
        if count < 1:
            raise Problem(400, "lastN must be at least 1")
        start = bucket_floor(now, size)
        end = bucket_next(start, size)
        for _ in range(count - 1):
            start = bucket_floor(start - timedelta(seconds=1), size)
        return start, end, size
    try:
        start = _parse_time(query.get("startTime")) or now - timedelta(days=30)
        end = _parse_time(query.get("endTime")) or now
    except ValueError:
        raise Problem(400, "startTime and endTime must be RFC 3339 date-times") from None
    if end <= start:
        raise Problem(400, "endTime must be after startTime")
    return bucket_floor(start, size), bucket_ceil(end, size), size


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a time zone is required")
    return parsed.astimezone(UTC)


def buckets(start: datetime, end: datetime, size: str) -> list[tuple[datetime, datetime]]:
    out = []
    while start < end:
        nxt = bucket_next(start, size)
        out.append((start, nxt))
        start = nxt
    return out
