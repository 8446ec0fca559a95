"""measure and aggregate through their handlers, on moto's real stream records."""

from __future__ import annotations

import copy
from typing import Any

import boto3

from devtools.localstack.lambda_runtime import FakeLambdaContext
from devtools.localstack.streams import Record
from replyclock.dal.conversations import post_item_key
from replyclock.models.domain import Brand, WaitStatus
from tests.support.builders import brand, customer
from tests.support.expectations import expected_snapshot, stored_snapshot, stored_waits
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")


def post_inserts(pipeline: Pipeline) -> list[Record]:
    return [r for r in pipeline.stream_records() if r["dynamodb"]["Keys"]["sk"]["S"].startswith("POST#")]


def handler(pipeline: Pipeline, function: str) -> Any:
    return pipeline.consumers[function].mapping.handler


def poisoned(record: Record) -> Record:
    broken = copy.deepcopy(record)
    broken["dynamodb"]["NewImage"]["channel"] = {"S": "NOT A CHANNEL!"}
    return broken


def test_writing_a_post_twice_stores_it_once(pipeline: Pipeline) -> None:
    post = customer("1", 0)

    assert pipeline.write([post]) == 1
    assert pipeline.write([post]) == 0
    assert len(post_inserts(pipeline)) == 1


def test_measure_handler_accepts_the_event_file(pipeline: Pipeline) -> None:
    # Given the posts that events/measure_post_inserts.json describes are stored
    event = load_event("measure_post_inserts.json")
    pipeline.write(
        [
            customer("3", 0, "@sprintcare hi", conversation="3", author="115712"),
            brand("1", 2, "@115712 I understand.", brand_id="sprintcare", reply_to="3", conversation="3"),
        ]
    )

    # When measure receives the event
    response = handler(pipeline, "MeasureFunction")(event, FakeLambdaContext())

    # Then nothing failed and the customer's lane is written
    assert response == {"batchItemFailures": []}
    state = pipeline.conversations.get("x", "3", "sprintcare", "115712")
    assert state is not None and [w.status for w in state.waits] == [WaitStatus.MET]


def test_aggregate_handler_accepts_the_event_file(pipeline: Pipeline) -> None:
    event = load_event("aggregate_state_changes.json")

    response = handler(pipeline, "AggregateFunction")(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    [(key, totals)] = pipeline.buckets.query("sprintcare", "2017-10-31T00", "2017-10-31T23")
    assert (key.kind.value, key.channel) == ("first", "x")
    assert totals.counters["waits"] == 1 and totals.counters["responded"] == 1


def test_a_poison_post_record_fails_alone_while_the_rest_of_the_batch_commits(pipeline: Pipeline) -> None:
    # Given two conversations and a batch whose first record is unreadable
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0, conversation="c1"), customer("2", 0, conversation="c2")])
    first, second = post_inserts(pipeline)
    batch = [poisoned(first), second]

    # When measure processes the batch
    response = handler(pipeline, "MeasureFunction")({"Records": batch}, FakeLambdaContext())

    # Then only the poison record is reported, and the other conversation is measured
    assert response == {"batchItemFailures": [{"itemIdentifier": first["dynamodb"]["SequenceNumber"]}]}
    assert pipeline.conversations.get("x", "c2", "acme", "alice") is not None
    assert pipeline.conversations.get("x", "c1", "acme", "alice") is None


def test_a_poison_state_record_fails_with_its_item_while_other_items_commit(pipeline: Pipeline) -> None:
    # Given states of two conversations
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0, conversation="c1"), customer("2", 0, conversation="c2")])
    handler(pipeline, "MeasureFunction")({"Records": post_inserts(pipeline)}, FakeLambdaContext())
    c1_state, c2_state = sorted(pipeline.state_changes(), key=lambda r: r["dynamodb"]["Keys"]["pk"]["S"])

    # When aggregate gets c1's change poisoned
    response = handler(pipeline, "AggregateFunction")({"Records": [poisoned(c1_state), c2_state]}, FakeLambdaContext())

    # Then c1's record is reported and c2's delta is in the buckets
    assert response == {"batchItemFailures": [{"itemIdentifier": c1_state["dynamodb"]["SequenceNumber"]}]}
    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    assert totals.counters["waits"] == 1


def test_a_poison_record_ends_on_the_failure_queue_after_its_retries(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0, conversation="c1"), customer("2", 0, conversation="c2")])
    first, second = post_inserts(pipeline)
    consumer = pipeline.consumers["MeasureFunction"]

    consumer.mapping.deliver("shard-1", [poisoned(first), second])

    [parked] = pipeline.parked("MeasureFailureQueue")
    assert parked["DDBStreamBatchInfo"]["startSequenceNumber"] == first["dynamodb"]["SequenceNumber"]
    assert pipeline.conversations.get("x", "c2", "acme", "alice") is not None


def test_replaying_a_whole_batch_twice_changes_nothing(pipeline: Pipeline) -> None:
    # Given a conversation answered twice (a first and a next response), measured and aggregated
    pipeline.add_brands([ACME])
    posts = [customer("1", 0), brand("2", 30), customer("3", 60, "again"), brand("4", 200)]
    pipeline.write(posts)
    pipeline.run()
    stored_before = pipeline.conversations.load("x", "c1")
    buckets_before = stored_snapshot(pipeline.buckets, ["acme"])

    # When both batches are delivered again
    measure_response = handler(pipeline, "MeasureFunction")({"Records": post_inserts(pipeline)}, FakeLambdaContext())
    aggregate_response = handler(pipeline, "AggregateFunction")(
        {"Records": pipeline.state_changes()}, FakeLambdaContext()
    )

    # Then nothing changed (no lane, archived wait or head rewritten)
    assert measure_response == aggregate_response == {"batchItemFailures": []}
    assert pipeline.conversations.load("x", "c1") == stored_before
    assert stored_snapshot(pipeline.buckets, ["acme"]) == buckets_before
    [lane] = stored_before.lanes.values()
    waits = stored_before.waits_of(lane)
    assert [(w.start_post_id, w.end_post_id) for w in waits] == [("1", "2"), ("3", "4")]
    assert buckets_before == expected_snapshot(waits)


def test_a_late_earlier_reply_shortens_the_wait_with_a_negative_delta(pipeline: Pipeline) -> None:
    # Given a wait answered after 3 hours
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0), brand("3", 180)])
    pipeline.run()

    # When an earlier answer, posted after 10 minutes, is ingested late
    pipeline.write([brand("2", 10)])
    pipeline.run()

    # Then the lane and the buckets hold only the 10-minute answer
    stored = stored_waits(pipeline.conversations, [("x", "c1")])
    assert {key: [(w.end_post_id, w.calendar_seconds) for w in waits] for key, waits in stored.items()} == {
        ("x", "c1", "acme", "alice"): [("2", 600.0)]
    }
    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    assert totals.counters["responded"] == 1
    assert totals.calendar.quantile(0.5) == __import__("pytest").approx(600.0, rel=0.01)


def test_a_redelivered_earlier_answer_to_everyone_does_not_hide_the_later_one(pipeline: Pipeline) -> None:
    # Given a brand's answer to everyone waiting at 15:00, then one at 11:00 stored late and measured (whole)
    pipeline.add_brands([ACME])
    measure = handler(pipeline, "MeasureFunction")

    def deliver(post_id: str) -> None:
        [record] = [r for r in post_inserts(pipeline) if r["dynamodb"]["Keys"]["sk"]["S"] == f"POST#{post_id}"]
        assert measure({"Records": [record]}, FakeLambdaContext()) == {"batchItemFailures": []}

    pipeline.write([brand("3", 300, "thanks for your patience")])
    deliver("3")
    pipeline.write([brand("1", 60, "we are looking into it")])
    deliver("1")

    # When the 11:00 answer is delivered again (alone, so measured incrementally), then a customer's 12:00 mention
    deliver("1")
    pipeline.write([customer("2", 120)])
    deliver("2")

    # Then the customer's wait is the one the whole conversation gives: answered by the 15:00 post
    stored = stored_waits(pipeline.conversations, [("x", "c1")])
    assert {key: [(w.start_post_id, w.end_post_id) for w in waits] for key, waits in stored.items()} == {
        ("x", "c1", "acme", "alice"): [("2", "3")]
    }


def test_a_removed_answer_reopens_the_wait_it_closed(pipeline: Pipeline) -> None:
    # Given a wait answered after 10 minutes, measured and aggregated
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0), brand("2", 10)])
    pipeline.run()

    # When the answer is deleted from the table (its stream REMOVE reaches measure)
    boto3.resource("dynamodb").Table(pipeline.table_name).delete_item(Key=post_item_key("x", "c1", "2"))
    pipeline.run()

    # Then the lane's wait is open again, and the buckets count it as open, answered by no one
    stored = stored_waits(pipeline.conversations, [("x", "c1")])
    assert {key: [(w.start_post_id, w.end_post_id, w.status) for w in waits] for key, waits in stored.items()} == {
        ("x", "c1", "acme", "alice"): [("1", None, WaitStatus.PENDING)]
    }
    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    assert (totals.counters["waits"], totals.counters["open"], totals.counters["responded"]) == (1, 1, 0)


def test_an_unanswered_mention_counts_as_an_open_wait(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()

    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    assert (totals.counters["waits"], totals.counters["open"], totals.counters["responded"]) == (1, 1, 0)
