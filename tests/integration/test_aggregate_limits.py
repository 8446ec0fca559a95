"""The aggregate step within DynamoDB's expression limits (4 KB, 300 operators), which moto alone does not check.

tests/conftest.py installs devtools.localstack.moto_patches, so any UpdateItem DynamoDB would refuse fails here too.
"""

from __future__ import annotations

from datetime import timedelta

import boto3

from replyclock.dal.aggregates import GUARD_PREFIX, GUARD_RETENTION, bucket_item_key
from replyclock.logic.aggregation import BucketKey
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, ConversationState, Priority, WaitKind
from replyclock.services.aggregating import StateChange, apply_state_changes
from replyclock.services.measuring import directory_from
from tests.support.builders import T0, brand, customer
from tests.support.expectations import expected_snapshot, stored_snapshot
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
DIRECTORY = directory_from([ACME])
BUCKET = BucketKey("acme", "2026-11-18T10", WaitKind.FIRST, "x", Priority.NORMAL)


def answered_conversations(count: int, start_minute: float = 0) -> list[StateChange]:
    """`count` conversations starting in T0's hour, answered after spread-out latencies (many histogram bins)."""
    changes = []
    for number in range(count):
        conversation = f"c{number}"
        posts = [
            customer(f"{number}q", start_minute + number % 50, conversation=conversation),
            brand(f"{number}a", start_minute + number % 50 + 1 + number * 7, conversation=conversation),
        ]
        lanes = compute_waits(posts, ACME, DIRECTORY.brand_for_handle)
        assert list(lanes) == ["alice"] and len(lanes["alice"]) == 1
        state = ConversationState(
            channel="x",
            conversation_id=conversation,
            brand_id="acme",
            customer="alice",
            version=1,
            waits=lanes["alice"],
            wait_count=1,
        )
        changes.append(
            StateChange(
                sequence_number=f"{number:021d}",
                source_key=f"CONV#x#{conversation}|STATE#acme#alice",
                version=1,
                old=None,
                new=state,
            )
        )
    return changes


def guard_count(pipeline: Pipeline, key: BucketKey) -> int:
    item = boto3.resource("dynamodb").Table(pipeline.table_name).get_item(Key=bucket_item_key(key))["Item"]
    return sum(name.startswith(GUARD_PREFIX) for name in item)


def all_waits(changes: list[StateChange]) -> list[object]:
    return [wait for change in changes if change.new for wait in change.new.waits]


def test_a_batch_too_big_for_one_update_is_split_by_conversation_and_counted_once(pipeline: Pipeline) -> None:
    # Given 400 conversations of one bucket in one batch: 400 guard conditions exceed 300 operators
    changes = answered_conversations(400)

    # When the batch is applied, and then delivered again
    first = apply_state_changes(pipeline.buckets, pipeline.rollups, changes, now=T0 + timedelta(hours=1))
    again = apply_state_changes(pipeline.buckets, pipeline.rollups, changes, now=T0 + timedelta(hours=2))

    # Then every part was accepted, each conversation is counted once, and the redelivery added nothing
    assert first.failed_sequence_numbers == set() and again.failed_sequence_numbers == set()
    assert first.buckets_written > 2
    assert again.buckets_written == 0
    assert stored_snapshot(pipeline.buckets, ["acme"]) == expected_snapshot(all_waits(changes))
    assert guard_count(pipeline, BUCKET) == 400


def test_a_write_prunes_only_as_many_expired_guards_as_fit_and_still_succeeds(pipeline: Pipeline) -> None:
    # Given a bucket holding 400 guards, all past retention
    old = answered_conversations(400)
    apply_state_changes(pipeline.buckets, pipeline.rollups, old, now=T0)

    # When one more conversation of the same hour is applied long after
    late = answered_conversations(401)[400:]
    outcome = apply_state_changes(
        pipeline.buckets, pipeline.rollups, late, now=T0 + GUARD_RETENTION + timedelta(hours=1)
    )

    # Then its write succeeds, some expired guards went with it, and the counts are exact
    assert outcome.failed_sequence_numbers == set()
    assert 1 < guard_count(pipeline, BUCKET) < 401
    assert stored_snapshot(pipeline.buckets, ["acme"]) == expected_snapshot(all_waits(old + late))
