"""The live wait estimate (logic.eta): what it expects, its interval, and when it refuses to guess."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.logic import eta
from replyclock.logic.aggregation import BucketKey, BucketTotals
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Priority, WaitKind

NOW = datetime(2026, 11, 25, 14, 37, tzinfo=UTC)  # a Wednesday afternoon


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def history(
    recent: list[float], profile: list[float] | None = None, *, open_waits: int | None = None
) -> eta.WaitHistory:
    return eta.WaitHistory(
        recent=LatencyHistogram.from_values(recent),
        profile=LatencyHistogram.from_values(profile or []),
        recent_hours=168,
        open_waits=open_waits,
    )


def test_fewer_answers_than_the_minimum_give_no_number() -> None:
    estimate = eta.estimate(history([60.0] * (eta.MIN_ANSWERED - 1), [60.0] * 10))

    assert estimate.basis is eta.Basis.NOT_ENOUGH_HISTORY and not estimate.has_estimate
    assert (estimate.expected_seconds, estimate.low_seconds, estimate.high_seconds) == (None, None, None)
    assert estimate.recent_answered == eta.MIN_ANSWERED - 1


def test_the_minimum_of_answers_gives_an_estimate() -> None:
    estimate = eta.estimate(history([60.0, 120.0, 180.0, 240.0, 300.0]))

    assert estimate.basis is eta.Basis.RECENT
    assert estimate.expected_seconds == pytest.approx(180.0, rel=0.01)


def test_the_expected_wait_is_the_median_at_this_hour_of_the_week() -> None:
    recent = [float(seconds) for seconds in range(100, 10_100, 100)]
    at_this_hour = [900.0, 1_000.0, 1_100.0, 1_200.0, 5_000.0, 7_000.0]

    estimate = eta.estimate(history(recent, at_this_hour))

    assert estimate.basis is eta.Basis.HOUR_OF_WEEK
    assert estimate.expected_seconds == pytest.approx(nearest_rank(at_this_hour, 0.5), rel=0.01)
    assert estimate.profile_answered == 6 and estimate.recent_answered == 100


def test_too_few_answers_at_this_hour_fall_back_to_the_trailing_week() -> None:
    recent = [float(seconds) for seconds in range(100, 2_100, 100)]

    estimate = eta.estimate(history(recent, [5.0] * (eta.MIN_ANSWERED - 1)))

    assert estimate.basis is eta.Basis.RECENT
    assert estimate.expected_seconds == pytest.approx(nearest_rank(recent, 0.5), rel=0.01)


def test_the_interval_runs_from_the_5th_to_the_95th_percentile_of_the_trailing_week() -> None:
    rng = random.Random(7)
    recent = [rng.lognormvariate(6.0, 1.2) for _ in range(500)]

    estimate = eta.estimate(history(recent))

    assert estimate.low_seconds == pytest.approx(nearest_rank(recent, 0.05), rel=0.01)
    assert estimate.high_seconds == pytest.approx(nearest_rank(recent, 0.95), rel=0.01)


def test_an_expected_wait_outside_the_weeks_range_widens_the_interval_to_hold_it() -> None:
    recent = [float(seconds) for seconds in range(60, 660, 60)]
    slow_hour = [7_200.0] * 5

    estimate = eta.estimate(history(recent, slow_hour))

    assert estimate.expected_seconds == pytest.approx(7_200.0, rel=0.01)
    assert estimate.high_seconds == estimate.expected_seconds


@settings(max_examples=60, deadline=None)
@given(
    recent=st.lists(st.floats(min_value=0, max_value=1e7), min_size=eta.MIN_ANSWERED, max_size=60),
    profile=st.lists(st.floats(min_value=0, max_value=1e7), max_size=20),
)
def test_the_expected_wait_always_lies_inside_its_interval(recent: list[float], profile: list[float]) -> None:
    estimate = eta.estimate(history(recent, profile))

    assert estimate.low_seconds is not None and estimate.high_seconds is not None
    assert estimate.expected_seconds is not None
    assert 0 <= estimate.low_seconds <= estimate.expected_seconds <= estimate.high_seconds


def test_the_backlog_is_reported_with_its_clearance_time_but_does_not_move_the_estimate() -> None:
    recent = [float(seconds) for seconds in range(100, 1_500, 100)]  # 14 answers in 168 hours

    quiet, swamped = eta.estimate(history(recent, open_waits=0)), eta.estimate(history(recent, open_waits=40))

    assert swamped.expected_seconds == quiet.expected_seconds
    assert (swamped.low_seconds, swamped.high_seconds) == (quiet.low_seconds, quiet.high_seconds)
    assert swamped.answers_per_hour == pytest.approx(14 / 168)
    assert swamped.clearance_seconds == pytest.approx(40 / (14 / 168) * 3600)
    assert swamped.open_waits == 40


def test_no_clearance_time_without_a_count_of_open_waits_or_without_answers() -> None:
    assert eta.estimate(history([60.0] * 10, open_waits=None)).clearance_seconds is None
    assert eta.estimate(history([], open_waits=3)).clearance_seconds is None


def test_a_half_applied_delta_is_no_history() -> None:
    delta = LatencyHistogram.from_values([60.0] * 10)
    delta.merge(LatencyHistogram.from_values([30.0]).negated())

    estimate = eta.estimate(eta.WaitHistory(recent=delta, profile=delta, recent_hours=168))

    assert estimate.basis is eta.Basis.NOT_ENOUGH_HISTORY and estimate.recent_answered == 0


def test_the_trailing_week_is_read_as_whole_hours_up_to_now() -> None:
    window = eta.recent_window(NOW)

    assert window.start == datetime(2026, 11, 18, 14, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert window.hours == 7 * 24 + 1


def test_the_hour_of_the_week_is_this_one_and_either_side_this_week_and_in_the_four_before() -> None:
    windows = eta.profile_windows(NOW)

    assert len(windows) == eta.PROFILE_WEEKS + 1
    for weeks, window in enumerate(windows):
        this_hour_then = datetime(2026, 11, 25, 14, 0, tzinfo=UTC) - timedelta(weeks=weeks)
        assert window.start == this_hour_then - timedelta(hours=1)
        assert window.end == this_hour_then + timedelta(hours=2)


def bucket(hour: str, latencies: list[float], kind: WaitKind = WaitKind.FIRST) -> tuple[BucketKey, BucketTotals]:
    totals = BucketTotals()
    for latency in latencies:
        totals.counters.update({"waits": 1, "responded": 1})
        totals.calendar.add(latency)
        totals.business.add(latency / 2)
    return BucketKey("acme", hour, kind, "x", Priority.NORMAL), totals


def test_history_takes_first_responses_on_the_calendar_clock_only() -> None:
    recent = [bucket("2026-11-25T13", [60.0, 120.0]), bucket("2026-11-25T13", [9_999.0], WaitKind.NEXT)]

    built = eta.history_from(recent, [bucket("2026-11-18T14", [30.0])], recent_hours=169, open_waits=2)

    assert built.recent.count == 2 and built.recent.max == pytest.approx(120.0, rel=0.01)
    assert built.profile.count == 1 and built.recent_hours == 169 and built.open_waits == 2


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_order_buckets_are_read_in_does_not_matter(rng: random.Random) -> None:
    buckets = [
        bucket(f"2026-11-2{day}T{hour:02d}", [float(day * 100 + hour)] * hour) for day in (2, 3) for hour in (1, 7)
    ]
    shuffled = list(buckets)
    rng.shuffle(shuffled)

    def estimate_of(read: list[tuple[BucketKey, BucketTotals]]) -> eta.WaitEstimate:
        at_seven = [item for item in read if item[0].period.endswith("T07")]
        return eta.estimate(eta.history_from(read, at_seven, recent_hours=169, open_waits=None))

    assert estimate_of(shuffled) == estimate_of(buckets)
    assert estimate_of(shuffled).recent_answered == estimate_of(buckets).recent_answered == 2 * (1 + 7)
