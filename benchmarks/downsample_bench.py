"""Time jobs.downsample on a long metric series.

python -m benchmarks.downsample_bench --points 1000000 --target 2000
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable
from typing import Any

from jobs.downsample import lttb, min_max

Method = Callable[[list[int], list[float], int], tuple[list[Any], list[Any]]]


def _series(points: int) -> tuple[list[int], list[float]]:
    rng = random.Random(0)
    xs = list(range(points))
    ys = [math.exp(-i / points) + 0.05 * rng.random() for i in xs]
    return xs, ys


def _best_of(method: Method, xs: list[int], ys: list[float], target: int, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        method(xs, ys, target)
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000, help="length of the series")
    parser.add_argument("--target", type=int, default=2_000, help="points to keep")
    parser.add_argument("--runs", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()
    xs, ys = _series(args.points)
    for name, method in (("lttb", lttb), ("min_max", min_max)):
        seconds = _best_of(method, xs, ys, args.target, args.runs)
        print(f"{name:8} {args.points:>10,} -> {args.target:,} points: {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
