"""Nothing parked is lost: batches a stream consumer gave up on are re-driven until every count is exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devtools.localstack.lambda_runtime import FakeLambdaContext
from tests.support.faults import FaultInjector, Faults
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline
from tests.support.scenarios import (
    BRANDS,
    THROTTLED,
    assert_exact,
    conversations,
    give_up_after,
    park_deltas_then_move_their_lanes_on,
)

# Each storm runs the pipeline to exhaustion of its retries; the file takes about a minute.
pytestmark = pytest.mark.slow


def queue_length(pipeline: Pipeline, queue: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.queues[queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.parametrize(
    "make_storm",
    [
        pytest.param(lambda: FaultInjector({"UpdateItem"}, 1, THROTTLED, limit=10_000), id="every-bucket-write"),
        # The buckets are written: only the surge slots miss the parked changes.
        pytest.param(
            lambda: FaultInjector({"PutItem"}, 1, THROTTLED, limit=10_000, partition_prefix="SURGE#"),
            id="surge-slot-writes-alone",
        ),
    ],
)
def test_a_throttling_storm_on_aggregate_beyond_its_retries_is_re_driven_to_exact_counts(
    pipeline: Pipeline, inject: Faults, redrive: Any, make_storm: Callable[[], FaultInjector]
) -> None:
    # Given a storm on aggregate's writes that lasts longer than its retries
    pipeline.add_brands(BRANDS)
    posts = conversations(30)
    pipeline.write(posts)
    give_up_after(pipeline, 2)
    storm = inject(make_storm())
    pipeline.run()
    storm.limit = 0
    parked = queue_length(pipeline, "AggregateFailureQueue")
    assert parked > 0 and storm.injected > 0
    with pytest.raises(AssertionError):
        assert_exact(pipeline, posts)

    # When the re-drive function re-applies what aggregate parked
    outcome = redrive(load_event("redrive_aggregate.json") | {"max_batches": 1000}, FakeLambdaContext())

    # Then every batch was applied and left the queue, and every lane, bucket and surge slot is exact
    assert outcome["redriven"] == outcome["batches"] == parked
    assert outcome["still_failing"] == outcome["expired"] == outcome["unreadable"] == 0
    assert queue_length(pipeline, "AggregateFailureQueue") == 0
    assert_exact(pipeline, posts)


def test_a_storm_on_measuring_then_on_the_buckets_is_re_driven_in_that_order_to_exact_counts(
    pipeline: Pipeline, inject: Faults, redrive: Any
) -> None:
    # Given a storm that throttles every lane write and read while measure runs out of retries
    pipeline.add_brands(BRANDS)
    posts = conversations(20, seed=5)
    pipeline.write(posts)
    give_up_after(pipeline, 1)
    storm = inject(FaultInjector({"PutItem", "BatchGetItem", "Query"}, every=1, error=THROTTLED, limit=10_000))
    pipeline.run()
    storm.limit = 0
    assert queue_length(pipeline, "MeasureFailureQueue") > 0

    # When measure's parked batches are re-driven, and then what aggregate made of the new lanes is delivered
    measured = redrive(load_event("redrive_measure.json") | {"max_batches": 1000}, FakeLambdaContext())
    pipeline.run()

    # Then nothing stays parked and everything is exact
    assert measured["redriven"] == measured["batches"] > 0
    assert queue_length(pipeline, "MeasureFailureQueue") == 0
    assert_exact(pipeline, posts)


def test_a_batch_that_still_fails_stays_parked(pipeline: Pipeline, inject: Faults, redrive: Any) -> None:
    # Given aggregate batches parked by a storm that is not over when the re-drive runs
    pipeline.add_brands(BRANDS)
    pipeline.write(conversations(5))
    give_up_after(pipeline, 0)
    inject(FaultInjector({"UpdateItem"}, every=1, error=THROTTLED, limit=10_000))
    pipeline.run()
    parked = queue_length(pipeline, "AggregateFailureQueue")

    # When the re-drive meets the same throttling, on every write its reconcile would make too
    inject(FaultInjector({"PutItem"}, every=1, error=THROTTLED, limit=10_000))
    outcome = redrive({"target": "aggregate", "max_batches": 1000}, FakeLambdaContext())

    # Then nothing is removed from the queue
    assert outcome["still_failing"] == outcome["batches"] == parked > 0
    assert queue_length(pipeline, "AggregateFailureQueue") == parked


def test_a_message_that_is_not_a_parked_batch_is_counted_and_left(pipeline: Pipeline, redrive: Any) -> None:
    boto3.client("sqs").send_message(
        QueueUrl=pipeline.queues["AggregateFailureQueue"], MessageBody=json.dumps({"hello": "world"})
    )

    outcome = redrive({"target": "aggregate"}, FakeLambdaContext())

    assert (outcome["batches"], outcome["unreadable"], outcome["redriven"]) == (1, 1, 0)


def test_re_driving_parked_changes_whose_lanes_moved_on_reconciles_their_days_to_exact_counts(
    pipeline: Pipeline, inject: Faults, redrive: Any
) -> None:
    # Given bucket deltas parked by a storm, after which the same lanes changed again and were aggregated
    posts = park_deltas_then_move_their_lanes_on(pipeline, inject)

    # When the parked batches are re-driven (their own deltas now skipped by the moved guards)
    outcome = redrive({"target": "aggregate", "max_batches": 1000}, FakeLambdaContext())

    # Then the days they touched were reconciled: every bucket is exact, nothing stays parked
    assert outcome["redriven"] == outcome["batches"] > 0
    assert queue_length(pipeline, "AggregateFailureQueue") == 0
    assert_exact(pipeline, posts)
