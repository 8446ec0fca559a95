"""replyclock.logic.metrics: windows, merged figures, percentiles, time series and distributions, without AWS."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from replyclock.logic.aggregation import BucketKey, BucketTotals
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.metrics import (
    MAX_POINTS,
    TimeWindow,
    WindowError,
    aligned,
    check_points,
    distribution,
    first_response_histogram,
    latency_stats,
    projected_seconds,
    requested_window,
    segments,
    select,
    summarize,
    timeseries,
)
from replyclock.models.api import Interval
from replyclock.models.domain import Clock, Priority, WaitKind

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


def bucket(
    hour: str,
    latencies: list[float] | tuple[float, ...] = (),
    *,
    kind: WaitKind = WaitKind.FIRST,
    channel: str = "x",
    priority: Priority = Priority.NORMAL,
    open_waits: int = 0,
    met: int = 0,
    breached: int = 0,
    at_risk: int = 0,
    business: list[float] | None = None,
) -> tuple[BucketKey, BucketTotals]:
    totals = BucketTotals()
    totals.counters = Counter(
        {
            "waits": len(latencies) + open_waits,
            "responded": len(latencies),
            "open": open_waits,
            "met": met,
            "breached": breached,
            "at_risk": at_risk,
        }
    )
    totals.calendar = LatencyHistogram.from_values(list(latencies))
    totals.business = LatencyHistogram.from_values(business if business is not None else list(latencies))
    return BucketKey("acme", hour, kind, channel, priority), totals


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_default_window_is_the_last_seven_days() -> None:
    window = requested_window(NOW, None, None, max_days=400)

    assert (window.start, window.end) == (NOW - timedelta(days=7), NOW)


def test_from_alone_runs_to_now_and_to_alone_looks_back_seven_days() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)

    assert requested_window(NOW, start, None, max_days=400).end == NOW
    assert requested_window(NOW, None, start, max_days=400).start == start - timedelta(days=7)


def test_offsets_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))

    window = requested_window(NOW, datetime(2026, 11, 1, 1, tzinfo=paris), None, max_days=400)

    assert window.start == datetime(2026, 11, 1, 0, tzinfo=UTC)


def test_from_after_to_is_refused_on_from() -> None:
    with pytest.raises(WindowError) as refused:
        requested_window(NOW, NOW, NOW - timedelta(hours=1), max_days=400)

    assert refused.value.field == "from"


def test_window_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(WindowError, match="at most 30 days"):
        requested_window(NOW, NOW - timedelta(days=30, seconds=1), NOW, max_days=30)


def test_window_of_exactly_the_maximum_is_accepted() -> None:
    assert requested_window(NOW, NOW - timedelta(days=30), NOW, max_days=30).end == NOW


def test_naive_datetimes_are_refused_with_their_parameter_name() -> None:
    with pytest.raises(WindowError) as refused:
        requested_window(NOW, None, datetime(2026, 11, 1), max_days=400)

    assert refused.value.field == "to"


@pytest.mark.parametrize("moment", [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC)])
def test_datetimes_near_the_limits_of_datetime_are_refused_not_overflowed(moment: datetime) -> None:
    with pytest.raises(WindowError):
        aligned(requested_window(NOW, moment, None, max_days=400))


def test_aligned_widens_to_whole_hours_and_days() -> None:
    window = TimeWindow(datetime(2026, 11, 1, 10, 30, tzinfo=UTC), datetime(2026, 11, 2, 11, 0, tzinfo=UTC))

    assert aligned(window) == TimeWindow(datetime(2026, 11, 1, 10, tzinfo=UTC), datetime(2026, 11, 2, 11, tzinfo=UTC))
    assert aligned(window, timedelta(days=1)) == TimeWindow(
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    )


def test_hour_range_names_the_first_and_last_bucket_inside_the_window() -> None:
    window = TimeWindow(datetime(2026, 11, 1, 10, tzinfo=UTC), datetime(2026, 11, 1, 13, tzinfo=UTC))

    assert window.hour_range() == ("2026-11-01T10", "2026-11-01T12")
    assert window.hours == 3


def test_summary_counts_first_and_next_waits_apart() -> None:
    buckets = [
        bucket("2026-11-18T10", [60, 120, 600], open_waits=1, met=2, breached=1, at_risk=1),
        bucket("2026-11-18T11", [30], kind=WaitKind.NEXT, met=1),
    ]

    figures = summarize(buckets, Clock.CALENDAR)

    assert (figures.mentions, figures.responded, figures.response_rate) == (4, 3, 0.75)
    assert figures.sla.model_dump() == {"met": 2, "breached": 1, "pending": 1, "at_risk": 1, "compliance": 2 / 3}
    assert (figures.next_waits, figures.next_responded) == (1, 1)
    assert figures.next_sla.compliance == 1.0
    assert figures.first_response_seconds.count == 3
    assert figures.first_response_seconds.mean == pytest.approx(260, rel=1e-6)


def test_summary_without_waits_has_null_rates_and_latencies() -> None:
    figures = summarize([], Clock.CALENDAR)

    assert figures.mentions == 0
    assert figures.response_rate is None and figures.sla.compliance is None
    assert figures.first_response_seconds.p50 is None and figures.first_response_seconds.count == 0


def test_summary_reads_the_requested_clock() -> None:
    buckets = [bucket("2026-11-18T10", [3600.0], business=[60.0])]

    assert summarize(buckets, Clock.CALENDAR).first_response_seconds.max == pytest.approx(3600, rel=0.01)
    assert summarize(buckets, Clock.BUSINESS).first_response_seconds.max == pytest.approx(60, rel=0.01)


def test_percentiles_of_merged_buckets_are_within_one_percent_of_exact() -> None:
    # Given latencies spread over many hours, channels and priorities
    generator = random.Random(7)
    values: list[float] = []
    buckets = []
    for hour in range(48):
        for channel in ("x", "mastodon", "bluesky"):
            for priority in Priority:
                latencies = [generator.lognormvariate(7, 1.5) + 1 for _ in range(generator.randint(0, 12))]
                values.extend(latencies)
                buckets.append(
                    bucket(
                        f"2026-11-{1 + hour // 24:02d}T{hour % 24:02d}", latencies, channel=channel, priority=priority
                    )
                )

    # When they are merged
    stats = summarize(buckets, Clock.CALENDAR).first_response_seconds

    # Then every percentile is within 1% of the exact nearest-rank value
    assert stats.count == len(values)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert getattr(stats, name) == pytest.approx(exact_quantile(values, q), rel=0.01), name
    assert stats.max == pytest.approx(max(values), rel=0.01)
    assert stats.mean == pytest.approx(sum(values) / len(values), rel=1e-6)


def test_select_filters_by_channel_and_priority() -> None:
    buckets = [
        bucket("2026-11-18T10", [1], channel="x", priority=Priority.URGENT),
        bucket("2026-11-18T10", [2], channel="x", priority=Priority.LOW),
        bucket("2026-11-18T10", [3], channel="reddit", priority=Priority.URGENT),
    ]

    assert len(list(select(buckets, "x", None))) == 2
    assert len(list(select(buckets, None, Priority.URGENT))) == 2
    assert [key.channel for key, _ in select(buckets, "reddit", Priority.URGENT)] == ["reddit"]


def test_timeseries_has_a_point_per_interval_including_empty_ones() -> None:
    window = TimeWindow(datetime(2026, 11, 18, 10, tzinfo=UTC), datetime(2026, 11, 18, 14, tzinfo=UTC))
    buckets = [bucket("2026-11-18T10", [60]), bucket("2026-11-18T12", [60, 120])]

    points = timeseries(buckets, Clock.CALENDAR, window, Interval.HOUR)

    assert [point.from_.hour for point in points] == [10, 11, 12, 13]
    assert [point.mentions for point in points] == [1, 0, 2, 0]
    assert points[1].first_response_seconds.p50 is None


def test_daily_timeseries_sums_the_hours_of_each_utc_day() -> None:
    window = TimeWindow(datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
    buckets = [bucket("2026-11-18T00", [60]), bucket("2026-11-18T23", [60]), bucket("2026-11-19T05", [60])]

    points = timeseries(buckets, Clock.CALENDAR, window, Interval.DAY)

    assert [(point.from_.day, point.to.day, point.mentions) for point in points] == [(18, 19, 2), (19, 20, 1)]


def test_too_many_points_are_refused_on_interval() -> None:
    window = TimeWindow(NOW - timedelta(hours=MAX_POINTS + 1), NOW)

    with pytest.raises(WindowError) as refused:
        check_points(window, Interval.HOUR)
    check_points(window, Interval.DAY)

    assert refused.value.field == "interval"


def test_distribution_counts_each_response_in_exactly_one_band() -> None:
    # (Values within 1% of a band edge may land on either side: these keep clear of the edges.)
    latencies = [0.0, 60, 850, 950, 3000, 3700, 14000, 15000, 80000, 90000, 400000]

    bands = distribution(LatencyHistogram.from_values(latencies))

    assert [(band.label, band.count) for band in bands] == [
        ("15m", 3),
        ("1h", 2),
        ("4h", 2),
        ("24h", 2),
        ("over_24h", 2),
    ]
    assert sum(band.share or 0 for band in bands) == pytest.approx(1)
    assert bands[-1].up_to_seconds is None and bands[0].above_seconds == 0


def test_distribution_uses_first_responses_only() -> None:
    buckets = [bucket("2026-11-18T10", [60]), bucket("2026-11-18T10", [7200], kind=WaitKind.NEXT)]

    assert first_response_histogram(buckets, Clock.CALENDAR).count == 1


def test_a_histogram_with_negative_counts_reports_no_latency_instead_of_failing() -> None:
    delta = LatencyHistogram.from_values([10.0]).negated()

    assert latency_stats(delta).count == 0
    assert all(band.count == 0 for band in distribution(delta))


def test_segments_double_in_length_and_cover_the_window_exactly() -> None:
    window = TimeWindow(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 10, 30, 5, tzinfo=UTC))

    pieces = segments(window)

    assert [piece.hours // 24 for piece in pieces[:-1]] == [1, 2, 4, 8, 16, 32]
    assert pieces[0].start == window.start and pieces[-1].end == window.end
    assert all(before.end == after.start for before, after in zip(pieces, pieces[1:], strict=False))


def test_projection_extrapolates_the_cost_per_hour_read() -> None:
    assert projected_seconds(elapsed=2.0, hours_done=24, hours_left=48) == pytest.approx(6.0)
    assert projected_seconds(elapsed=0.0, hours_done=0, hours_left=100) == 0.0
