"""A live Tuneboard for end-to-end tests: real processes, real Redis, the test database.

``live_stack`` (session-scoped) starts uvicorn, a Celery worker and Celery beat as subprocesses
that share the pytest-django test database and Redis with the test process, plus a fake RunPod
server whose pods really run the trainer. Tests use ``transactional_db`` so what they create is
committed and visible to those processes (and flushed after each test).

Interface for tests:
- ``live_stack.url``: the server's base URL (``http://127.0.0.1:<port>``).
- ``live_stack.runpod``: the ``FakeRunPod`` (its ``api_key``; faults via ``set_no_capacity`` ...).
- ``live_stack.wait_for(predicate, timeout, what)``: poll until true or fail with ``what``.
- ``tiny_model_dir``: a tiny Llama model + tokenizer built offline (session).
- ``tiny_config(owner, dataset, **training)``: a saved config that trains it in seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection

from jobs import services
from jobs.models import Dataset, TrainingConfig
from jobs.training_config import validate_config
from providers.fakes.runpod import FakeRunPod
from providers.fakes.runpod_pods import FakePod

ROOT = Path(__file__).resolve().parents[1]
# Expensive on purpose: the budget tests cross a few cents of budget within seconds.
FAST_BILLING_PRICE = 36.0  # $/h for the fake's "NVIDIA RTX A4000" = 1 cent a second
STACK_SETTINGS = {
    "POLL_INTERVAL_S": "1",
    "RECONCILE_INTERVAL_S": "3",
    "STOP_GRACE_S": "15",
    "GRACEFUL_STOP_MARGIN_S": "4",
    "LAUNCH_LEASE_S": "6",
    "EXIT_GRACE_S": "3",
    "BROKER_VISIBILITY_TIMEOUT_S": "12",
}
# The trainer in tests must never reach for the Hugging Face Hub.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveStack:
    url: str
    runpod: FakeRunPod
    processes: dict[str, subprocess.Popen[bytes]]
    log_dir: Path
    commands: dict[str, tuple[list[str], dict[str, str]]]

    def kill(self, name: str) -> None:
        """SIGKILL a process group, as a crash would: no clean-up, no acks."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def start(self, name: str) -> None:
        argv, env = self.commands[name]
        self.processes[name] = _start(name, argv, env, self.log_dir)

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            self._check_alive()
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.logs()}")

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} died with {process.returncode}\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)


def _database_env() -> dict[str, str]:
    """Point a child process at the test database the test process is using."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": str(db["NAME"])}
    url = urlparse(os.environ["DATABASE_URL"])
    return {"DATABASE_URL": urlunparse(url._replace(path=f"/{db['NAME']}"))}


def _pod_command(workdir: Path) -> Callable[[FakePod], list[str]]:
    """A fake RunPod pod runs the real trainer from this checkout (no image, no pip here)."""

    def argv(pod: FakePod) -> list[str]:
        output = workdir / pod.id
        return [
            "bash",
            "-c",
            f"cd {ROOT} && exec {sys.executable} -m trainer --output-dir {output}",
        ]

    return argv


def _start(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path
) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def live_stack(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    from providers.catalog import RUNPOD_GPUS, RunPodGpu

    log_dir = tmp_path_factory.mktemp("stack-logs")
    prices = [
        RunPodGpu(g.id, g.name, g.memory_gb, FAST_BILLING_PRICE, FAST_BILLING_PRICE, g.gpu_class)
        if g.id == "NVIDIA RTX A4000"
        else g
        for g in RUNPOD_GPUS
    ]
    runpod = FakeRunPod(
        command_override=_pod_command(tmp_path_factory.mktemp("pods")), prices=prices
    ).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The test process talks to the same fake when it checks pods itself.
    django_settings.RUNPOD_BASE_URL = runpod.url
    with django_db_blocker.unblock():
        env = {
            **os.environ,
            **_database_env(),
            **STACK_SETTINGS,
            "DJANGO_SETTINGS_MODULE": "dashboard.settings.test",
            "TUNEBOARD_PUBLIC_URL": url,
            "RUNPOD_BASE_URL": runpod.url,
        }
    python = sys.executable
    commands = {
        "web": [python, "-m", "uvicorn", "dashboard.asgi:application", "--port", str(port), "--no-access-log"],
        "worker": [python, "-m", "celery", "-A", "worker", "worker", "--concurrency", "4", "--pool", "threads", "--loglevel", "INFO"],
        "beat": [python, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO", "--schedule", str(log_dir / "beat-schedule")],
    }  # fmt: skip
    processes = {name: _start(name, argv, env, log_dir) for name, argv in commands.items()}
    stack = LiveStack(
        url, runpod, processes, log_dir, {name: (argv, env) for name, argv in commands.items()}
    )
    try:
        stack.wait_for(lambda: _answers(f"{url}/healthz"), 60, "the web process")
        yield stack
    finally:
        _stop(processes)
        runpod.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


def tiny_training_config(
    owner: User,
    dataset: Dataset,
    model_dir: Path,
    predictions: dict[str, Any] | None = None,
    **training: Any,
) -> TrainingConfig:
    """A config that trains the tiny model for a few steps with predictions, in seconds."""
    data = {
        "name": training.pop("name", "tiny run"),
        "model": {"name": str(model_dir), "torch_dtype": "float32"},
        "data": {"dataset_id": str(dataset.id), "eval_split": 0.2, "max_seq_length": 64},
        "training": {
            "max_steps": 12, "batch_size": 4, "learning_rate": 0.005, "logging_steps": 1,
            "lora_r": 8, "lora_alpha": 16, **training,
        },
        "predictions": predictions or {"sample_count": 2, "sample_frequency": "steps", "step_interval": 6, "max_new_tokens": 8},
    }  # fmt: skip
    return services.save_config(owner, validate_config(data).as_dict())
