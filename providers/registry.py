"""Build a :class:`Provider` by name from a user's credentials and the server's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.base import Provider, ProviderError, Unauthorized
from providers.local import LocalProvider
from providers.runpod import DEFAULT_BASE_URL, DEFAULT_IMAGE, RunPodProvider

NOT_YET = ("lambda", "hf", "kaggle")


@dataclass(frozen=True)
class ProviderSettings:
    """Server-side knobs (from Django settings, mapped by the caller)."""

    local_state_dir: str = "var/local-pods"
    local_cost_per_hour: float = 0.0
    local_grace_s: float = 10.0
    runpod_base_url: str = DEFAULT_BASE_URL
    runpod_image: str = DEFAULT_IMAGE
    request_timeout_s: float = 30.0


def get_provider(name: str, credentials: Mapping[str, str], settings: ProviderSettings) -> Provider:
    """``credentials`` is the user's decrypted secret for that provider: ``{"api_key": ...}``."""
    if name == "local":
        return LocalProvider(
            settings.local_state_dir, settings.local_cost_per_hour, settings.local_grace_s
        )
    if name == "runpod":
        api_key = credentials.get("api_key", "")
        if not api_key:
            raise Unauthorized("no RunPod API key is saved: add one on the providers page")
        return RunPodProvider(
            api_key,
            base_url=settings.runpod_base_url,
            image=settings.runpod_image,
            timeout=(5.0, settings.request_timeout_s),
        )
    if name in NOT_YET:
        raise ProviderError(f"the {name} provider is not available yet", permanent=True)
    raise ProviderError(f"unknown provider {name!r}", permanent=True)
