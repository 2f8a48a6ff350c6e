"""A faithful fake of RunPod REST v2 (``runpod-rest-v2.openapi.json``) on 127.0.0.1.

Same paths, status codes, problem+json errors, RateLimit headers and pod lifecycle as the spec
(README §1.2 and the §6 checklist); its pods really run their command as a local process group.
Tests switch faults on per test::

    fake = FakeRunPod().start()
    fake.set_no_capacity("NVIDIA GeForce RTX 4090")   # 400 on create for that type
    fake.set_no_balance()                             # 402 on create
    fake.rate_limit_storm(3, retry_after=1)           # next 3 requests: 429 + Retry-After
    fake.server_error_storm(2, method="POST")         # next 2 POSTs: 500
    fake.lose_next_create(mode="drop")                # create the pod, then drop the connection
    fake.slow_answers(1, seconds=3)                   # do the work, answer past the timeout
    ...
    fake.stop()

Modelled: pods (list, create, get, delete, action, logs snapshot), the GPU catalog and pod
billing. Everything else in the spec answers 404 (not modelled).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from providers.catalog import RUNPOD_GPUS, RunPodGpu
from providers.fakes.runpod_http import (
    Problem,
    RateWindows,
    billing_window,
    buckets,
    validate_action,
    validate_create,
)
from providers.fakes.runpod_pods import (
    ACTIONS,
    DATA_CENTER,
    CommandOverride,
    FakePod,
    PodClock,
    PodRunner,
    advance,
    enter_starting,
    iso,
    new_pod_id,
    open_billing,
    render,
    stop_now,
)
from providers.fakes.runpod_pods import (
    Billing as PodBilling,
)
from providers.local import kill_group

MAX_GPUS_PER_POD = 8  # GpuType.maxCount: the largest machine; the fake offers 8 everywhere


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Faults:
    """Switchable failures; each test sets what it needs (``FakeRunPod.reset_faults`` clears)."""

    no_capacity: set[str] = field(default_factory=set)
    no_balance: bool = False
    rate_limited: int = 0
    retry_after: int = 1
    rate_limit_method: str | None = None
    server_errors: int = 0
    server_error_method: str | None = None
    lost_creates: int = 0
    lost_create_mode: str = "500"
    slow_answers: int = 0
    slow_s: float = 0.0


class FakeRunPod:
    """The fake server. ``start()`` returns self; a client needs ``url`` and ``api_key``."""

    def __init__(
        self,
        port: int = 0,
        api_key: str | None = None,
        readonly_api_key: str | None = None,
        provision_s: float = 0.3,
        start_s: float = 0.3,
        stop_grace_s: float = 5.0,
        command_override: CommandOverride = None,
        workdir: str | Path | None = None,
        prices: list[RunPodGpu] | None = None,
        quotas: dict[str, int] | None = None,
    ) -> None:
        self.port = port
        self.api_key = api_key or f"rpa_fake_{secrets.token_hex(16)}"
        self.readonly_api_key = readonly_api_key  # valid, but may only read: writes get 403
        self.clock = PodClock(provision_s=provision_s, start_s=start_s)
        self.runner = PodRunner(command_override)
        self.stop_grace_s = stop_grace_s
        self.gpus = {g.id: g for g in (prices or RUNPOD_GPUS)}
        self.rate = RateWindows(dict(quotas) if quotas else RateWindows().quotas)
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.pods: dict[str, FakePod] = {}
        self.billing: dict[str, PodBilling] = {}
        self.created: list[str] = []  # every pod id ever created, deleted ones included
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="fake-runpod-"))
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeRunPod:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        for target in (self._serve_forever, self._tick_forever):
            thread = threading.Thread(
                target=target, name=f"fake-runpod-{target.__name__}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and kill every pod's processes (nothing outlives the fake)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self.lock:
            processes = [stop_now(pod, time.time(), "TERMINATED") for pod in self.pods.values()]
        for process in processes:
            _kill(process, grace_s=1.0)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FakeRunPod:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_forever(self) -> None:
        assert self._server is not None
        self._server.serve_forever(poll_interval=0.05)  # stop() returns within 50 ms

    def _tick_forever(self) -> None:
        # Pods progress (and their processes start and are reaped) even when nobody polls.
        while not self._stopping.wait(0.05):
            with self.lock:
                now = time.time()
                for pod in self.pods.values():
                    advance(pod, self.clock, self.runner, now)

    # -- faults ------------------------------------------------------------------------------

    def set_no_capacity(self, *gpu_ids: str) -> None:
        with self.lock:
            self.faults.no_capacity = set(gpu_ids)

    def set_no_balance(self, on: bool = True) -> None:
        with self.lock:
            self.faults.no_balance = on

    def rate_limit_storm(self, count: int, retry_after: int = 1, method: str | None = None) -> None:
        """The next ``count`` requests (of ``method``, if given) answer 429 + Retry-After."""
        with self.lock:
            self.faults.rate_limited, self.faults.retry_after = count, retry_after
            self.faults.rate_limit_method = method

    def server_error_storm(self, count: int, method: str | None = None) -> None:
        """The next ``count`` requests (of ``method``, if given) answer 500."""
        with self.lock:
            self.faults.server_errors, self.faults.server_error_method = count, method

    def lose_next_create(self, count: int = 1, mode: str = "500") -> None:
        """The next creates make the pod, then answer 500 (``"500"``) or drop the connection
        (``"drop"``): RunPod's known "created but the response was lost" (README §0.4)."""
        if mode not in ("500", "drop"):
            raise ValueError("mode is '500' or 'drop'")
        with self.lock:
            self.faults.lost_creates, self.faults.lost_create_mode = count, mode

    def slow_answers(self, count: int, seconds: float) -> None:
        """The next ``count`` requests do their work, then answer ``seconds`` late: past a
        client's read timeout, a create has happened although the client saw no answer."""
        with self.lock:
            self.faults.slow_answers, self.faults.slow_s = count, seconds

    def reset_faults(self) -> None:
        with self.lock:
            self.faults = Faults()

    # -- inspection helpers for tests --------------------------------------------------------

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    def pod(self, pod_id: str) -> FakePod:
        with self.lock:
            return self.pods[pod_id]

    # -- request handling (called by _Handler) -----------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> _Answer:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        record = RecordedRequest(method, parts.path, query, _json_or_text(raw_body))
        with self.lock:
            self.requests.append(record)
        answer = self._answer(method, parts.path, query, headers, record.body)
        record.status = answer.status
        with self.lock:
            delay = self.faults.slow_s if self.faults.slow_answers > 0 else 0.0
            self.faults.slow_answers -= 1 if delay else 0
        time.sleep(delay)
        return answer

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> _Answer:
        try:
            self._authenticate(method, headers)
        except (
            Problem
        ) as problem:  # unauthenticated: no RateLimit headers (spec: authenticated only)
            return _Answer.problem(problem)
        limits = self.rate.headers()
        try:
            self._throttle(method)
            limits = self.rate.headers()
            self._inject_server_error(method)
            answer = self._route(method, path, query, body)
        except Problem as problem:
            answer = _Answer.problem(problem)
        answer.headers = {**limits, **answer.headers}
        return answer

    def _authenticate(self, method: str, headers: Any) -> None:
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "missing bearer token")
        token = token.strip()
        if secrets.compare_digest(token, self.api_key):
            return
        if self.readonly_api_key and secrets.compare_digest(token, self.readonly_api_key):
            if method != "GET":
                raise Problem(403, "access denied")
            return
        raise Problem(401, "invalid bearer token")

    def _throttle(self, method: str) -> None:
        with self.lock:
            faults = self.faults
            if faults.rate_limited and faults.rate_limit_method in (None, method):
                faults.rate_limited -= 1
                raise Problem(
                    429,
                    "rate limit exceeded for the minute window",
                    headers={"Retry-After": str(faults.retry_after)},
                )
        wait = self.rate.take()
        if wait is not None:
            window = self.rate.exceeded_window()
            raise Problem(
                429,
                f"rate limit exceeded for the {window} window",
                headers={"Retry-After": str(wait)},
            )

    def _inject_server_error(self, method: str) -> None:
        with self.lock:
            faults = self.faults
            if faults.server_errors and faults.server_error_method in (None, method):
                faults.server_errors -= 1
                raise Problem(500, "upstream failure (injected by the fake)")

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> _Answer:
        for pattern, handlers in self._routes():
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                allow = ", ".join(sorted(handlers))
                raise Problem(
                    405,
                    "The requested method is not allowed for this path.",
                    headers={"Allow": allow},
                )
            return handler(*match.groups(), query=query, body=body)
        raise Problem(404, "resource not found")

    def _routes(self) -> list[tuple[str, dict[str, Callable[..., _Answer]]]]:
        return [
            (r"/v2/pods", {"GET": self._list_pods, "POST": self._create_pod}),
            (
                r"/v2/pods/([^/]+)",
                {"GET": self._get_pod, "DELETE": self._delete_pod, "PATCH": self._not_modelled},
            ),
            (r"/v2/pods/([^/]+)/action", {"POST": self._pod_action}),
            (r"/v2/pods/([^/]+)/logs", {"GET": self._pod_logs}),
            (r"/v2/catalog/gpus", {"GET": self._list_gpus}),
            (r"/v2/catalog/gpus/([^/]+)", {"GET": self._get_gpu}),
            (r"/v2/billing/pods", {"GET": self._pod_billing}),
        ]

    # -- pods ----------------------------------------------------------------------------------

    def _list_pods(self, query: dict[str, str], body: Any) -> _Answer:
        with self.lock:
            now = time.time()
            pods = [render(p, self.clock, now) for p in self.pods.values()]
        return _Answer(200, {"pods": pods})

    def _create_pod(self, query: dict[str, str], body: Any) -> _Answer:
        request = validate_create(body)
        gpu_id, count = request["gpu"]["id"], request["gpu"].get("count", 1)
        cloud = request.get("cloud", "SECURE")
        with self.lock:
            if self.faults.no_balance:
                raise Problem(402, "insufficient balance: add credit to deploy a pod")
            price = self._price(gpu_id, cloud, count)
            pod = self._new_pod(request, gpu_id, count, cloud, price)
            lost, mode = self.faults.lost_creates > 0, self.faults.lost_create_mode
            if lost:
                self.faults.lost_creates -= 1
            rendered = render(pod, self.clock, pod.created_at)
        if lost and mode == "drop":
            return _Answer(0, None)  # the handler closes the connection without answering
        if lost:
            raise Problem(500, "internal error while reading back the created pod")
        return _Answer(201, rendered)

    def _price(self, gpu_id: str, cloud: str, count: int) -> float:
        gpu = self.gpus.get(gpu_id)
        if gpu is None:
            raise Problem(400, f"unknown GPU type {gpu_id!r}")
        price = gpu.secure if cloud == "SECURE" else gpu.community
        if gpu_id in self.faults.no_capacity or count > MAX_GPUS_PER_POD or not price:
            # Capacity has no machine-readable code on this API: only the human detail says so.
            raise Problem(
                400, f"no {cloud} capacity for {count} x {gpu_id} in the requested data centers"
            )
        return price

    def _new_pod(
        self, request: dict[str, Any], gpu_id: str, count: int, cloud: str, price: float
    ) -> FakePod:
        now = time.time()
        pod_id = new_pod_id()
        pod = FakePod(
            id=pod_id,
            name=request["name"],
            image=request.get("image", ""),
            args=request.get("args", ""),
            disk=request.get("disk", 50),
            env=dict(request.get("env", {})),
            ports=list(request.get("ports", [])),
            mounts=dict(request.get("mounts", {})),
            gpu_id=gpu_id,
            gpu_count=count,
            cloud=cloud,
            price_per_gpu=price,
            workdir=self.workdir / pod_id,
            created_at=now,
            billing=PodBilling(pod_id),
            status_since=now,
        )
        open_billing(pod, now)  # a provisioning pod already holds (and pays for) its GPU
        self.pods[pod_id] = pod
        self.billing[pod_id] = pod.billing
        self.created.append(pod_id)
        return pod

    def _existing(self, pod_id: str) -> FakePod:
        pod = self.pods.get(pod_id)
        if pod is None:
            raise Problem(404, "pod not found")
        advance(pod, self.clock, self.runner, time.time())
        return pod

    def _get_pod(self, pod_id: str, query: dict[str, str], body: Any) -> _Answer:
        with self.lock:
            pod = self._existing(pod_id)
            return _Answer(200, render(pod, self.clock, time.time()))

    def _delete_pod(self, pod_id: str, query: dict[str, str], body: Any) -> _Answer:
        with self.lock:
            pod = self._existing(pod_id)
            process = stop_now(pod, time.time(), "TERMINATED")
            del self.pods[pod_id]
        _kill(process, self.stop_grace_s)
        return _Answer(204, None)

    def _pod_action(self, pod_id: str, query: dict[str, str], body: Any) -> _Answer:
        action = validate_action(body)
        if action == "terminate":
            return self._delete_pod(pod_id, query=query, body=None)
        with self.lock:
            pod = self._existing(pod_id)
            if action not in ACTIONS[pod.status]:
                raise Problem(409, f"cannot {action} a pod in status {pod.status}")
            now = time.time()
            process = stop_now(pod, now) if action in ("stop", "restart") else None
            if action in ("start", "restart"):
                enter_starting(pod, self.runner, now)
        _kill(process, self.stop_grace_s)
        with self.lock:
            return _Answer(200, render(pod, self.clock, time.time()))

    def _pod_logs(self, pod_id: str, query: dict[str, str], body: Any) -> _Answer:
        """A snapshot of the container log as SSE (the real endpoint keeps streaming)."""
        try:
            tail = int(query.get("tail", "100"))
        except ValueError:
            raise Problem(400, "tail must be an integer") from None
        if not 0 <= tail <= 5000:
            raise Problem(400, "tail must be between 0 and 5000")
        with self.lock:
            log_path = self._existing(pod_id).log_path
        lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        stamp = iso(time.time())
        shown = lines[-tail:] if tail else []
        payloads = (json.dumps({"source": "container", "line": ln, "ts": stamp}) for ln in shown)
        events = "".join(f"id: {stamp}\ndata: {payload}\n\n" for payload in payloads)
        return _Answer(200, events, content_type="text/event-stream")

    def _not_modelled(self, *args: Any, query: dict[str, str], body: Any) -> _Answer:
        raise Problem(501, "this operation is in the spec but not modelled by the fake server")

    # -- catalog ------------------------------------------------------------------------------

    def _list_gpus(self, query: dict[str, str], body: Any) -> _Answer:
        include, product = query.get("include"), query.get("product")
        if (include == "AVAILABILITY") != (product is not None):
            raise Problem(
                400, "product is required with include=AVAILABILITY, and valid only with it"
            )
        if include not in (None, "AVAILABILITY"):
            raise Problem(400, "include supports AVAILABILITY only")
        if include is None and ("count" in query or "cloud" in query):
            raise Problem(400, "count and cloud are valid only with include=AVAILABILITY")
        try:
            count = int(query.get("count", "1"))
        except ValueError:
            raise Problem(400, "count must be an integer") from None
        cloud = query.get("cloud", "SECURE")
        with self.lock:
            gpus = [
                self._gpu_type(g, include is not None, count, cloud) for g in self.gpus.values()
            ]
        return _Answer(200, {"gpus": gpus})

    def _get_gpu(self, gpu_id: str, query: dict[str, str], body: Any) -> _Answer:
        with self.lock:
            gpu = self.gpus.get(gpu_id)
            if gpu is None:
                raise Problem(404, "GPU type not found")
            return _Answer(200, self._gpu_type(gpu, False, 1, "SECURE"))

    def _gpu_type(
        self, gpu: RunPodGpu, availability: bool, count: int, cloud: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": gpu.id,
            "name": gpu.name,
            "pool": None,
            "manufacturer": "NVIDIA",
            "memory": gpu.memory_gb,
            "secure": gpu.secure > 0,
            "community": gpu.community > 0,
            "price": {"secure": gpu.secure, "community": gpu.community},
            "maxCount": {"secure": MAX_GPUS_PER_POD, "community": MAX_GPUS_PER_POD},
        }
        if availability:
            price = gpu.secure if cloud == "SECURE" else gpu.community
            free = gpu.id not in self.faults.no_capacity and count <= MAX_GPUS_PER_POD and price > 0
            body["availability"] = "HIGH" if free else "NONE"
            if free:
                dc_id, dc_name = DATA_CENTER
                body["dataCenters"] = [{"id": dc_id, "name": dc_name, "availability": "HIGH"}]
            body["cudaVersions"] = [{"version": "12.8", "available": free}]
        return body

    # -- billing ------------------------------------------------------------------------------

    def _pod_billing(self, query: dict[str, str], body: Any) -> _Answer:
        now = datetime.now(UTC)
        start, end, size = billing_window(query, now)
        pod_id = query.get("podId")
        with self.lock:
            accounts = [b for i, b in self.billing.items() if pod_id in (None, i)]
            records = [
                r for account in accounts for r in self._billing_records(account, start, end, size)
            ]
        totals = {
            k: round(sum(r[k] for r in records), 6)
            for k in ("totalAmount", "gpuAmount", "cpuAmount", "diskAmount")
        }
        metadata = {
            "query": {
                "startTime": iso(start.timestamp()),
                "endTime": iso(end.timestamp()),
                "bucketSize": size,
                "podId": pod_id,
            },
            "recordCount": len(records),
            "uniquePodCount": len({r["podId"] for r in records}),
            "totals": totals,
        }
        return _Answer(200, {"records": records, "metadata": metadata})

    def _billing_records(
        self, account: PodBilling, start: datetime, end: datetime, size: str
    ) -> list[dict[str, Any]]:
        now = time.time()
        records = []
        for lo, hi in buckets(start, end, size):
            gpu, disk = account.amounts(lo.timestamp(), hi.timestamp(), now)
            if gpu + disk <= 0:
                continue
            records.append(
                {
                    "startTime": iso(lo.timestamp()),
                    "endTime": iso(hi.timestamp()),
                    "podId": account.pod_id,
                    "totalAmount": round(gpu + disk, 6),
                    "gpuAmount": round(gpu, 6),
                    "cpuAmount": 0.0,
                    "diskAmount": round(disk, 6),
                }
            )
        return records


@dataclass
class _Answer:
    status: int  # 0: close the connection without answering
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def problem(cls, problem: Problem) -> _Answer:
        return cls(
            problem.status, problem.body(), "application/problem+json", dict(problem.headers)
        )


def _kill(process: Any, grace_s: float) -> None:
    if process is not None:
        kill_group(process.pid, grace_s, reap=process.poll)
        process.poll()


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeRunPod/2.0"

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake: FakeRunPod = self.server.fake  # type: ignore[attr-defined]
        if raw and self.command in ("POST", "PUT", "PATCH") and not _is_json(raw):
            answer = _Answer.problem(Problem(400, "request body is not valid JSON"))
        else:
            answer = fake.handle(self.command, self.path, self.headers, raw)
        if answer.status == 0:
            self.close_connection = True
            return
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        if answer.body is None:
            payload = b""
        elif isinstance(answer.body, str):
            payload = answer.body.encode()
        else:
            payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        if payload:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read fake.requests instead of a noisy stderr


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True
