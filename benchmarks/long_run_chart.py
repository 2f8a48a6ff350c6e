"""A run with 1,000,000 metric points: the series request and the chart draw, downsampled or not.

    python benchmarks/long_run_chart.py [--points 1000000] [--width 1366]

Server: ``jobs.series.metric_series`` (what ``GET /api/jobs/<id>/metrics`` runs) on a fresh
SQLite database, downsampled to the chart's width, against the same call with no downsampling
(the baseline, measured in the same run). Browser: Debian's Chromium draws uPlot (the page's
chart library, from static/vendor) with the downsampled series and with every point.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def setup_django(var_dir: str) -> None:
    os.environ["TUNEBOARD_VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings.base")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def make_long_run(points: int) -> Any:
    from datetime import UTC, datetime
    from decimal import Decimal

    from django.contrib.auth.models import User

    from jobs.models import Dataset, MetricPoint, TrainingJob

    owner = User.objects.create_user("bench")
    dataset = Dataset.objects.create(owner=owner, name="d", original_filename="d.jsonl", sha256="0")
    job = TrainingJob.objects.create(owner=owner, config_snapshot={}, dataset=dataset, name="long",
                                     provider="local", budget=Decimal(1), ingest_token_hash="x",
                                     last_seq=points)  # fmt: skip
    now = datetime.now(UTC)
    batch = []
    for step in range(1, points + 1):
        value = 2.0 * math.exp(-step / (points / 5)) + 0.3 + 0.05 * math.sin(step / 7.0)
        batch.append(
            MetricPoint(job=job, seq=step, step=step, epoch=None, name="loss", value=value, ts=now)
        )
        if len(batch) == 50_000:
            MetricPoint.objects.bulk_create(batch)
            batch = []
    MetricPoint.objects.bulk_create(batch)
    return job


def time_call(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def server_side(job: Any, width: int, repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from jobs.series import metric_series

    # The baseline asks for more points than exist: every point comes back, as with no downsampling.
    raw_s, raw = time_call(lambda: metric_series(job, name=["loss"], points=10**9), repeat)
    down_s, down = time_call(lambda: metric_series(job, name=["loss"], points=width), repeat)
    raw_bytes = len(json.dumps(raw))
    down_bytes = len(json.dumps(down))
    print(f"server  no downsampling : {raw_s * 1000:8.0f} ms  {raw_bytes / 1e6:6.1f} MB JSON  "
          f"{len(raw['series']['loss']['steps']):>9,} points")  # fmt: skip
    label = f"min/max to {width}"
    print(f"server  {label:<16}: {down_s * 1000:8.0f} ms  {down_bytes / 1e6:6.2f} MB JSON  "
          f"{len(down['series']['loss']['steps']):>9,} points")  # fmt: skip
    return raw["series"]["loss"], down["series"]["loss"]


# Parse the response body and draw until the frame is on screen (uPlot commits asynchronously).
DRAW_JS = """async ([body, width]) => {
  const el = document.createElement("div"); document.body.append(el);
  const t0 = performance.now();
  const series = JSON.parse(body);
  const chart = new uPlot({width, height: 250, scales: {x: {time: false}},
                           series: [{}, {stroke: "#6366f1"}]}, [series.steps, series.values], el);
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const t1 = performance.now();
  chart.destroy(); el.remove();
  return t1 - t0;
}"""


def browser_side(raw: dict[str, Any], down: dict[str, Any], width: int, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width + 100, "height": 400})
        page.set_content("<html><body></body></html>")
        page.add_script_tag(path=str(ROOT / "static/vendor/uPlot.iife.min.js"))
        for label, series in (("every point", raw), (f"downsampled ({width})", down)):
            body = json.dumps({"steps": series["steps"], "values": series["values"]})
            draws = [page.evaluate(DRAW_JS, [body, width]) for _ in range(repeat)]
            median = statistics.median(draws)
            print(f"browser parse+draw {label:<20}: {median:8.1f} ms (median of {repeat})")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var_dir:
        setup_django(var_dir)
        start = time.perf_counter()
        job = make_long_run(args.points)
        print(f"stored {args.points:,} points in {time.perf_counter() - start:.1f} s")
        raw, down = server_side(job, args.width, args.repeat)
        browser_side(raw, down, args.width, args.repeat)


if __name__ == "__main__":
    main()
