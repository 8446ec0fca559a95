"""BucketStore: what a guarded write leaves in the table, reading a period's guards back, reading pages as sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from replyclock.dal.aggregates import (
    GuardedWrite,
    bucket_item_key,
    bucket_key_from_item,
    guard_name,
    guard_value,
    same_sums,
    stored_bucket,
    totals_from_item,
)
from replyclock.dal.table import StoreError, get_client, get_table, query_as_sent, query_items
from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Brand, Priority, WaitKind
from tests.support.builders import T0, customer
from tests.support.expectations import rolled_up_snapshot, stored_buckets, stored_snapshot
from tests.support.pipeline import Pipeline

KEY = BucketKey("acme", "2026-11-18T10", WaitKind.FIRST, "x", Priority.NORMAL)


def some_totals() -> BucketTotals:
    totals = BucketTotals(
        calendar=LatencyHistogram.from_values([0.0, 12.5, 600.0, 86_400.0]),
        business=LatencyHistogram.from_values([0.0, 5.0, 240.0, 30_000.0]),
    )
    totals.counters.update({"waits": 5, "responded": 4, "met": 3, "breached": 1, "open": 1})
    return totals


def test_stored_bucket_is_what_a_guarded_write_leaves_in_a_new_bucket(pipeline: Pipeline) -> None:
    guards = {guard_name("CONV#x#c1|STATE#acme"): guard_value(3, T0)}
    pipeline.buckets.apply(GuardedWrite(KEY, some_totals(), guards_read={}, guards_written=guards))

    item = boto3.resource("dynamodb").Table(pipeline.table_name).get_item(Key=bucket_item_key(KEY))["Item"]

    assert item == stored_bucket(KEY, some_totals(), guards)
    assert totals_from_item(item).counters == some_totals().counters


def test_guards_of_period_reads_every_bucket_of_that_hour_and_no_other(pipeline: Pipeline) -> None:
    other_channel = BucketKey("acme", "2026-11-18T10", WaitKind.FIRST, "reddit", Priority.HIGH)
    next_hour = BucketKey("acme", "2026-11-18T11", WaitKind.FIRST, "x", Priority.NORMAL)
    for number, key in enumerate((KEY, other_channel, next_hour, KEY.day())):
        guards = {guard_name(f"state-{number}"): guard_value(1, T0 + timedelta(minutes=number))}
        pipeline.buckets.apply(GuardedWrite(key, some_totals(), guards_read={}, guards_written=guards))

    found = pipeline.buckets.guards_of_period("acme", Granularity.HOUR, "2026-11-18T10")

    assert set(found) == {KEY, other_channel}
    assert found[KEY] == {guard_name("state-0"): guard_value(1, T0)}


def test_buckets_read_as_sent_hold_the_sums_boto3_reads(pipeline: Pipeline) -> None:
    # Given buckets with counters, bins, sums, zero counts and guards
    table = boto3.resource("dynamodb").Table(pipeline.table_name)
    hours = [f"2026-11-{18 + hour // 24}T{hour % 24:02d}" for hour in range(24)]
    keys = [BucketKey("acme", hour, WaitKind.FIRST, "x", Priority.NORMAL) for hour in hours]
    with table.batch_writer() as writer:
        for key in keys:
            guards = {guard_name(f"{key.period}-{n}"): guard_value(n, T0) for n in range(400)}
            writer.put_item(Item=stored_bucket(key, some_totals(), guards))
    condition = Key("pk").eq("AGG#acme") & Key("sk").begins_with("H#")
    parsed = list(query_items(get_table(pipeline.table_name), KeyConditionExpression=condition))

    # When the store reads them as DynamoDB sends them
    as_sent = pipeline.buckets.query("acme", "0000", "9999")

    # Then every bucket holds what boto3's own reading of the item says
    assert [key for key, _ in as_sent] == keys
    assert len(parsed) == 24
    for item, (key, totals) in zip(parsed, as_sent, strict=True):
        assert bucket_key_from_item(item) == key
        assert same_sums(totals, totals_from_item(item)) and same_sums(totals, some_totals())


def test_both_readers_follow_the_pages_of_a_query_past_one_megabyte(pipeline: Pipeline) -> None:
    # Given 40 items of 60 KB under one partition: DynamoDB sends them in pages of at most 1 MB
    table = boto3.resource("dynamodb").Table(pipeline.table_name)
    sort_keys = [f"PAGE#{number:03d}" for number in range(40)]
    with table.batch_writer() as writer:
        for sort_key in sort_keys:
            writer.put_item(Item={"pk": "PAGING", "sk": sort_key, "padding": "p" * 60_000})
    pages = {"boto3": 0, "as sent": 0}

    def counter(reader: str) -> Callable[..., None]:
        return lambda **_: pages.update({reader: pages[reader] + 1})

    get_table(pipeline.table_name).meta.client.meta.events.register("before-call.dynamodb.Query", counter("boto3"))
    get_client().meta.events.register("before-call.dynamodb.Query", counter("as sent"))

    # When each reader reads the partition
    boto3_read = list(query_items(get_table(pipeline.table_name), KeyConditionExpression=Key("pk").eq("PAGING")))
    as_sent = list(query_as_sent(get_table(pipeline.table_name), "pk = :pk", {":pk": {"S": "PAGING"}}))

    # Then each returns every item once, in order, having asked for more than one page
    assert [item["sk"] for item in boto3_read] == sort_keys
    assert [item["sk"]["S"] for item in as_sent] == sort_keys
    assert pages == {"boto3": 3, "as sent": 3}  # 2.4 MB in pages of at most 1 MB


def test_an_error_read_as_sent_is_still_a_store_error(pipeline: Pipeline) -> None:
    with pytest.raises(StoreError, match="ResourceNotFoundException"):
        list(query_as_sent(get_table("no-such-table"), "pk = :pk", {":pk": {"S": "AGG#acme"}}))


def test_a_day_that_missed_a_write_of_its_hour_is_rebuilt_from_its_hours_by_the_next_batch(pipeline: Pipeline) -> None:
    # Given an hourly bucket written without its day following (as when the day's write failed for good)
    pipeline.add_brands([Brand(id="acme", name="Acme")])
    pipeline.buckets.apply(GuardedWrite(KEY, some_totals(), guards_read={}, guards_written={guard_name("x"): "1|1"}))
    assert stored_snapshot(pipeline.buckets, ["acme"], Granularity.DAY) == {}

    # When a batch adds to the same hour
    pipeline.write([customer("1", 5)])
    pipeline.run()

    # Then the day holds both: it was rebuilt from its hours, not added to
    assert stored_snapshot(pipeline.buckets, ["acme"], Granularity.DAY) == rolled_up_snapshot(
        stored_buckets(pipeline.buckets, ["acme"])
    )
    day = get_table(pipeline.table_name).get_item(Key=bucket_item_key(KEY.day()))["Item"]
    assert day["n_waits"] == 6 and day["h_10"] == 2


def test_a_day_follows_its_hours_by_addition_when_it_holds_their_revisions(pipeline: Pipeline) -> None:
    pipeline.add_brands([Brand(id="acme", name="Acme")])
    pipeline.write([customer("1", 5)])
    pipeline.run()
    pipeline.write([customer("2", 6, conversation="c2", author="bob")])
    pipeline.run()

    day = get_table(pipeline.table_name).get_item(Key=bucket_item_key(KEY.day()))["Item"]
    assert (day["n_waits"], day["h_10"], day["rev"]) == (2, 2, 2)
