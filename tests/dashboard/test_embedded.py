"""The embedded default starts the whole stack, answers, and leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TUNEBOARD_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="dashboard.settings.base")
    return env


def wait_for_health(url: str, process: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout_s}s")


def test_embedded_mode_starts_answers_and_stops_cleanly(tmp_path: Path) -> None:
    # given
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "embedded", "--port", str(port)],
        cwd=ROOT, env=embedded_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        # when
        wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
        family = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        # then: web, worker, beat and the private redis all run
        for part in ("uvicorn", "worker", "beat", "redis-server"):
            assert part in names, names
        assert (tmp_path / "tuneboard.sqlite3").exists()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert "Tuneboard is running at" in output
        assert "sign in as 'admin'" in output
        _, alive = psutil.wait_procs(family, timeout=15)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_the_stack_needs_nothing_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    # `./tuneboard run` sets no variable: the commands come from settings alone (the test above
    # must set TUNEBOARD_VAR_DIR to stay out of the checkout's var/, so it cannot show this).
    from dashboard.embedded import stack_commands

    monkeypatch.delenv("TUNEBOARD_VAR_DIR", raising=False)
    commands = dict(stack_commands("127.0.0.1", 8000, tmp_path))
    assert set(commands) == {"web", "worker", "beat"}
    assert str(tmp_path / "celerybeat-schedule") in commands["beat"]
