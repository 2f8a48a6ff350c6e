"""Metric series for charts: filtered by name and step range, downsampled to the chart's width."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from jobs.downsample import lttb, min_max
from jobs.models import MetricPoint, TrainingJob


def metric_series(
    job: TrainingJob,
    name: list[str] | None = None,
    min_step: int | None = None,
    max_step: int | None = None,
    after_seq: int | None = None,
    points: int = 1000,
    method: str = "minmax",
) -> dict[str, Any]:
    """``{"last_seq", "series": {name: {"steps", "values", "total"}}}``.

    ``last_seq`` is read before the points, so a page that applies live updates with a higher
    seq afterwards can only see a point twice (charts key on step), never miss one.
    ``after_seq`` is the backfill after a reconnect: raw points, never downsampled.
    """
    last_seq = TrainingJob.objects.values_list("last_seq", flat=True).get(id=job.id)
    rows = MetricPoint.objects.filter(job=job, seq__lte=last_seq)
    if name:
        rows = rows.filter(name__in=name)
    if min_step is not None:
        rows = rows.filter(step__gte=min_step)
    if max_step is not None:
        rows = rows.filter(step__lte=max_step)
    if after_seq is not None:
        rows = rows.filter(seq__gt=after_seq)
    columns: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for metric, step, value in (
        rows.order_by("name", "step", "seq")
        .values_list("name", "step", "value")
        .iterator(chunk_size=20_000)
    ):
        steps, values = columns[metric]
        steps.append(step)
        values.append(value)
    reduce = lttb if method == "lttb" else min_max
    series = {}
    for metric, (steps, values) in columns.items():
        total = len(steps)
        if after_seq is None and total > points:
            steps, values = reduce(steps, values, points)
        series[metric] = {"steps": steps, "values": values, "total": total}
    return {"last_seq": last_seq, "series": series}
