"""The pods of the fake RunPod server: status machine, real processes, and what they cost.

Modelled on ``runpod-rest-v2.openapi.json`` (Pod, PodStatus, podAction) and README §1.2, §5.3, §6.
Callers hold the fake's lock around every method here; killing processes happens outside it.
"""

from __future__ import annotations

import secrets
import shlex
import string
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from providers.local import pod_env, spawn_group

# podAction description: RUNNING allows stop/restart/terminate; EXITED and ERROR allow
# start/terminate; PROVISIONING and STARTING allow stop/terminate. (The spec's createPod *example*
# shows ["start", "terminate"] on a PROVISIONING pod; the description and README §6 win.)
ACTIONS: dict[str, list[str]] = {
    "PROVISIONING": ["stop", "terminate"],
    "STARTING": ["stop", "terminate"],
    "RUNNING": ["stop", "restart", "terminate"],
    "EXITED": ["start", "terminate"],
    "ERROR": ["start", "terminate"],
    "TERMINATED": [],
}
# Statuses in which the pod holds its GPU and `cost` is its rate; the spec says cost is 0.0 when
# EXITED or TERMINATED, and an ERROR pod is assumed to have released its GPU too.
BILLED = ("PROVISIONING", "STARTING", "RUNNING")

# README §5.3 (runpod/docs pods/pricing.mdx): container disk and volume $0.10/GB/month while
# running; a stopped pod's volume $0.20/GB/month. A month is taken as 730 hours.
DISK_RUNNING_PER_GB_H = 0.10 / 730
VOLUME_STOPPED_PER_GB_H = 0.20 / 730

DATA_CENTER = ("US-TX-3", "US Texas 3")
CUDA_VERSION = "12.8"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_pod_id() -> str:
    # Real ids look like "xedezhzb9la3ye" (README §1.1): 14 lowercase alphanumerics.
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(14))


@dataclass
class Segment:
    """A stretch of time billed at ``usd_per_hour``; ``end`` is None while it lasts."""

    start: float
    usd_per_hour: float
    end: float | None = None

    def amount(self, since: float, until: float, now: float) -> float:
        end = now if self.end is None else self.end
        overlap = min(end, until) - max(self.start, since)
        return max(0.0, overlap) * self.usd_per_hour / 3600


@dataclass
class Billing:
    """What one pod has cost, kept after the pod is deleted (billing outlives pods)."""

    pod_id: str
    gpu: list[Segment] = field(default_factory=list)
    disk: list[Segment] = field(default_factory=list)

    def close(self, now: float) -> None:
        for seg in self.gpu + self.disk:
            if seg.end is None:
                seg.end = now

    def amounts(self, since: float, until: float, now: float) -> tuple[float, float]:
        gpu = sum(s.amount(since, until, now) for s in self.gpu)
        disk = sum(s.amount(since, until, now) for s in self.disk)
        return gpu, disk


@dataclass
class FakePod:
    id: str
    name: str
    image: str
    args: str
    disk: int
    env: dict[str, str]
    ports: list[str]
    mounts: dict[str, Any]
    gpu_id: str
    gpu_count: int
    cloud: str
    price_per_gpu: float
    workdir: Path
    created_at: float
    billing: Billing
    status: str = "PROVISIONING"
    status_since: float = 0.0
    started_at: float | None = None
    process: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "container.log"

    @property
    def volume_gb(self) -> int:
        persistent = self.mounts.get("persistent") or {}
        return int(persistent.get("size", 0))

    @property
    def cost(self) -> float:
        return round(self.price_per_gpu * self.gpu_count, 4) if self.status in BILLED else 0.0


CommandOverride = str | Callable[[FakePod], list[str]] | None


@dataclass
class PodRunner:
    """How a fake pod's container command becomes a local process.

    A real pod runs its image's entrypoint with ``args`` (CreatePodRequest: "Arguments passed to
    the container entrypoint"). The images do not exist here, so the fake treats the entrypoint
    as empty and runs ``shlex.split(args)`` itself, in the pod's work dir, with exactly the pod's
    env (plus PATH/HOME… to find programs). ``command_override`` replaces that: a string is run
    with ``bash -c``; a callable gets the pod and returns argv. A pod with neither idles, like a
    container waiting for SSH.
    """

    command_override: CommandOverride = None

    def argv(self, pod: FakePod) -> list[str]:
        if callable(self.command_override):
            return list(self.command_override(pod))
        if isinstance(self.command_override, str):
            return ["bash", "-c", self.command_override]
        if pod.args.strip():
            return shlex.split(pod.args)
        return [sys.executable, "-c", "import time; time.sleep(10**9)"]

    def spawn(self, pod: FakePod) -> subprocess.Popen[bytes]:
        pod.workdir.mkdir(parents=True, exist_ok=True)
        return spawn_group(self.argv(pod), pod_env(pod.env), pod.workdir, pod.log_path)


@dataclass
class PodClock:
    """Time-based status progression: PROVISIONING → STARTING → RUNNING."""

    provision_s: float = 0.3
    start_s: float = 0.3
    gpu_util: tuple[int, int] = (90, 60)  # (util, memoryUtil) reported while RUNNING


def enter_starting(pod: FakePod, runner: PodRunner, now: float) -> None:
    """The container starts: spawn the process, bill the GPU and disks."""
    pod.status, pod.status_since, pod.started_at, pod.exit_code = "STARTING", now, now, None
    open_billing(pod, now)
    try:
        pod.process = runner.spawn(pod)
    except OSError as exc:
        pod.log_path.parent.mkdir(parents=True, exist_ok=True)
        pod.log_path.write_text(f"fake runpod: cannot start the container command: {exc}\n")
        pod.process = None
        finish(pod, 127, now)


def open_billing(pod: FakePod, now: float) -> None:
    pod.billing.close(now)
    pod.billing.gpu.append(Segment(now, pod.price_per_gpu * pod.gpu_count))
    disk_gb = pod.disk + pod.volume_gb
    pod.billing.disk.append(Segment(now, disk_gb * DISK_RUNNING_PER_GB_H))


def close_billing(pod: FakePod, now: float, terminated: bool = False) -> None:
    pod.billing.close(now)
    if not terminated and pod.volume_gb:
        pod.billing.disk.append(Segment(now, pod.volume_gb * VOLUME_STOPPED_PER_GB_H))


def finish(pod: FakePod, exit_code: int, now: float) -> None:
    """The container's process ended by itself: exit 0 → EXITED, otherwise ERROR."""
    pod.status = "EXITED" if exit_code == 0 else "ERROR"
    pod.status_since, pod.exit_code, pod.process = now, exit_code, None
    close_billing(pod, now)


def advance(pod: FakePod, clock: PodClock, runner: PodRunner, now: float) -> None:
    """Move the pod along its lifecycle to where it is at ``now``."""
    if pod.status == "PROVISIONING" and now >= pod.status_since + clock.provision_s:
        enter_starting(pod, runner, pod.status_since + clock.provision_s)
    if pod.status in ("STARTING", "RUNNING") and pod.process is not None:
        code = pod.process.poll()
        if code is not None:
            finish(pod, code, now)
            return
    if pod.status == "STARTING" and now >= pod.status_since + clock.start_s:
        pod.status, pod.status_since = "RUNNING", pod.status_since + clock.start_s


def stop_now(pod: FakePod, now: float, status: str = "EXITED") -> subprocess.Popen[bytes] | None:
    """Mark the pod stopped and hand back its process for the caller to kill (outside the lock)."""
    process, pod.process = pod.process, None
    pod.status, pod.status_since = status, now
    close_billing(pod, now, terminated=status == "TERMINATED")
    return process


def render(pod: FakePod, clock: PodClock, now: float) -> dict[str, Any]:
    """The Pod schema: every required field, nullable ones null until they are known."""
    assigned = pod.status != "PROVISIONING"
    proxy = None
    if assigned:
        user = f"{pod.id}-{pod.id[:8]}"
        proxy = {
            "host": "ssh.runpod.io",
            "port": 22,
            "username": user,
            "command": f"ssh {user}@ssh.runpod.io",
        }
    return {
        "id": pod.id,
        "name": pod.name,
        "status": pod.status,
        "actions": ACTIONS[pod.status],
        "image": pod.image,
        "args": pod.args,
        "disk": pod.disk,
        "mounts": pod.mounts,
        "ports": pod.ports,
        "env": pod.env,
        "registry": None,
        "gpu": {"id": pod.gpu_id, "count": pod.gpu_count},
        "cloud": pod.cloud,
        "dataCenterId": DATA_CENTER[0] if assigned else None,
        "cudaVersion": CUDA_VERSION if assigned else None,
        "ssh": {"proxy": proxy, "direct": None},
        "template": None,
        "cost": pod.cost,
        "locked": False,
        "globalNetworking": {"enabled": False},
        "runtime": runtime(pod, clock, now) if pod.status == "RUNNING" else None,
        "createdAt": iso(pod.created_at),
        "startedAt": iso(pod.started_at),
    }


def runtime(pod: FakePod, clock: PodClock, now: float) -> dict[str, Any]:
    util, mem = clock.gpu_util
    ports = []
    for entry in pod.ports:
        port, _, kind = entry.partition("/")
        ports.append({"private": int(port), "public": None, "type": kind or "tcp", "ip": None})
    return {
        "uptime": int(now - (pod.started_at or now)),
        "gpus": [{"util": util, "memoryUtil": mem} for _ in range(pod.gpu_count)],
        "cpu": {"util": 25},
        "memory": {"util": 40},
        "ports": ports,
    }


def now_s() -> float:
    return time.time()
