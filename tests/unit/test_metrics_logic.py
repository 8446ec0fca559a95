"""replyclock.logic.metrics: windows, merged figures, percentiles, time series and distributions, without AWS."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, rolled_up
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.metrics import (
    DAY,
    MAX_POINTS,
    ReadPiece,
    TimeWindow,
    WindowError,
    aligned,
    check_points,
    distribution,
    first_response_histogram,
    latency_stats,
    read_plan,
    requested_window,
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


HOURLY, DAILY = Granularity.HOUR, Granularity.DAY
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def covered(pieces: list[ReadPiece]) -> list[tuple[datetime, datetime, Granularity]]:
    return [(piece.window.start, piece.window.end, piece.granularity) for piece in pieces]


def test_read_plan_reads_whole_days_from_daily_buckets_and_the_partial_days_from_hourly_ones() -> None:
    window = TimeWindow(datetime(2026, 8, 27, 12, tzinfo=UTC), datetime(2026, 11, 25, 12, tzinfo=UTC))

    pieces = read_plan(window, daily=True)

    hourly = [piece for piece in pieces if piece.granularity is HOURLY]
    daily = [piece for piece in pieces if piece.granularity is DAILY]
    assert covered(hourly) == [
        (window.start, datetime(2026, 8, 28, tzinfo=UTC), HOURLY),
        (datetime(2026, 11, 25, tzinfo=UTC), window.end, HOURLY),
    ]
    assert pieces == hourly + daily  # the edges first, then the days
    assert [piece.periods for piece in daily] == [89]
    assert daily[0].period_range() == ("2026-08-28", "2026-11-24")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # No whole day inside: hours only
        (NOV + timedelta(hours=10), NOV + timedelta(days=1, hours=9), [(10, 33, HOURLY)]),
        # Exactly one day
        (NOV, NOV + DAY, [(0, 24, DAILY)]),
        # A day and one hour on either side
        (NOV - timedelta(hours=1), NOV + timedelta(hours=25), [(-1, 0, HOURLY), (24, 25, HOURLY), (0, 24, DAILY)]),
    ],
)
def test_read_plan_edges(start: datetime, end: datetime, expected: list[tuple[int, int, Granularity]]) -> None:
    pieces = read_plan(TimeWindow(start, end), daily=True)

    assert covered(pieces) == [
        (NOV + timedelta(hours=first), NOV + timedelta(hours=last), granularity)
        for first, last, granularity in expected
    ]


def test_read_plan_reads_hours_only_without_daily_buckets() -> None:
    window = TimeWindow(NOV, NOV + timedelta(days=10))

    assert read_plan(window, daily=False) == [ReadPiece(window, HOURLY)]
    assert read_plan(TimeWindow(NOV, NOV), daily=True) == []


def test_an_unfiltered_read_plan_reads_brand_wide_hours_days_and_the_rolled_up_months_whole() -> None:
    window = TimeWindow(datetime(2026, 8, 27, 12, tzinfo=UTC), datetime(2026, 11, 25, 12, tzinfo=UTC))

    pieces = read_plan(window, daily=True, brand_wide=True, rolled_through=date(2026, 11, 20))

    assert [(piece.period_range(), piece.granularity, piece.brand_wide) for piece in pieces] == [
        (("2026-08-27T12", "2026-08-27T23"), HOURLY, True),
        (("2026-11-25T00", "2026-11-25T11"), HOURLY, True),
        (("2026-08-28", "2026-08-31"), DAILY, True),
        (("2026-09", "2026-10"), Granularity.MONTH, True),
        (("2026-11-01", "2026-11-24"), DAILY, True),
    ]


def test_a_month_the_rollups_do_not_reach_whole_is_read_as_days() -> None:
    window = TimeWindow(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))

    pieces = read_plan(window, daily=True, brand_wide=True, rolled_through=date(2026, 10, 30))

    assert [(piece.period_range(), piece.granularity) for piece in pieces] == [
        (("2026-09", "2026-09"), Granularity.MONTH),
        (("2026-10-01", "2026-10-31"), DAILY),
    ]


@settings(max_examples=300)
@given(
    start=st.integers(0, 400 * 24),
    hours=st.integers(0, 400 * 24),
    rolled=st.one_of(st.none(), st.integers(-10, 420)),
    brand_wide=st.booleans(),
    months=st.booleans(),
)
def test_read_plan_pieces_tile_the_window_without_overlap(
    start: int, hours: int, rolled: int | None, brand_wide: bool, months: bool
) -> None:
    window = TimeWindow(NOV + timedelta(hours=start), NOV + timedelta(hours=start + hours))
    rolled_through = None if rolled is None else (NOV + timedelta(days=rolled)).date()

    pieces = read_plan(window, daily=True, brand_wide=brand_wide, rolled_through=rolled_through, months=months)

    stretches = sorted((piece.window.start, piece.window.end) for piece in pieces)
    assert all(not piece.window.is_empty for piece in pieces)
    assert [end for _, end in stretches[:-1]] == [begin for begin, _ in stretches[1:]]
    assert (stretches[0][0], stretches[-1][1]) == (window.start, window.end) if pieces else window.is_empty
    assert all(piece.brand_wide == brand_wide for piece in pieces)
    after_rolled = None if rolled_through is None else datetime.combine(rolled_through, datetime.min.time(), UTC) + DAY
    for piece in pieces:
        if piece.granularity is Granularity.MONTH:
            # Monthly roll-ups only for whole months they reach, and only brand-wide
            assert brand_wide and months and after_rolled is not None and piece.window.end <= after_rolled
            assert piece.window.start.day == piece.window.end.day == 1


def test_a_daily_bucket_cannot_make_hourly_points() -> None:
    key, totals = bucket("2026-11-18T00", [60])
    window = TimeWindow(datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC))

    daily = list(rolled_up({key: totals}).items())

    assert timeseries(daily, Clock.CALENDAR, window, Interval.DAY)[0].mentions == 1
    with pytest.raises(ValueError, match="day bucket"):
        timeseries(daily, Clock.CALENDAR, window, Interval.HOUR)


# Five days of hourly buckets from here; windows may start and end a little outside them.
DATA_START = datetime(2026, 11, 15, tzinfo=UTC)
DATA_HOURS = 5 * 24


@st.composite
def hourly_buckets(draw: st.DrawFn) -> dict[BucketKey, BucketTotals]:
    """Random hourly buckets; latencies in quarter seconds, so that float sums are exact in any order."""
    found: dict[BucketKey, BucketTotals] = {}
    for _ in range(draw(st.integers(0, 40))):
        hour = DATA_START + timedelta(hours=draw(st.integers(0, DATA_HOURS - 1)))
        latencies = [quarters / 4 for quarters in draw(st.lists(st.integers(0, 400_000), max_size=4))]
        key, totals = bucket(
            Granularity.HOUR.label(hour),
            latencies,
            kind=draw(st.sampled_from(WaitKind)),
            channel=draw(st.sampled_from(["x", "reddit"])),
            priority=draw(st.sampled_from([Priority.URGENT, Priority.LOW])),
            open_waits=draw(st.integers(0, 2)),
            met=draw(st.integers(0, len(latencies))),
            at_risk=draw(st.integers(0, 1)),
            business=[value / 2 for value in latencies],
        )
        found.setdefault(key, BucketTotals()).merge(totals)
    return found


def stored(buckets: dict[BucketKey, BucketTotals], piece: ReadPiece) -> Iterable[tuple[BucketKey, BucketTotals]]:
    """What BucketStore.query / query_days answer for a piece: its granularity's buckets whose period lies in it."""
    first, last = piece.period_range()
    return [
        (key, totals)
        for key, totals in buckets.items()
        if key.granularity is piece.granularity and first <= key.period <= last
    ]


@settings(max_examples=300, deadline=None)
@given(
    hourly=hourly_buckets(),
    start_hour=st.integers(-30, DATA_HOURS + 5),
    hours=st.integers(0, DATA_HOURS + 40),
    daily=st.booleans(),
    channel=st.sampled_from([None, "x"]),
    clock=st.sampled_from(Clock),
)
def test_daily_and_hourly_buckets_give_exactly_the_figures_of_hourly_buckets_alone(
    hourly: dict[BucketKey, BucketTotals],
    start_hour: int,
    hours: int,
    daily: bool,
    channel: str | None,
    clock: Clock,
) -> None:
    # Given hourly buckets and their daily roll-ups, stored side by side
    table = hourly | rolled_up(hourly)
    window = TimeWindow(DATA_START + timedelta(hours=start_hour), DATA_START + timedelta(hours=start_hour + hours))

    # When a window is read as planned (daily buckets for its whole days), and hour by hour
    def read(window: TimeWindow, daily: bool) -> list[tuple[BucketKey, BucketTotals]]:
        found = [bucket for piece in read_plan(window, daily=daily) for bucket in stored(table, piece)]
        return list(select(found, channel, None))

    planned, hour_by_hour = read(window, daily), read(window, False)

    # Then the summary and the distribution are identical
    assert summarize(planned, clock) == summarize(hour_by_hour, clock)
    assert distribution(first_response_histogram(planned, clock)) == distribution(
        first_response_histogram(hour_by_hour, clock)
    )
    # and so is a daily time series over the window widened to whole days
    days = aligned(window, DAY)
    assert timeseries(read(days, daily), clock, days, Interval.DAY) == timeseries(
        read(days, False), clock, days, Interval.DAY
    )
    # and every hourly bucket of the window was counted once
    assert summarize(hour_by_hour, clock).mentions == sum(
        totals.counters["waits"]
        for key, totals in hourly.items()
        if key.kind is WaitKind.FIRST
        and (channel is None or key.channel == channel)
        and window.start <= key.starts_at < window.end
    )
