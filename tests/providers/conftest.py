from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.base import LaunchSpec, pod_name
from providers.fakes.runpod import FakeRunPod
from providers.local import LocalProvider
from providers.runpod import RunPodProvider
from tests.providers.helpers import RTX_4090, WRITE_ENV_AND_WAIT


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    server = FakeRunPod(provision_s=0.1, start_s=0.1, stop_grace_s=2.0).start()
    yield server
    server.stop()


@pytest.fixture
def runpod(fake: FakeRunPod) -> RunPodProvider:
    return RunPodProvider(
        fake.api_key, base_url=fake.url, timeout=(2.0, 10.0), backoff_s=0.01, max_wait_s=5.0
    )


@pytest.fixture
def make_spec() -> Callable[..., LaunchSpec]:
    def make(**overrides: Any) -> LaunchSpec:
        job_id = overrides.pop("job_id", str(uuid.uuid4()))
        fields: dict[str, Any] = {
            "gpu_types": [RTX_4090],
            "env": {
                "TUNEBOARD_URL": "http://127.0.0.1:8000",
                "TUNEBOARD_JOB_ID": job_id,
                "TUNEBOARD_INGEST_TOKEN": "ingest-token",
            },
            "start_command": WRITE_ENV_AND_WAIT,
            "volume_gb": 20,
        }
        fields.update(overrides)
        return LaunchSpec(job_id=job_id, name=pod_name(job_id), **fields)

    return make


@pytest.fixture
def local(tmp_path: Path) -> LocalProvider:
    return LocalProvider(tmp_path / "local-pods", grace_s=2.0)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    def wait(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            time.sleep(interval)

    return wait
