"""Live latency: a trainer's POST to the point arriving in a watching page's socket handler.

    python benchmarks/live_latency.py [--jobs 1 20 100] [--rounds 10]

Starts a private Redis and the ASGI server (uvicorn) on a fresh SQLite database, makes N
running jobs, opens one websocket per job with a signed-in session (the run page's socket;
these are websocket clients that do what the page's handler does, not N browser tabs: 100
Chromium pages on 2 cores would measure the browser, not us), then every job posts one metric
batch per round to the ingest API at the same moment. Reported: p50 / p95 of POST-sent to
message-received, and the baseline measured in the same run: the POST's own round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-pass-9183"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(var_dir: Path) -> tuple[str, list[Any]]:
    from dashboard.embedded import start_private_redis

    redis = start_private_redis(var_dir)
    os.environ.update(TUNEBOARD_VAR_DIR=str(var_dir), REDIS_URL=redis.url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings.base")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "dashboard.asgi:application", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "TUNEBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    return url, [web, redis]


def make_jobs(count: int) -> tuple[str, list[tuple[str, str]]]:
    from django.contrib.auth.models import User

    from jobs.models import Dataset, JobStatus, TrainingJob, hash_token

    name = f"bench{count}"
    owner = User.objects.create_user(name, password=PASSWORD)
    dataset = Dataset.objects.create(owner=owner, name="d", original_filename="d.jsonl", sha256="0")
    jobs = []
    for _ in range(count):
        token = secrets.token_urlsafe(24)
        job = TrainingJob.objects.create(
            owner=owner, config_snapshot={}, dataset=dataset, name="j", provider="local",
            status=JobStatus.RUNNING, budget=Decimal(5), ingest_token_hash=hash_token(token),
        )  # fmt: skip
        jobs.append((str(job.id), token))
    return name, jobs


def session_cookie(url: str, username: str) -> str:
    session = requests.Session()
    session.get(f"{url}/accounts/login/")
    session.post(f"{url}/accounts/login/", data={"username": username, "password": PASSWORD,
                 "csrfmiddlewaretoken": session.cookies["csrftoken"]})  # fmt: skip
    return f"sessionid={session.cookies['sessionid']}"


class Watchers:
    """One websocket per job in one event loop thread; records when each seq arrives."""

    def __init__(self, url: str, cookie: str, job_ids: list[str]) -> None:
        self.url, self.cookie, self.job_ids = url, cookie, job_ids
        self.received: dict[tuple[str, int], float] = {}
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(
            target=self.loop.run_until_complete, args=(self.run(),), daemon=True
        ).start()
        self.ready.wait(60)

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        ws_url = self.url.replace("http", "ws", 1)
        headers = {"Cookie": self.cookie, "Origin": self.url}
        sockets = [
            await connect(f"{ws_url}/ws/jobs/{j}/", additional_headers=headers)
            for j in self.job_ids
        ]
        self.ready.set()
        await asyncio.gather(
            *(self.listen(j, s) for j, s in zip(self.job_ids, sockets, strict=True))
        )

    async def listen(self, job_id: str, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in ws:
                # What the page's handler does first: parse the message and read its seq.
                message = json.loads(raw)
                self.received[(job_id, message["seq"])] = time.perf_counter()
        except ConnectionClosed:
            return  # the server is shutting down at the end of the run


def post(url: str, job_id: str, token: str, seq: int) -> tuple[float, float]:
    event = {"seq": seq, "type": "metric", "ts": "2026-11-22T10:00:00Z",
             "data": {"step": seq, "total_steps": 1000, "values": {"loss": 1.0 / seq}}}  # fmt: skip
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "X-Tuneboard-Job": job_id}
    requests.post(
        f"{url}/api/ingest/v1/events", json={"events": [event]}, headers=headers, timeout=60
    )
    return start, time.perf_counter()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def measure(url: str, count: int, rounds: int) -> None:
    username, jobs = make_jobs(count)
    watchers = Watchers(url, session_cookie(url, username), [j for j, _ in jobs])
    sent: dict[tuple[str, int], float] = {}
    round_trips: list[float] = []
    with ThreadPoolExecutor(max_workers=min(count, 32)) as pool:
        for seq in range(1, rounds + 1):
            futures = {job_id: pool.submit(post, url, job_id, token, seq) for job_id, token in jobs}
            for job_id, future in futures.items():
                start, done = future.result()
                sent[(job_id, seq)] = start
                round_trips.append(done - start)
            time.sleep(0.3)
    time.sleep(2)
    latencies = [watchers.received[k] - t for k, t in sent.items() if k in watchers.received]
    lost = len(sent) - len(latencies)
    print(f"{count:>3} jobs  POST round trip (baseline): {percentiles(round_trips)}")
    print(f"{count:>3} jobs  POST -> socket handler     : {percentiles(latencies)}   "
          f"({len(latencies)} messages, {lost} not delivered)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var_dir:
        url, children = start_server(Path(var_dir))
        try:
            for count in args.jobs:
                measure(url, count, args.rounds)
        finally:
            children[0].terminate()
            children[0].wait(10)
            children[1].stop()


if __name__ == "__main__":
    main()
