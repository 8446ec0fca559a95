"""GET /metrics/*: through the resolver with events/ files, on buckets the real measuring path wrote."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.dal.aggregates import BucketStore, GuardedWrite, guard_name, guard_value
from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, RollupKey
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Brand, Priority, WaitKind
from tests.support.api import (
    API_NOW,
    METRICS_EVENTS,
    ApiClient,
    answer_as_planned,
    answer_from_hours_alone,
    metrics_query,
)
from tests.support.builders import T0, brand, customer
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
AROUND_T0 = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}


def acme_query(**extra: str) -> dict[str, str]:
    return {"brand": "acme", **AROUND_T0, **extra}


def measure_three_conversations(pipeline: Pipeline) -> None:
    """c1 answered in 30 min, then a next wait answered in 10; c2 unanswered; c3 answered in 5 h (normal: 4 h)."""
    pipeline.add_brands([ACME])
    pipeline.write(
        [
            customer("1", 0, conversation="c1"),
            brand("2", 30, reply_to="1", conversation="c1"),
            customer("3", 40, "thanks, but still broken", reply_to="2", conversation="c1"),
            brand("4", 50, reply_to="3", conversation="c1"),
            customer("5", 10, conversation="c2", author="bob"),
            customer("6", 20, conversation="c3", author="carol"),
            brand("7", 320, reply_to="6", conversation="c3"),
        ]
    )
    pipeline.run()


def answered(key: BucketKey, latencies: list[float]) -> tuple[BucketKey, BucketTotals]:
    totals = BucketTotals()
    totals.counters = Counter({"waits": len(latencies), "responded": len(latencies), "met": len(latencies)})
    totals.calendar = LatencyHistogram.from_values(latencies)
    totals.business = LatencyHistogram.from_values(latencies)
    return key, totals


def store_answered(pipeline: Pipeline, key: BucketKey, latencies: list[float]) -> None:
    """Store an hourly bucket of answered, met waits with BucketStore.apply, a few latencies per call, and bring
    the buckets that follow it up to date, as the aggregate step leaves them.

    (moto parses an update expression recursively, one level per term: hundreds of bins in one update overflow it.)
    """
    for start in range(0, len(latencies), 8):
        guard = {guard_name(f"test|{key}|{start}"): guard_value(1, API_NOW)}
        part = answered(key, latencies[start : start + 8])[1]
        pipeline.buckets.apply(GuardedWrite(key, part, guards_read={}, guards_written=guard))
    for follower in (key.day(), RollupKey.of(key), RollupKey.of(key).day()):
        pipeline.buckets.rebuild(follower)


def test_summary_event_carries_the_contract_fields(api: ApiClient, pipeline: Pipeline) -> None:
    # Given three measured conversations
    measure_three_conversations(pipeline)

    # When the summary is asked for with the event file's parameters over their window
    response = api.call("api_metrics_summary.json", query=acme_query(clock="calendar"))

    # Then it counts first and next responses apart, with their SLA outcomes
    assert response.status == 200, response.body
    body = response.json()
    assert (body["mentions"], body["responded"]) == (3, 2)
    assert body["response_rate"] == pytest.approx(2 / 3)
    assert body["sla"] == {"met": 1, "breached": 1, "pending": 1, "at_risk": 0, "compliance": 0.5}
    first = body["first_response_seconds"]
    assert set(first) == {"count", "mean", "p50", "p90", "p95", "p99", "max"}
    assert first["p50"] == pytest.approx(1800, rel=0.01)
    assert first["max"] == pytest.approx(18000, rel=0.01)
    assert first["mean"] == pytest.approx((1800 + 18000) / 2)
    assert (body["next_waits"], body["next_responded"]) == (1, 1)
    assert body["next_response_seconds"]["p50"] == pytest.approx(600, rel=0.01)
    assert body["next_sla"]["met"] == 1
    assert body["clock"] == "calendar" and body["brand"] == "acme"
    assert body["window"] == {"from": "2026-11-18T09:00:00Z", "to": "2026-11-19T10:00:00Z", "hours": 25}


def test_summary_defaults_to_the_last_seven_days_in_whole_hours(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])

    body = api.call("api_metrics_summary.json", query={"brand": "acme"}).json()

    assert body["window"]["from"] == (API_NOW - timedelta(days=7)).strftime("%Y-%m-%dT%H:00:00Z")
    assert body["window"]["to"] == API_NOW.strftime("%Y-%m-%dT%H:00:00Z")
    assert body["window"]["hours"] == 7 * 24


def test_summary_filters_by_channel_and_priority(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    hour = T0.strftime("%Y-%m-%dT%H")
    store_answered(pipeline, BucketKey("acme", hour, WaitKind.FIRST, "x", Priority.URGENT), [60.0])
    store_answered(pipeline, BucketKey("acme", hour, WaitKind.FIRST, "x", Priority.LOW), [120.0, 130.0])
    store_answered(pipeline, BucketKey("acme", hour, WaitKind.FIRST, "reddit", Priority.URGENT), [600.0] * 4)

    def mentions(**filters: str) -> int:
        response = api.call("api_metrics_summary.json", query=acme_query(**filters))
        assert response.status == 200, response.body
        return int(response.json()["mentions"])

    assert mentions() == 7
    assert mentions(channel="x") == 3
    assert mentions(priority="urgent") == 5
    assert mentions(channel="reddit", priority="low") == 0


def test_percentiles_from_stored_buckets_are_within_one_percent_of_exact(api: ApiClient, pipeline: Pipeline) -> None:
    # Given 2,000+ latencies spread over 40 stored buckets (hours x channels x priorities)
    pipeline.add_brands([ACME])
    generator = random.Random(42)
    values: list[float] = []
    for hour in range(10):
        for channel, priority in (
            ("x", Priority.HIGH),
            ("x", Priority.NORMAL),
            ("bluesky", Priority.LOW),
            ("reddit", Priority.URGENT),
        ):
            latencies = [round(generator.lognormvariate(7.5, 1.2) + 5, 3) for _ in range(generator.randint(20, 90))]
            values.extend(latencies)
            key_hour = (T0 + timedelta(hours=hour)).strftime("%Y-%m-%dT%H")
            store_answered(pipeline, BucketKey("acme", key_hour, WaitKind.FIRST, channel, priority), latencies)

    # When the summary merges them
    stats = api.call("api_metrics_summary.json", query=acme_query()).json()["first_response_seconds"]

    # Then each percentile is within 1% of the exact nearest-rank one over all the values
    ordered = sorted(values)
    assert stats["count"] == len(values)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]
        assert stats[name] == pytest.approx(exact, rel=0.01), name
    assert stats["max"] == pytest.approx(ordered[-1], rel=0.01)
    assert stats["mean"] == pytest.approx(sum(values) / len(values), rel=1e-6)


def test_timeseries_event_has_one_point_per_day_summing_to_the_summary(api: ApiClient, pipeline: Pipeline) -> None:
    measure_three_conversations(pipeline)
    window = {"from": "2026-11-16T00:00:00Z", "to": "2026-11-21T00:00:00Z"}

    response = api.call("api_metrics_timeseries.json", query={"brand": "acme", "interval": "day", **window})
    summary = api.call("api_metrics_summary.json", query={"brand": "acme", **window}).json()

    assert response.status == 200, response.body
    points = response.json()["points"]
    assert [point["from"][:10] for point in points] == [
        "2026-11-16",
        "2026-11-17",
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
    ]
    assert [point["mentions"] for point in points] == [0, 0, 3, 0, 0]
    assert sum(point["sla"]["breached"] for point in points) == summary["sla"]["breached"]


def test_hourly_timeseries_of_a_long_window_is_refused_on_interval(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])

    response = api.call(
        "api_metrics_timeseries.json",
        query={"brand": "acme", "interval": "hour", "from": "2026-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
    )

    assert response.status == 400
    assert response.json()["field"] == "interval"


def test_distribution_event_counts_first_responses_per_band(api: ApiClient, pipeline: Pipeline) -> None:
    measure_three_conversations(pipeline)

    response = api.call("api_metrics_distribution.json", query=acme_query(channel="x"))

    assert response.status == 200, response.body
    body = response.json()
    assert {band["label"]: band["count"] for band in body["bands"]} == {
        "15m": 0,
        "1h": 1,
        "4h": 0,
        "24h": 1,
        "over_24h": 0,
    }
    assert (body["responded"], body["unanswered"]) == (2, 1)


def test_unknown_brand_is_404_naming_the_brand(api: ApiClient, pipeline: Pipeline) -> None:
    for event in ("api_metrics_summary.json", "api_metrics_timeseries.json", "api_metrics_distribution.json"):
        response = api.call(event, query={"brand": "nobody"})

        assert response.status == 404
        assert response.json() == {"message": "unknown brand 'nobody'", "field": "brand"}


def test_brand_seen_in_data_but_not_configured_is_known(api: ApiClient, pipeline: Pipeline) -> None:
    # Given a brand nobody configured, which answered a mention (measure records its waits anyway)
    pipeline.write(
        [
            customer("1", 0, "@globex hello", conversation="g1"),
            brand("2", 5, brand_id="globex", reply_to="1", conversation="g1"),
        ]
    )
    pipeline.run()

    response = api.call("api_metrics_summary.json", query={"brand": "globex", **AROUND_T0})

    assert response.status == 200, response.body
    assert response.json()["mentions"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "brand"),
        ({"brand": "-not-a-brand-"}, "brand"),
        ({"brand": "acme", "channel": "Not A Channel"}, "channel"),
        ({"brand": "acme", "priority": "whenever"}, "priority"),
        ({"brand": "acme", "clock": "sundial"}, "clock"),
        ({"brand": "acme", "from": "yesterday"}, "from"),
        ({"brand": "acme", "from": "2026-11-01T00:00:00"}, "from"),
        ({"brand": "acme", "from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from"),
        ({"brand": "acme", "from": "1900-01-01T00:00:00Z", "to": "1900-01-02T00:00:00Z"}, "from"),
    ],
)
def test_malformed_parameters_are_400_naming_the_field(
    api: ApiClient, pipeline: Pipeline, query: dict[str, str], field: str
) -> None:
    pipeline.add_brands([ACME])

    response = api.call("api_metrics_summary.json", query=query)

    assert response.status == 400, response.body
    body = response.json()
    assert set(body) == {"message", "field"} and body["field"] == field and body["message"]


def test_window_longer_than_the_configured_maximum_is_400(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    api.with_settings(max_window_days=30)

    too_long = api.call("api_metrics_summary.json", query={"brand": "acme", "from": "2026-10-01T00:00:00Z"})
    fits = api.call("api_metrics_summary.json", query={"brand": "acme", "from": "2026-10-27T00:00:00Z"})

    assert too_long.status == 400 and "at most 30 days" in too_long.json()["message"]
    assert fits.status == 200


def test_the_answer_does_not_depend_on_how_long_reading_takes(
    api: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given buckets over a year, and the summary of that year on an idle machine
    pipeline.add_brands([ACME])
    for day in range(0, 365, 7):
        hour = (T0 - timedelta(days=day)).strftime("%Y-%m-%dT%H")
        key = BucketKey("acme", hour, WaitKind.FIRST, "x", Priority.NORMAL)
        store_answered(pipeline, key, [60.0 + day])
    year = {"brand": "acme", "from": (T0 - timedelta(days=365)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}
    idle = api.call("api_metrics_summary.json", query=year)

    # When every read is slow and the clock runs a minute per look (a machine busy with other work)
    slow_clock = iter(range(0, 10**9, 60))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(slow_clock)))
    monkeypatch.setattr(time, "time", lambda: 1.8e9 + next(slow_clock))
    query_hours, query_days, query_brand_wide = BucketStore.query, BucketStore.query_days, BucketStore.query_brand_wide

    def slowly(read):  # type: ignore[no-untyped-def]
        def read_slowly(*args, **kwargs):  # type: ignore[no-untyped-def]
            time.sleep(0.05)
            return read(*args, **kwargs)

        return read_slowly

    monkeypatch.setattr(BucketStore, "query", slowly(query_hours))
    monkeypatch.setattr(BucketStore, "query_days", slowly(query_days))
    monkeypatch.setattr(BucketStore, "query_brand_wide", slowly(query_brand_wide))
    busy = api.call("api_metrics_summary.json", query=year)

    # Then the same year is answered, with the same figures
    assert idle.status == busy.status == 200, busy.body
    assert busy.json() == idle.json()
    assert idle.json()["mentions"] == 53


def test_daily_buckets_answer_exactly_as_hourly_buckets_alone_for_any_window(
    api: ApiClient, pipeline: Pipeline
) -> None:
    # Given conversations over four days on two channels, measured and aggregated by the real handlers
    pipeline.add_brands([ACME])
    generator = random.Random(5)
    posts = []
    for n in range(40):
        channel, asked = generator.choice(["x", "reddit"]), generator.randint(0, 4 * 24 * 60)
        posts.append(customer(f"{n}q", asked, conversation=f"d{n}", channel=channel))
        if generator.random() < 0.8:
            answered = asked + generator.randint(1, 600)
            posts.append(brand(f"{n}a", answered, reply_to=f"{n}q", conversation=f"d{n}", channel=channel))
    pipeline.write(posts)
    pipeline.run()
    assert len({key.period for key, _ in pipeline.buckets.query_days("acme", "0000", "9999")}) == 5
    assert all(key.granularity is Granularity.DAY for key, _ in pipeline.buckets.query_days("acme", "0000", "9999"))

    # When any window is asked for, with daily buckets for its whole days and without
    @settings(max_examples=30, deadline=None)
    @given(
        start=st.integers(-12 * 60, 5 * 24 * 60),
        minutes=st.integers(0, 5 * 24 * 60),
        event=st.sampled_from(METRICS_EVENTS),
        channel=st.sampled_from([None, "reddit"]),
    )
    def same_answers(start: int, minutes: int, event: str, channel: str | None) -> None:
        window_start = T0 + timedelta(minutes=start)
        query = metrics_query(event, window_start, window_start + timedelta(minutes=minutes), channel)

        # Then the answers are identical, to the byte
        assert answer_as_planned(api, event, query) == answer_from_hours_alone(api, event, query)

    same_answers()
