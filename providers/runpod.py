"""``runpod``: pods through RunPod's REST v2 API (``runpod-rest-v2.openapi.json``, README §1.2).

What the spec makes us do, and why:

- Create places exactly one GPU type and never falls back, so ``launch`` tries ``spec.gpu_types``
  in order: 400 (no capacity, or a rule violation — the API does not tell them apart) and 403 (no
  access to that pool) move on to the next type; 402 (no balance) stops at once.
- 429 carries ``Retry-After`` (integer seconds): honoured in place a bounded number of times, each
  wait capped; a longer wait is raised as :class:`RateLimited` for the caller to schedule.
- 5xx and timeouts are retried with exponential backoff — except create, which RunPod is known to
  complete while answering 500 (README §0.4): after any lost create answer, launch looks the pod
  up by its name (``tuneboard-<job_id>``) before creating again.
"""

from __future__ import annotations

import logging
import random
import shlex
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from providers.base import (
    NAME_PREFIX,
    Forbidden,
    GpuOffer,
    Launched,
    LaunchSpec,
    NoBalance,
    NoCapacity,
    NotFound,
    PodState,
    PodStatus,
    ProviderError,
    RateLimited,
    Unauthorized,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.runpod.io"
# The image of the spec's own examples (CUDA 12.8, torch 2.8, Ubuntu 24.04).
DEFAULT_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
VOLUME_PATH = "/workspace"
MIN_VOLUME_GB = 10  # PersistentMount.size minimum ("Upstream enforces a 10 GB floor")

_STATES: dict[str, PodState] = {
    "PROVISIONING": "pending",
    "STARTING": "pending",
    "RUNNING": "running",
    "EXITED": "exited",
    "ERROR": "error",
    "TERMINATED": "terminated",
}


class Unavailable(ProviderError):
    """RunPod answered 5xx or not at all (timeout, connection lost): worth retrying later."""


class Conflict(ProviderError):
    """409: the action is not valid in the pod's current status."""


def container_args(start_command: str, job_id: str, volume_path: str = VOLUME_PATH) -> str:
    """The pod's ``args``: ``bash -c`` running the start command at most once per pod.

    v2 has no ``dockerStartCmd``; ``args`` is the one command field ("arguments passed to the
    container entrypoint"), so it carries the whole command for images without an ENTRYPOINT. The
    marker on the persistent volume keeps a restarted container (host reboot, ``start`` action)
    from training — and billing — a second time; it idles until the server terminates the pod.
    """
    marker = f"{volume_path}/.tuneboard-started-{job_id}"
    guard = (
        f"if [ -e {shlex.quote(marker)} ]; then "
        "echo 'tuneboard: this pod already ran its job; waiting to be terminated' >&2; "
        "exec sleep infinity; fi; "
        f"touch {shlex.quote(marker)} 2>/dev/null || true"
    )
    return shlex.join(["bash", "-c", f"{guard}\n{start_command}"])


class RunPodProvider:
    name = "runpod"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        image: str = DEFAULT_IMAGE,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_retries: int = 4,
        max_wait_s: float = 30.0,
        backoff_s: float = 0.5,
        clouds: Iterable[str] = ("SECURE", "COMMUNITY"),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise Unauthorized("no RunPod API key is configured")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.image = image
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.backoff_s = backoff_s
        self.clouds = tuple(clouds)
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return f"RunPodProvider(base_url={self.base_url!r})"

    # -- Provider interface -------------------------------------------------------------------

    def offers(self) -> list[GpuOffer]:
        offers = []
        for cloud in self.clouds:
            params = {"include": "AVAILABILITY", "product": "POD", "cloud": cloud}
            for gpu in self._request("GET", "/v2/catalog/gpus", params=params).json()["gpus"]:
                if not gpu.get(cloud.lower()):
                    continue  # this type is not sold on this cloud
                offers.append(
                    GpuOffer(
                        provider=self.name,
                        gpu_type=gpu["id"],
                        display_name=gpu.get("name") or gpu["id"],
                        vram_gb=gpu.get("memory") or 0,
                        price_per_hour=gpu["price"].get(cloud.lower()),
                        available=gpu.get("availability", "NONE") != "NONE",
                        cloud=cloud,
                    )
                )
        return offers

    def launch(self, spec: LaunchSpec) -> Launched:
        existing = self._find_by_name(spec.name)
        if existing is not None:
            return self._launched(existing)
        if not spec.gpu_types:
            raise ProviderError("no GPU types are allowed for this job", permanent=True)
        if spec.cloud not in ("SECURE", "COMMUNITY"):
            raise ProviderError(
                f"RunPod cloud must be SECURE or COMMUNITY, not {spec.cloud!r}", permanent=True
            )
        refusals: list[ProviderError] = []
        for gpu_type in spec.gpu_types:
            try:
                return self._launched(self._create(spec, gpu_type))
            except (NoCapacity, Forbidden) as exc:
                logger.info("RunPod refused %s for %s: %s", gpu_type, spec.name, exc)
                refusals.append(exc)
        raise _all_refused(spec.gpu_types, refusals)

    def status(self, ref: str) -> PodStatus:
        pod = self._request("GET", f"/v2/pods/{ref}").json()
        billed = self._billed_costs(pod["createdAt"], pod_id=pod["id"]).get(pod["id"])
        return _pod_status(pod, billed)

    def terminate(self, ref: str) -> None:
        try:
            self._request("DELETE", f"/v2/pods/{ref}")
        except NotFound:
            return  # already gone: what terminate wants

    def stop(self, ref: str) -> None:
        """Stop a pod (releases the GPU, keeps the volume); already stopped or gone is fine."""
        try:
            self._request("POST", f"/v2/pods/{ref}/action", json={"action": "stop"})
        except (NotFound, Conflict):
            return  # gone, or not in a status that can stop (already EXITED)

    def list_ours(self) -> list[PodStatus]:
        pods = [p for p in self._list_pods() if p.get("name", "").startswith(NAME_PREFIX)]
        if not pods:
            return []
        billed = self._billed_costs(min(p["createdAt"] for p in pods))
        return [_pod_status(p, billed.get(p["id"])) for p in pods]

    # -- pods ---------------------------------------------------------------------------------

    def _list_pods(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v2/pods").json()["pods"])

    def _find_by_name(self, name: str) -> dict[str, Any] | None:
        matches = sorted(
            (p for p in self._list_pods() if p.get("name") == name),
            key=lambda p: p.get("createdAt", ""),
        )
        if len(matches) > 1:
            ids = ", ".join(p["id"] for p in matches)
            logger.warning("several RunPod pods are named %s (%s); using the oldest", name, ids)
        return matches[0] if matches else None

    def _create(self, spec: LaunchSpec, gpu_type: str) -> dict[str, Any]:
        body = self._create_body(spec, gpu_type)
        for attempt in range(self.max_retries + 1):
            try:
                response = self._send("POST", "/v2/pods", json=body)
                if response.status_code == 201:
                    return dict(response.json())
                if response.status_code == 400:
                    raise NoCapacity(f"{gpu_type}: {_error_from(response).message}")
                raise _error_from(response)
            except RateLimited as exc:
                self._wait_or_raise(exc, attempt)
            except Unavailable as exc:
                # RunPod may have created the pod and lost the answer: look before creating again.
                self._wait_or_raise(exc, attempt)
                found = self._find_by_name(spec.name)
                if found is not None:
                    logger.warning(
                        "RunPod create for %s failed (%s) but the pod exists", spec.name, exc
                    )
                    return found
        raise AssertionError("unreachable: _wait_or_raise raises on the last attempt")

    def _create_body(self, spec: LaunchSpec, gpu_type: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": spec.name,
            "image": spec.image or self.image,
            "gpu": {"id": gpu_type, "count": spec.gpu_count},
            "cloud": spec.cloud,
            "disk": spec.container_disk_gb,
            "env": dict(spec.env),  # exactly the spec's env: never a provider key
            "args": container_args(spec.start_command, spec.job_id),
        }
        if spec.volume_gb > 0:
            size = max(MIN_VOLUME_GB, spec.volume_gb)
            body["mounts"] = {"persistent": {"size": size, "path": VOLUME_PATH}}
        return body

    def _launched(self, pod: dict[str, Any]) -> Launched:
        return Launched(
            ref=pod["id"],
            name=pod["name"],
            gpu_type=(pod.get("gpu") or {}).get("id", ""),
            price_per_hour=pod.get("cost"),
            url=f"{self.base_url}/v2/pods/{pod['id']}",
        )

    # -- billing ------------------------------------------------------------------------------

    def _billed_costs(self, since: str, pod_id: str | None = None) -> dict[str, float]:
        """USD billed so far per pod id: ``GET /v2/billing/pods``, day buckets since ``since``.

        Billing is secondary to a status read: if it fails, the status is still answered (the
        caller falls back to $/h x uptime) and the failure is logged, not raised.
        """
        params = {"bucketSize": "day", "startTime": since}
        if pod_id:
            params["podId"] = pod_id
        try:
            records = self._request("GET", "/v2/billing/pods", params=params).json()["records"]
        except (ProviderError, KeyError, ValueError) as exc:
            logger.warning("RunPod billing unavailable: %s", exc)
            return {}
        totals: dict[str, float] = {}
        for record in records:
            totals[record["podId"]] = totals.get(record["podId"], 0.0) + record["totalAmount"]
        return totals

    # -- HTTP ---------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": "tuneboard",
        }
        try:
            return self.session.request(
                method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Unavailable(f"RunPod did not answer {method} {path}: {exc}") from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with bounded retries for 429 (per Retry-After) and 5xx/timeouts (backoff)."""
        for attempt in range(self.max_retries + 1):
            try:
                response = self._send(method, path, **kwargs)
                if response.status_code < 400:
                    return response
                raise _error_from(response)
            except (RateLimited, Unavailable) as exc:
                self._wait_or_raise(exc, attempt)
        raise AssertionError("unreachable: _wait_or_raise raises on the last attempt")

    def _wait_or_raise(self, error: ProviderError, attempt: int) -> None:
        if isinstance(error, RateLimited):
            delay = error.retry_after if error.retry_after is not None else 1.0
            if delay > self.max_wait_s:
                raise error  # too long to block a worker: the caller schedules the retry
        else:
            delay = min(self.max_wait_s, self.backoff_s * 2**attempt)
            delay += random.uniform(0, self.backoff_s)  # jitter: workers do not retry in step
        if attempt >= self.max_retries:
            error.message = f"{error.message} (gave up after {attempt + 1} attempts)"
            error.args = (error.message,)
            raise error
        logger.info("RunPod: %s; retrying in %.1fs", error.message, delay)
        self._sleep(delay)


# -- mapping --------------------------------------------------------------------------------------


def _pod_status(pod: dict[str, Any], billed: float | None) -> PodStatus:
    runtime = pod.get("runtime") or {}
    gpus = runtime.get("gpus") or []
    status = pod.get("status", "")
    return PodStatus(
        ref=pod["id"],
        name=pod.get("name", ""),
        state=_STATES.get(status, "error"),
        uptime_s=float(runtime["uptime"]) if "uptime" in runtime else None,
        price_per_hour=pod.get("cost"),
        billed_cost=billed,
        gpu_util=_mean(g.get("util") for g in gpus),
        gpu_mem_util=_mean(g.get("memoryUtil") for g in gpus),
        message=f"RunPod pod {pod['id']} is {status}",
        provider_state=status,
        gpu_type=(pod.get("gpu") or {}).get("id"),
    )


def _mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return sum(numbers) / len(numbers) if numbers else None


def _problem(response: requests.Response) -> tuple[str, str]:
    """(title, detail) from an RFC 9457 body, or from whatever a proxy answered instead."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "Error", response.text.strip()[:300]
    if not isinstance(body, dict):
        return response.reason or "Error", str(body)[:300]
    detail = str(body.get("detail") or "")
    if body.get("errors"):
        detail = f"{detail} ({'; '.join(map(str, body['errors']))})".strip()
    return str(body.get("title") or response.reason or "Error"), detail


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form, should a proxy send it
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_from(response: requests.Response) -> ProviderError:
    status = response.status_code
    title, detail = _problem(response)
    message = f"RunPod {status} {title}: {detail}" if detail else f"RunPod {status} {title}"
    if status == 401:
        return Unauthorized(
            f"RunPod rejected the API key ({message}); check the key saved for RunPod"
        )
    if status == 403:
        return Forbidden(f"the RunPod API key lacks permission for this ({message})")
    if status == 402:
        return NoBalance(
            f"the RunPod account balance is too low to start a pod ({message}); "
            "add credit in the RunPod console, then launch again"
        )
    if status == 404:
        return NotFound(message)
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(response))
    if status == 409:
        return Conflict(message, permanent=True)
    if status >= 500:
        return Unavailable(message)
    return ProviderError(message, permanent=True)


def _all_refused(gpu_types: list[str], refusals: list[ProviderError]) -> ProviderError:
    details = "; ".join(r.message for r in refusals)
    if all(isinstance(r, Forbidden) for r in refusals):
        return Forbidden(f"RunPod gave no access to any allowed GPU type: {details}")
    # 400 means "no capacity" or "breaks a rule" alike: say both, capacity being the usual cause.
    return NoCapacity(
        f"no RunPod capacity for any of {', '.join(gpu_types)}: {details}. "
        "If this persists for every GPU type, the request itself may be invalid."
    )
