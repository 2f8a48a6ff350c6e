"""get_provider builds the provider a job names, or says clearly why it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.base import ProviderError, Unauthorized
from providers.local import LocalProvider
from providers.registry import ProviderSettings, get_provider
from providers.runpod import RunPodProvider


def test_it_builds_local_and_runpod(tmp_path: Path) -> None:
    settings = ProviderSettings(local_state_dir=str(tmp_path), runpod_base_url="http://fake")

    assert isinstance(get_provider("local", {}, settings), LocalProvider)
    runpod = get_provider("runpod", {"api_key": "k"}, settings)
    assert isinstance(runpod, RunPodProvider) and runpod.base_url == "http://fake"


def test_runpod_without_a_key_is_a_permanent_error() -> None:
    with pytest.raises(Unauthorized) as error:
        get_provider("runpod", {}, ProviderSettings())
    assert error.value.permanent


@pytest.mark.parametrize("name", ["lambda", "hf", "kaggle"])
def test_providers_not_built_yet_say_so(name: str) -> None:
    with pytest.raises(ProviderError, match="not available yet") as error:
        get_provider(name, {"api_key": "k"}, ProviderSettings())
    assert error.value.permanent
