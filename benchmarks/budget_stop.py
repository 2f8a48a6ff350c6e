"""Budget stop: from the moment cost crosses the budget to the terminate call, and the overspend.

Runs the real stack pieces that enforce a budget — a Celery worker and Celery beat (separate
processes, real Redis), the worker's poll and budget watch — against the fake RunPod server,
with pods that ignore every stop (the worst case: only a terminate ends them, the trainer's own
deadline never helps). Each run launches a job with a small budget on a $4/h GPU, and reads
from the fake's request log when the terminate arrived. The pod's cost crosses the budget at
``start + budget / price``; the difference is the stop latency, and latency x $4/h the overspend.

The same runs are made at beat poll intervals of 5 s (the default) and 1 s, so the figures can
be compared against each other in one run: the latency should track the poll interval.

    python benchmarks/budget_stop.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PRICE = 4.0  # $/h
BUDGET = Decimal("0.02")  # 18 s of a $4/h pod (budgets are whole cents)
GPU = "NVIDIA RTX A4000"


from providers.catalog import RunPodGpu  # noqa: E402
from providers.fakes.runpod import FakeRunPod  # noqa: E402
from providers.fakes.runpod_pods import Billing  # noqa: E402


def setup(var_dir: Path) -> dict[str, str]:
    os.environ["TUNEBOARD_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings.base")
    if not os.environ.get("REDIS_URL"):
        from dashboard.embedded import start_private_redis

        os.environ["REDIS_URL"] = start_private_redis(var_dir).url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return dict(os.environ)


def start_workers(env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    python = sys.executable
    commands = [
        [
            python,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
        ],
        [python, "-m", "celery", "-A", "worker", "beat", "--schedule", str(log_dir / "beat")],
    ]
    return [
        subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=(log_dir / f"{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i, argv in enumerate(commands)
    ]


class TimedFakeRunPod(FakeRunPod):
    """The fake, with the wall-clock time each request arrived."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, str, str]] = []

    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> Any:
        self.arrivals.append((time.time(), method, raw_path))
        return super().handle(method, raw_path, headers, raw_body)


def crossing_time(billing: Billing, budget: float) -> float:
    """When the pod's billed total (GPU and disk) reached the budget, by bisection."""
    low = min(seg.start for seg in billing.gpu)
    high = low + budget / PRICE * 3600 + 1
    for _ in range(60):
        mid = (low + high) / 2
        spent = sum(billing.amounts(0.0, mid, mid))
        low, high = (mid, high) if spent < budget else (low, mid)
    return high


def terminate_time(runpod: TimedFakeRunPod, ref: str) -> float:
    return min(
        at
        for at, method, path in runpod.arrivals
        if ref in path and (method == "DELETE" or (method == "POST" and path.endswith("/action")))
    )


def one_run(runpod: TimedFakeRunPod, owner: Any, config: Any) -> tuple[float, float]:
    from jobs import services
    from jobs.models import JobStatus, TrainingJob

    request = services.LaunchRequest(
        provider="runpod", gpu_types=[GPU], budget=BUDGET, alert_threshold=Decimal("0.8")
    )
    job, _ = services.launch_job(owner, config, request)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = TrainingJob.objects.get(id=job.id)
        if job.status == JobStatus.BUDGET_EXCEEDED and job.pod_terminated_at:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"job {job.id} did not stop: {job.status} {job.error}")
    latency = terminate_time(runpod, job.provider_ref) - crossing_time(
        runpod.billing[job.provider_ref], float(BUDGET)
    )
    return latency, latency / 3600 * PRICE


def fixtures(runpod: TimedFakeRunPod) -> tuple[Any, Any]:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobs import services
    from jobs.training_config import validate_config
    from providers.models import ProviderCredential

    owner = User.objects.create_user(f"bench-{time.time_ns()}")
    credential = ProviderCredential(owner=owner, provider="runpod")
    credential.set_secret(runpod.api_key)
    credential.save()
    dataset = services.create_dataset(owner, SimpleUploadedFile("b.jsonl", b'{"text": "x"}\n'), "b")
    data = {"name": "bench", "model": {"name": "x/y"}, "data": {"dataset_id": str(dataset.id)}}
    return owner, services.save_config(owner, validate_config(data).as_dict())


def measure(
    poll_s: str, env: dict[str, str], runs: int, log_dir: Path
) -> list[tuple[float, float]]:
    runpod = TimedFakeRunPod(
        command_override=lambda pod: ["sleep", "600"],
        prices=[RunPodGpu(GPU, "RTX A4000", 16, PRICE, PRICE, "A4000")],
    )
    runpod.start()
    workers = start_workers(
        {**env, "POLL_INTERVAL_S": poll_s, "RUNPOD_BASE_URL": runpod.url}, log_dir
    )
    try:
        owner, config = fixtures(runpod)
        return [one_run(runpod, owner, config) for _ in range(runs)]
    finally:
        for process in workers:
            process.terminate()
            process.wait()
        runpod.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="budget-bench-"))
    env = setup(var_dir)
    print(f"budget ${BUDGET} on a ${PRICE:.0f}/h pod that ignores stops; {args.runs} runs each")
    for poll_s in ("5", "1"):
        results = measure(poll_s, env, args.runs, var_dir)
        latencies = sorted(r[0] for r in results)
        overs = sorted(r[1] for r in results)
        print(
            f"  poll every {poll_s} s: cross -> terminate "
            f"median {statistics.median(latencies):.2f} s, "
            f"max {latencies[-1]:.2f} s; overspend median ${statistics.median(overs):.5f}, "
            f"max ${overs[-1]:.5f}"
        )


if __name__ == "__main__":
    main()
