"""Ingest throughput and latency against PostgreSQL, with a COPY baseline from the same run.

What it measures (issue: core platform):
1. Metric points per second that ONE web process (uvicorn, one worker) stores into PostgreSQL
   when trainers post batches of 100 points, with 1 and with 50 concurrent posting clients.
2. The same rows written by a plain psycopg ``COPY`` into the same table, in the same run:
   the upper bound for "just storing rows"; the ratio is what our API costs on top.
3. p50 / p95 request latency of ``POST /api/ingest/v1/events`` at 50 concurrent clients.

Run (needs PostgreSQL and Redis; CI machines have both on 127.0.0.1):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tuneboard_bench \
    REDIS_URL=redis://127.0.0.1:6379/13 python benchmarks/ingest_throughput.py

The client threads run on the same 2-core machine as the server, so absolute figures are lower
than on a real deployment; the ratio to COPY is the figure to watch.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH = 100


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings.base")
    if not os.environ.get("DATABASE_URL"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is created if missing)")
    import django

    django.setup()
    from django.core.management import call_command

    _create_database(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0)


def _create_database(url: str) -> None:
    from urllib.parse import urlparse

    name = urlparse(url).path.strip("/")
    admin = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def make_jobs(count: int) -> list[tuple[str, str]]:
    """``count`` queued jobs with their ingest tokens, made through the real services."""
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobs import services
    from jobs.training_config import validate_config

    owner, _ = User.objects.get_or_create(username="bench")
    rows = b"".join(b'{"text": "hello %d"}\n' % i for i in range(10))
    dataset = services.create_dataset(owner, SimpleUploadedFile("b.jsonl", rows), "bench")
    config = services.save_config(
        owner,
        validate_config(
            {"name": "bench", "model": {"name": "x/y"}, "data": {"dataset_id": str(dataset.id)}}
        ).as_dict(),
    )
    made = []
    for _ in range(count):
        request = services.LaunchRequest(provider="local", gpu_types=[], budget=Decimal(1))
        job, token = services.launch_job(owner, config, request)
        made.append((str(job.id), token))
    return made


def batch(first_seq: int) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {
        "events": [
            {
                "seq": seq,
                "type": "metric",
                "ts": now,
                "data": {"step": seq, "epoch": seq / 1000, "values": {"loss": 1.0 / seq}},
            }
            for seq in range(first_seq, first_seq + BATCH)
        ]
    }


def post_batches(url: str, token: str, batches: int, latencies: list[float]) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for i in range(batches):
        body = batch(i * BATCH + 1)
        started = time.perf_counter()
        response = session.post(f"{url}/api/ingest/v1/events", json=body, timeout=60)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or response.json()["acked_through"] != (i + 1) * BATCH:
            raise SystemExit(f"bad answer: {response.status_code} {response.text[:200]}")


def run_clients(url: str, jobs: list[tuple[str, str]], batches: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    threads = [
        threading.Thread(target=post_batches, args=(url, token, batches, latencies))
        for _, token in jobs
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return len(jobs) * batches * BATCH / elapsed, latencies


def copy_baseline(points: int) -> float:
    """The same rows through psycopg COPY into the same table, for a job of its own."""
    from django.db import connection

    (job_id, _token) = make_jobs(1)[0]
    now = datetime.now(UTC)
    buffer = io.StringIO()
    for seq in range(1, points + 1):
        buffer.write(
            f"{job_id}\t{seq}\t{seq}\t{seq / 1000}\tloss\t{1.0 / seq}\t{now.isoformat()}\n"
        )
    data = buffer.getvalue()
    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(
            "COPY jobs_metricpoint (job_id, seq, step, epoch, name, value, ts) FROM STDIN"
        ) as copy:
            copy.write(data)
        conn.commit()
        elapsed = time.perf_counter() - started
    connection.close()
    return points / elapsed


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings.base"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "dashboard.asgi:application", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--workers", "1"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches per client")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    setup_django()
    server = start_server(args.port)
    url = f"http://127.0.0.1:{args.port}"
    try:
        # warm-up: connections, imports
        run_clients(url, make_jobs(1), 5)
        single_rate, single_lat = run_clients(url, make_jobs(1), args.batches * 5)
        many_rate, many_lat = run_clients(url, make_jobs(args.clients), args.batches)
    finally:
        server.terminate()
        server.wait()
    copy_rate = copy_baseline(args.batches * args.clients * BATCH)
    many_lat.sort()
    p95 = many_lat[int(len(many_lat) * 0.95) - 1]
    single_p50 = statistics.median(single_lat) * 1000
    many_p50 = statistics.median(many_lat) * 1000
    print(f"batches of {BATCH} metric points, one uvicorn process, PostgreSQL")
    print(f"  1 client : {single_rate:10.0f} points/s   (p50 {single_p50:.1f} ms)")
    print(
        f"  {args.clients} clients: {many_rate:10.0f} points/s   "
        f"p50 {many_p50:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )
    print(f"  COPY     : {copy_rate:10.0f} points/s   (baseline, same rows, same table)")
    print(
        f"  ratio    : API at {args.clients} clients = {many_rate / copy_rate:.1%} of COPY; "
        f"1 client = {single_rate / copy_rate:.1%}"
    )


if __name__ == "__main__":
    main()
