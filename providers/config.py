"""The server's provider settings, read from Django settings (the provider clients never are)."""

from __future__ import annotations

from django.conf import settings

from providers.registry import ProviderSettings


def provider_settings() -> ProviderSettings:
    return ProviderSettings(
        local_state_dir=str(settings.VAR_DIR / "local-pods"),
        local_cost_per_hour=float(settings.LOCAL_PROVIDER_COST_PER_HOUR),
        runpod_base_url=settings.RUNPOD_BASE_URL,
        runpod_image=settings.RUNPOD_IMAGE,
    )
