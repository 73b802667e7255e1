"""Rolling windows with a fake clock: exact counts per second, percentiles, bounded memory."""

from __future__ import annotations

import pytest

from monitoring.windows import RateCounter, SampleWindow, Stats, percentile


def test_rate_counter_counts_exactly_within_the_window():
    counter = RateCounter(60)
    for second in range(10):
        counter.add(1000.0 + second + 0.5, amount=second + 1)  # 1, 2, ... 10 per second
    now = 1009.9
    assert counter.count(now, 1) == 10
    assert counter.count(now, 3) == 10 + 9 + 8
    assert counter.count(now, 10) == sum(range(1, 11))
    assert counter.count(now, 60) == sum(range(1, 11))
    assert counter.rate(now, 10) == pytest.approx(5.5)
    assert counter.total == 55


def test_rate_counter_forgets_what_left_the_window_and_reuses_buckets():
    counter = RateCounter(5)
    counter.add(100.0, 7)
    assert counter.count(100.5, 5) == 7
    assert counter.count(104.9, 5) == 7
    assert counter.count(105.0, 5) == 0  # second 100 left a 5 s window ending at 105
    counter.add(105.2, 2)  # reuses the bucket second 100 had
    assert counter.count(105.3, 5) == 2
    assert counter.total == 9


def test_rate_counter_handles_high_rates_without_growing():
    counter = RateCounter(3600)
    for i in range(100_000):
        counter.add(50.0 + i / 100_000)
    assert counter.count(50.99, 1) == 100_000
    assert len(counter._counts) == 3600


def test_rate_counter_window_longer_than_its_ring_is_capped():
    counter = RateCounter(10)
    for second in range(30):
        counter.add(float(second))
    assert counter.count(29.5, 60) == 10


def test_sample_window_stats_over_the_time_window():
    window = SampleWindow(maxlen=100)
    for i in range(1, 101):
        window.add(float(i), float(i))  # value i at time i
    stats = window.stats(100.0, 50)  # times 51..100
    assert stats.count == 50
    assert stats.avg == pytest.approx(75.5)
    assert stats.p50 == 75
    assert stats.p95 == 98
    assert stats.p99 == 100
    assert stats.max == 100


def test_sample_window_is_bounded_by_maxlen():
    window = SampleWindow(maxlen=10)
    for i in range(1000):
        window.add(1.0, float(i))
    assert len(window) == 10
    assert window.values(1.0, 60) == [float(i) for i in range(990, 1000)]
    assert window.total_count == 1000


def test_percentile_nearest_rank():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.0
    assert percentile(values, 75) == 3.0
    assert percentile(values, 100) == 4.0
    assert percentile([], 95) == 0.0


def test_empty_stats_are_zero():
    assert Stats.of([]) == Stats()
    assert Stats.of([]).scaled(1000) == {"count": 0, "avg": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
