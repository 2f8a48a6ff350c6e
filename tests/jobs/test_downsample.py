from __future__ import annotations

import math
import time

import pytest

from jobs.downsample import lttb, min_max


def _noisy_curve(size: int) -> tuple[list[int], list[float]]:
    xs = list(range(size))
    ys = [math.exp(-i / (size / 4)) + 0.05 * math.sin(i * 0.37) for i in xs]
    return xs, ys


def test_lttb_returns_exactly_n_points_in_x_order() -> None:
    xs, ys = _noisy_curve(10_000)

    out_x, out_y = lttb(xs, ys, 500)

    assert len(out_x) == len(out_y) == 500
    assert out_x == sorted(out_x)
    assert len(set(out_x)) == 500


def test_lttb_keeps_the_first_and_last_point() -> None:
    xs, ys = _noisy_curve(1_000)

    out_x, out_y = lttb(xs, ys, 10)

    assert (out_x[0], out_y[0]) == (0, ys[0])
    assert (out_x[-1], out_y[-1]) == (999, ys[-1])


def test_lttb_keeps_the_peak_of_a_spike() -> None:
    xs = list(range(100_000))
    ys = [1.0] * 100_000
    ys[54_321] = 50.0

    out_x, out_y = lttb(xs, ys, 100)

    assert 54_321 in out_x
    assert max(out_y) == 50.0


def test_lttb_only_returns_original_points() -> None:
    xs, ys = _noisy_curve(5_000)
    original: dict[float, float] = dict(zip(xs, ys, strict=True))

    out_x, out_y = lttb(xs, ys, 300)

    assert all(original[x] == y for x, y in zip(out_x, out_y, strict=True))


def test_lttb_matches_the_reference_algorithm() -> None:
    xs, ys = _noisy_curve(2_000)

    assert lttb(xs, ys, 77)[0] == _reference_lttb_xs(xs, ys, 77)


def _reference_lttb_xs(xs: list[int], ys: list[float], n: int) -> list[int]:
    # Steinarsson's algorithm written plainly, one point at a time.
    every = (len(xs) - 2) / (n - 2)
    picked, a = [0], 0
    for i in range(n - 2):
        start, end = int(i * every) + 1, int((i + 1) * every) + 1
        next_end = min(int((i + 2) * every) + 1, len(xs))
        cx = sum(xs[end:next_end]) / (next_end - end)
        cy = sum(ys[end:next_end]) / (next_end - end)
        areas = [
            abs((xs[a] - cx) * (ys[j] - ys[a]) - (xs[a] - xs[j]) * (cy - ys[a]))
            for j in range(start, end)
        ]
        a = start + areas.index(max(areas))
        picked.append(a)
    picked.append(len(xs) - 1)
    return [xs[i] for i in picked]


def test_min_max_keeps_a_spike_and_a_dip_in_every_bucket() -> None:
    xs = list(range(10_000))
    ys = [0.0] * 10_000
    ys[1_234] = 9.0
    ys[8_765] = -9.0

    out_x, out_y = min_max(xs, ys, 50)

    assert (1_234, 9.0) in zip(out_x, out_y, strict=True)
    assert (8_765, -9.0) in zip(out_x, out_y, strict=True)


def test_min_max_returns_at_most_n_points_with_the_ends_in_x_order() -> None:
    xs, ys = _noisy_curve(10_000)

    out_x, out_y = min_max(xs, ys, 200)

    assert 190 <= len(out_x) <= 200
    assert len(out_x) == len(out_y)
    assert out_x == sorted(out_x)
    assert (out_x[0], out_x[-1]) == (0, 9_999)


def test_min_max_keeps_each_bucket_extreme() -> None:
    xs, ys = _noisy_curve(1_002)

    out_x, _ = min_max(xs, ys, 12)  # first, last and 5 buckets of 200 points

    kept = set(out_x)
    for bucket in range(5):
        window = range(1 + bucket * 200, 1 + (bucket + 1) * 200)
        assert max(window, key=lambda i: ys[i]) in kept
        assert min(window, key=lambda i: ys[i]) in kept


@pytest.mark.parametrize("method", [lttb, min_max])
def test_a_series_no_longer_than_n_comes_back_unchanged(method) -> None:
    xs, ys = [1, 2, 3], [0.5, 0.25, 0.125]

    assert method(xs, ys, 3) == ([1, 2, 3], [0.5, 0.25, 0.125])
    assert method(xs, ys, 1000) == ([1, 2, 3], [0.5, 0.25, 0.125])


@pytest.mark.parametrize("method", [lttb, min_max])
def test_an_empty_series_stays_empty(method) -> None:
    assert method([], [], 100) == ([], [])


@pytest.mark.parametrize("method", [lttb, min_max])
def test_two_points_keep_only_the_ends(method) -> None:
    xs, ys = _noisy_curve(100)

    assert method(xs, ys, 2) == ([0, 99], [ys[0], ys[99]])


@pytest.mark.parametrize("method", [lttb, min_max])
def test_fewer_than_two_points_is_refused(method) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        method([1, 2, 3], [1, 2, 3], 1)


@pytest.mark.parametrize("method", [lttb, min_max])
def test_mismatched_lengths_are_refused(method) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        method([1, 2, 3], [1, 2], 10)


@pytest.mark.parametrize("method", [lttb, min_max])
def test_nan_and_infinite_points_are_dropped(method) -> None:
    xs = [0, 1, 2, 3, 4]
    ys = [1.0, math.nan, 3.0, math.inf, 5.0]

    assert method(xs, ys, 10) == ([0, 2, 4], [1.0, 3.0, 5.0])


def test_nan_points_never_reach_a_downsampled_series() -> None:
    xs, ys = _noisy_curve(10_000)
    for i in range(0, 10_000, 7):
        ys[i] = math.nan

    out_y = lttb(xs, ys, 100)[1] + min_max(xs, ys, 100)[1]

    assert all(math.isfinite(y) for y in out_y)


def test_a_million_points_downsample_quickly() -> None:
    xs = list(range(1_000_000))
    ys = [math.sin(i / 5_000) for i in xs]

    started = time.perf_counter()
    lttb_x, _ = lttb(xs, ys, 2_000)
    min_max_x, _ = min_max(xs, ys, 2_000)
    elapsed = time.perf_counter() - started

    assert len(lttb_x) == 2_000
    assert len(min_max_x) <= 2_000
    # About 0.35 s on a laptop core; generous for noisy CI.
    assert elapsed < 5.0
