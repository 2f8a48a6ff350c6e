"""The provider interface (DESIGN §4) and the shapes it exchanges (docs/contracts.md §4).

Every provider client implements :class:`Provider`; the rest of Tuneboard talks to providers only
through it and catches :class:`ProviderError` once, at the boundary. Nothing here imports Django
or anything of ours outside ``providers/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

# Every pod this install creates is named ``tuneboard-<job_id>``: the name is how launch finds a
# pod it already created (idempotency) and how the reconciler finds every pod we own.
NAME_PREFIX = "tuneboard-"

PodState = Literal["pending", "running", "exited", "terminated", "error"]
POD_STATES: tuple[PodState, ...] = ("pending", "running", "exited", "terminated", "error")


def pod_name(job_id: str) -> str:
    return f"{NAME_PREFIX}{job_id}"


@dataclass(frozen=True)
class GpuOffer:
    """One thing a provider rents: a GPU type (or a fixed bundle of ``gpu_count`` of them).

    ``price_per_hour`` is USD for the whole offer (all ``gpu_count`` GPUs); ``None`` when no
    trustworthy price is known. ``vram_gb`` is per GPU.
    """

    provider: str
    gpu_type: str
    display_name: str
    vram_gb: float
    price_per_hour: float | None
    available: bool
    cloud: str
    gpu_count: int = 1


@dataclass(frozen=True)
class LaunchSpec:
    """What to run. ``env`` is exactly the pod's environment: the provider adds nothing to it."""

    job_id: str
    name: str
    gpu_types: list[str]
    gpu_count: int = 1
    image: str = ""
    env: dict[str, str] = field(default_factory=dict)
    start_command: str = ""
    volume_gb: int = 0
    container_disk_gb: int = 20
    cloud: str = "SECURE"

    def __post_init__(self) -> None:
        # A name that does not carry the job id would break idempotent launch and the reaper.
        if self.name != pod_name(self.job_id):
            raise ValueError(
                f"LaunchSpec.name must be {pod_name(self.job_id)!r}, got {self.name!r}"
            )
        if self.gpu_count < 1:
            raise ValueError("LaunchSpec.gpu_count must be at least 1")


@dataclass(frozen=True)
class Launched:
    ref: str
    name: str
    gpu_type: str
    price_per_hour: float | None
    url: str


@dataclass(frozen=True)
class PodStatus:
    """A pod as the provider sees it now.

    ``billed_cost`` is the provider's own billed figure in USD where it publishes one, else
    ``None`` (the caller then uses ``price_per_hour`` x ``uptime_s``). ``gpu_util`` and
    ``gpu_mem_util`` are percentages (0-100), averaged over the pod's GPUs, when known.
    """

    ref: str
    name: str
    state: PodState
    uptime_s: float | None
    price_per_hour: float | None
    billed_cost: float | None
    gpu_util: float | None
    gpu_mem_util: float | None
    message: str
    provider_state: str = ""
    gpu_type: str | None = None
    exit_code: int | None = None


class ProviderError(Exception):
    """A provider call failed. ``permanent`` means retrying the same call cannot help."""

    def __init__(
        self, message: str, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class NoCapacity(ProviderError):
    """None of the requested GPU types could be placed now; capacity may come back later."""


class NoBalance(ProviderError):
    """The account cannot pay for a pod; nothing will succeed until the user adds credit."""

    def __init__(self, message: str, permanent: bool = True, retry_after: float | None = None):
        super().__init__(message, permanent, retry_after)


class RateLimited(ProviderError):
    """The provider throttled us; ``retry_after`` says when to try again (seconds)."""


class NotFound(ProviderError):
    """The pod does not exist (never did, or it was terminated)."""

    def __init__(self, message: str, permanent: bool = True, retry_after: float | None = None):
        super().__init__(message, permanent, retry_after)


class Unauthorized(ProviderError):
    """The provider refused the credentials (missing, wrong, revoked or lacking permission)."""

    def __init__(self, message: str, permanent: bool = True, retry_after: float | None = None):
        super().__init__(message, permanent, retry_after)


class Forbidden(Unauthorized):
    """The credentials are valid but lack access to this resource, action or GPU pool."""


@runtime_checkable
class Provider(Protocol):
    name: str

    def offers(self) -> list[GpuOffer]:
        """GPU types with VRAM, $/h and availability, live where the provider publishes them."""
        ...

    def launch(self, spec: LaunchSpec) -> Launched:
        """Start the pod, or return the one already started for ``spec.job_id`` (by name)."""
        ...

    def status(self, ref: str) -> PodStatus:
        """The pod now; raises :class:`NotFound` once it is gone (e.g. after terminate)."""
        ...

    def terminate(self, ref: str) -> None:
        """Stop billing for good. Idempotent: a pod that is already gone is success."""
        ...

    def list_ours(self) -> list[PodStatus]:
        """Every live pod this install created (name starts with ``tuneboard-``)."""
        ...
