"""Faults injected into the measuring path: each ends with nothing lost and nothing counted twice."""

from __future__ import annotations

import dataclasses
from typing import Any

from devtools.localstack.streams import EventSourceMapping
from tests.support.expectations import (
    brand_directory,
    expected_waits,
    stored_waits,
)
from tests.support.faults import FaultInjector, Faults
from tests.support.pipeline import Pipeline
from tests.support.scenarios import BRANDS, assert_exact, conversations


def retry_until_done(pipeline: Pipeline) -> None:
    """Like an event-source mapping with unlimited retries (the default when MaximumRetryAttempts is unset)."""
    for consumer in pipeline.consumers.values():
        consumer.mapping.mapping = dataclasses.replace(consumer.mapping.mapping, maximum_retry_attempts=-1)


def test_throttled_reads_and_writes_are_retried_until_every_count_is_exact(pipeline: Pipeline, inject: Faults) -> None:
    # Given a throttle on every third read and write of measure and aggregate
    pipeline.add_brands(BRANDS)
    posts = conversations(30)
    pipeline.write(posts)
    retry_until_done(pipeline)
    injector = inject(
        FaultInjector(
            {"Query", "PutItem", "UpdateItem", "BatchGetItem", "GetItem"}, 3, "ProvisionedThroughputExceededException"
        )
    )

    # When the stream is consumed
    pipeline.run()
    inject.stop()

    # Then faults really happened, and the result is exact
    assert injector.injected > 10
    assert_exact(pipeline, posts)


def test_lost_condition_races_on_buckets_are_re_read_and_never_double_count(pipeline: Pipeline, inject: Faults) -> None:
    pipeline.add_brands(BRANDS)
    posts = conversations(20)
    pipeline.write(posts)
    retry_until_done(pipeline)
    injector = inject(FaultInjector({"UpdateItem"}, 2, "ConditionalCheckFailedException"))

    pipeline.run()
    inject.stop()

    assert injector.injected > 5
    assert_exact(pipeline, posts)


def test_a_timeout_in_the_middle_of_a_stream_batch_loses_and_doubles_nothing(
    pipeline: Pipeline, inject: Faults
) -> None:
    # Given an invocation that dies (like a Lambda timeout) after a few writes
    pipeline.add_brands(BRANDS)
    posts = conversations(25)
    pipeline.write(posts)
    retry_until_done(pipeline)
    injector = inject(FaultInjector({"PutItem", "UpdateItem"}, 7, TimeoutError))

    # When the event-source mapping retries and bisects the failed batches
    pipeline.run()
    inject.stop()

    assert injector.injected > 3
    assert_exact(pipeline, posts)


def test_the_same_stream_delivered_twice_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.add_brands(BRANDS)
    posts = conversations(15)
    pipeline.write(posts)
    records = pipeline.stream_records()
    pipeline.run()

    # When every record, post inserts and state changes alike, is delivered once more
    for consumer in pipeline.consumers.values():
        consumer.mapping.deliver("shard-replayed", records + pipeline.stream_records())

    assert_exact(pipeline, posts)


def test_a_poison_record_is_parked_after_its_retries_while_every_other_record_commits(pipeline: Pipeline) -> None:
    # Given a measure handler that cannot process one conversation's records
    pipeline.add_brands(BRANDS)
    posts = conversations(12)
    pipeline.write(posts)
    measure = pipeline.consumers["MeasureFunction"].mapping
    real_handler = measure.handler
    assert real_handler is not None

    def handler_with_a_poison(event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        poison = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].endswith("#c4")]
        response = real_handler({"Records": [r for r in records if r not in poison]}, context)
        failures = response["batchItemFailures"] + [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in poison]
        return {"batchItemFailures": failures}

    pipeline.consumers["MeasureFunction"].mapping = EventSourceMapping(
        measure.mapping, measure.send_to_failure_queue, handler=handler_with_a_poison
    )

    # When the stream is consumed
    pipeline.run()

    # Then the poison conversation's records are parked, and everything else is exact
    parked = pipeline.parked("MeasureFailureQueue")
    assert parked and all(p["requestContext"]["condition"] == "RetryAttemptsExhausted" for p in parked)
    healthy = [post for post in posts if post.conversation_id != "c4"]
    waits = expected_waits(healthy, brand_directory(BRANDS))
    stored = stored_waits(pipeline.conversations, {(post.channel, post.conversation_id) for post in healthy})
    assert stored == waits
    poisoned = pipeline.conversations.load("x", "c4")
    assert (poisoned.lanes, poisoned.archives, poisoned.head) == ({}, {}, None)
