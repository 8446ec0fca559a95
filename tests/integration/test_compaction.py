"""Compaction: buckets that stopped changing lose their expired guards, and every count stays exact."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
import time_machine
from botocore.exceptions import ClientError

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal.aggregates import GUARD_PREFIX, bucket_item_key, guard_value
from replyclock.dal.compaction import CompactionCursorStore
from replyclock.dal.table import get_resource
from replyclock.logic.aggregation import BucketKey, Granularity
from replyclock.models.domain import Brand, Priority, WaitKind
from replyclock.services.compacting import FIRST_PASS_AGE, MAX_HOURS_PER_RUN, SECOND_PASS_AGE, compact_buckets
from tests.support.builders import T0, brand, customer
from tests.support.expectations import (
    brand_directory,
    expected_snapshot,
    expected_waits,
    rolled_up_snapshot,
    stored_buckets,
    stored_snapshot,
)
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
# Compaction visits T0's hour first when it runs at this time.
T0_DUE = T0 + FIRST_PASS_AGE + timedelta(minutes=5)


def bucket_item(pipeline: Pipeline, key: BucketKey) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(pipeline.table_name).get_item(Key=bucket_item_key(key))["Item"]


def guards(item: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in item.items() if name.startswith(GUARD_PREFIX)}


def measured_at(pipeline: Pipeline, moment: datetime, posts: list[Any]) -> None:
    with time_machine.travel(moment, tick=False):
        pipeline.write(posts)
        pipeline.run()


def compact(pipeline: Pipeline, now: datetime, brand_ids: tuple[str, ...] = ("acme",)) -> Any:
    return compact_buckets(pipeline.buckets, CompactionCursorStore(pipeline.table_name), brand_ids, now)


def first_bucket(granularity: Granularity = Granularity.HOUR, kind: WaitKind = WaitKind.FIRST) -> BucketKey:
    key = BucketKey("acme", Granularity.HOUR.label(T0), kind, "x", Priority.NORMAL)
    return key if granularity is Granularity.HOUR else key.day()


def test_an_hour_past_retention_loses_its_guards_and_keeps_its_counts(pipeline: Pipeline) -> None:
    # Given two answered conversations measured when they happened
    pipeline.add_brands([ACME])
    posts = [customer("1", 0), brand("2", 5, reply_to="1")]
    posts += [customer("3", 10, conversation="c2"), brand("4", 30, reply_to="3", conversation="c2")]
    measured_at(pipeline, T0 + timedelta(minutes=31), posts)
    before = stored_snapshot(pipeline.buckets, ["acme"])
    assert len(guards(bucket_item(pipeline, first_bucket()))) == 2

    # When compaction runs once their hour is past retention
    outcome = compact(pipeline, T0_DUE)

    # Then the hourly bucket holds counters and bins only, and the same counts as before
    assert outcome.hours == [Granularity.HOUR.label(T0)]
    assert guards(bucket_item(pipeline, first_bucket())) == {}
    assert outcome.guards_removed == 2
    assert stored_snapshot(pipeline.buckets, ["acme"]) == before


def test_guards_younger_than_retention_are_kept(pipeline: Pipeline) -> None:
    # Given a conversation aggregated late: its hour's bucket was written one day after the hour
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(days=1), [customer("1", 0), brand("2", 5, reply_to="1")])

    # When compaction visits the hour 50 hours after it
    outcome = compact(pipeline, T0_DUE)

    # Then the guard, written 26 hours ago, is still there: its record could still be redelivered
    assert outcome.hours == [Granularity.HOUR.label(T0)]
    assert len(guards(bucket_item(pipeline, first_bucket()))) == 1
    assert outcome.guards_removed == 0


def test_a_daily_bucket_keeps_one_guard_per_hour_not_per_conversation(pipeline: Pipeline) -> None:
    # Given forty conversations over two hours of one day
    pipeline.add_brands([ACME])
    posts = [customer(f"{n}", n * 3, conversation=f"c{n}", author=f"u{n}") for n in range(40)]
    measured_at(pipeline, T0 + timedelta(hours=3), posts)

    # Then its daily bucket holds no per-conversation guard, one revision per hour, and the sum of its hours
    day_key = BucketKey("acme", Granularity.DAY.label(T0), WaitKind.FIRST, "x", Priority.NORMAL, Granularity.DAY)
    item = bucket_item(pipeline, day_key)
    assert guards(item) == {}
    assert sorted(name for name in item if name.startswith("h_")) == ["h_10", "h_11"]
    assert stored_snapshot(pipeline.buckets, ["acme"], Granularity.DAY) == rolled_up_snapshot(
        stored_buckets(pipeline.buckets, ["acme"])
    )


def test_a_week_later_pass_prunes_guards_written_by_a_late_answer(pipeline: Pipeline) -> None:
    # Given a mention answered three days late, after the first pass over its hour
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(minutes=1), [customer("1", 0)])
    compact(pipeline, T0_DUE)
    measured_at(pipeline, T0 + timedelta(days=3), [brand("2", 3 * 24 * 60, reply_to="1")])
    assert len(guards(bucket_item(pipeline, first_bucket()))) == 1

    # When the second pass reaches that hour, with the cursor moved along hour by hour
    cursor = CompactionCursorStore(pipeline.table_name)
    second_pass = T0 + SECOND_PASS_AGE + timedelta(minutes=5)
    cursor.advance(
        Granularity.HOUR.label(T0), Granularity.HOUR.label(second_pass - FIRST_PASS_AGE - timedelta(hours=1)), T0
    )
    compact(pipeline, second_pass)

    # Then the late answer's guard is gone too, and the wait is counted once, answered
    assert guards(bucket_item(pipeline, first_bucket())) == {}
    assert counted_once(pipeline)


def test_a_change_after_compaction_is_counted_once_even_when_redelivered(pipeline: Pipeline) -> None:
    # Given an open mention whose bucket was compacted
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(minutes=1), [customer("1", 0)])
    compact(pipeline, T0_DUE)

    # When its answer arrives days later and the aggregate step receives that state change twice
    measured_at(pipeline, T0_DUE, [brand("2", 60 * 50, reply_to="1")])
    last_change = pipeline.state_changes()[-1]
    aggregate = pipeline.consumers["AggregateFunction"].mapping.handler
    with time_machine.travel(T0_DUE + timedelta(minutes=1), tick=False):
        assert aggregate({"Records": [last_change]}, FakeLambdaContext()) == {"batchItemFailures": []}

    # Then the answer is counted exactly once
    assert counted_once(pipeline)


def test_a_guard_that_moved_since_it_was_read_is_not_removed(pipeline: Pipeline) -> None:
    # Given a bucket whose guard compaction read as expired
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(minutes=6), [customer("1", 0), brand("2", 5, reply_to="1")])
    key = first_bucket()
    [(name, stale)] = guards(bucket_item(pipeline, key)).items()

    # When a concurrent aggregate write refreshes it before the removal
    boto3.resource("dynamodb").Table(pipeline.table_name).update_item(
        Key=bucket_item_key(key),
        UpdateExpression="SET #g = :fresh",
        ExpressionAttributeNames={"#g": name},
        ExpressionAttributeValues={":fresh": guard_value(9, T0_DUE)},
    )
    removed = pipeline.buckets.remove_guards(key, {name: stale})

    # Then the fresh guard stays
    assert removed == 0
    assert guards(bucket_item(pipeline, key)) == {name: guard_value(9, T0_DUE)}


def test_the_cursor_catches_up_a_bounded_number_of_hours_per_run(pipeline: Pipeline) -> None:
    cursor = CompactionCursorStore(pipeline.table_name)

    first = compact(pipeline, T0_DUE)
    later = compact(pipeline, T0_DUE + timedelta(hours=10))
    again = compact(pipeline, T0_DUE + timedelta(hours=10))

    assert first.hours == [Granularity.HOUR.label(T0)]
    assert later.hours == [
        Granularity.HOUR.label(T0 + timedelta(hours=hour)) for hour in range(1, MAX_HOURS_PER_RUN + 1)
    ]
    assert len(again.hours) == 10 - MAX_HOURS_PER_RUN
    assert cursor.load() == Granularity.HOUR.label(T0 + timedelta(hours=10))
    assert compact(pipeline, T0_DUE + timedelta(hours=10)).hours == []


def test_a_run_that_loses_the_cursor_to_another_sweep_stops(pipeline: Pipeline) -> None:
    cursor = CompactionCursorStore(pipeline.table_name)
    compact(pipeline, T0_DUE)

    class Overtaken(CompactionCursorStore):
        def load(self) -> str | None:
            found = super().load()
            # Another sweep moves the cursor right after this one read it.
            cursor.advance(found, Granularity.HOUR.label(T0 + timedelta(hours=1)), T0_DUE)
            return found

    outcome = compact_buckets(pipeline.buckets, Overtaken(pipeline.table_name), ["acme"], T0_DUE + timedelta(hours=3))

    assert outcome.hours == []
    assert cursor.load() == Granularity.HOUR.label(T0 + timedelta(hours=1))


def test_a_run_out_of_time_part_way_through_an_hour_leaves_the_cursor_for_the_next_run(pipeline: Pipeline) -> None:
    # Given a compactable hour of two brands, and a run that runs out of time after the first brand
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(minutes=6), [customer("1", 0), brand("2", 5, reply_to="1")])
    checks = iter([False, True])
    cursor = CompactionCursorStore(pipeline.table_name)

    cut_short = compact_buckets(pipeline.buckets, cursor, ["acme", "globex"], T0_DUE, out_of_time=lambda: next(checks))
    finished = compact_buckets(pipeline.buckets, cursor, ["acme", "globex"], T0_DUE)

    # Then the first run compacted acme but did not claim the hour; the second did
    assert (cut_short.hours, cut_short.guards_removed) == ([], 1)
    assert finished.hours == [Granularity.HOUR.label(T0)]
    assert cursor.load() == Granularity.HOUR.label(T0)


def test_the_sweep_handler_compacts_after_sweeping(pipeline: Pipeline) -> None:
    # Given a measured conversation and a sweep schedule firing once its hour is past retention
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(minutes=6), [customer("1", 0), brand("2", 5, reply_to="1")])
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")

    with time_machine.travel(T0_DUE, tick=False):
        response = handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    assert response["compacted_hours"] == 1
    assert guards(bucket_item(pipeline, first_bucket())) == {}


def counted_once(pipeline: Pipeline) -> bool:
    """The stored hourly buckets equal what the pure waits function makes of conversation c1."""
    waits = expected_waits(pipeline.posts.conversation_posts("x", "c1"), brand_directory([ACME]))
    expected = expected_snapshot([wait for found in waits.values() for wait in found])
    return stored_snapshot(pipeline.buckets, ["acme"]) == expected


def test_a_throttled_compaction_does_not_fail_the_sweep_and_the_next_one_catches_up(pipeline: Pipeline) -> None:
    # Given a compactable hour, and DynamoDB throttling every bucket Query of the first sweep
    pipeline.add_brands([ACME])
    measured_at(pipeline, T0 + timedelta(minutes=6), [customer("1", 0), brand("2", 5, reply_to="1")])
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    events = get_resource().meta.client.meta.events
    events.register("before-call.dynamodb.Query", throttle_bucket_queries)

    # When the sweep runs throttled, then again a minute later
    with time_machine.travel(T0_DUE, tick=False):
        throttled = handler(load_event("sweep_schedule.json"), FakeLambdaContext())
    events.unregister("before-call.dynamodb.Query", throttle_bucket_queries)
    with time_machine.travel(T0_DUE + timedelta(minutes=1), tick=False):
        recovered = handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    # Then the first sweep answered without compacting, and the second compacted the hour
    assert throttled["compacted_hours"] == 0
    assert CompactionCursorStore(pipeline.table_name).load() == Granularity.HOUR.label(T0)
    assert recovered["compacted_hours"] == 1
    assert guards(bucket_item(pipeline, first_bucket())) == {}


def throttle_bucket_queries(params: dict[str, Any], **_: Any) -> None:
    if "AGG#" in str(params.get("body")):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}, "Query")
