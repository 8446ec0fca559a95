"""devtools.localstack.streams.EventSourceMapping delivers records with Lambda's DynamoDB-stream semantics.

Fake handlers stand in for functions: each records the sequence numbers it was given and
decides, per record, to succeed, fail the record (batchItemFailures) or raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from devtools.localstack.streams import EventSourceMapping, Record
from devtools.localstack.template import StreamMapping

SHARD = "shardId-0001"


def record(number: int, event_name: str = "INSERT", item_type: str = "post") -> Record:
    return {
        "eventName": event_name,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1",
        "dynamodb": {
            "SequenceNumber": f"{number:022d}",
            "ApproximateCreationDateTime": 1795401689.0 + number,
            "Keys": {"pk": {"S": f"P#{number}"}},
            "NewImage": {"item_type": {"S": item_type}},
        },
    }


def numbers(records: Iterable[Record]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records]


def mapping(
    *,
    batch_size: int = 10,
    retries: int = 2,
    bisect: bool = False,
    report_failures: bool = True,
    filters: tuple[dict[str, Any], ...] = (),
) -> StreamMapping:
    return StreamMapping(
        function="FakeFunction",
        handler_path=Path("unused.py"),
        handler_name="handler",
        batch_size=batch_size,
        maximum_retry_attempts=retries,
        bisect_on_error=bisect,
        report_batch_item_failures=report_failures,
        filter_patterns=filters,
        on_failure_queue="FakeQueue",
    )


class FakeFunction:
    """Records every batch; `outcome(number, attempt)` says "ok", "fail" (report it) or "raise" for a record."""

    def __init__(self, outcome: Callable[[int, int], str] = lambda number, attempt: "ok") -> None:
        self.outcome = outcome
        self.batches: list[list[int]] = []
        self.attempts: dict[int, int] = {}

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        batch = numbers(event["Records"])
        self.batches.append(batch)
        failures = []
        for number in batch:
            self.attempts[number] = self.attempts.get(number, 0) + 1
            verdict = self.outcome(number, self.attempts[number])
            if verdict == "raise":
                raise RuntimeError(f"record {number} broke the function")
            if verdict == "fail":
                failures.append({"itemIdentifier": f"{number:022d}"})
        return {"batchItemFailures": failures}


def deliver(
    esm_mapping: StreamMapping, function: FakeFunction, records: list[Record]
) -> tuple[EventSourceMapping, list[dict[str, Any]]]:
    parked: list[dict[str, Any]] = []
    esm = EventSourceMapping(esm_mapping, send_to_failure_queue=parked.append, handler=function)
    esm.deliver(SHARD, records)
    return esm, parked


def test_records_arrive_in_order_in_batches_of_the_batch_size() -> None:
    # Given 25 records and a batch size of 10
    function = FakeFunction()

    # When they are delivered
    esm, parked = deliver(mapping(batch_size=10), function, [record(n) for n in range(1, 26)])

    # Then the function gets 10, 10 and 5 records, in stream order, each once
    assert function.batches == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert (esm.report.delivered, esm.report.invocations, parked) == (25, 3, [])


def test_records_the_filters_reject_never_reach_the_function() -> None:
    # Given a filter on post inserts, and a stream of inserts and modifies of posts and states
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["post"]}}}}
    records = [record(1), record(2, "MODIFY"), record(3, item_type="state"), record(4)]
    function = FakeFunction()

    # When they are delivered
    esm, _ = deliver(mapping(filters=(pattern,)), function, records)

    # Then only the matching records were batched
    assert function.batches == [[1, 4]]
    assert esm.report.matched == 2


def test_a_partial_failure_is_retried_from_the_first_failed_record() -> None:
    # Given a function that fails record 4 on its first try
    function = FakeFunction(lambda number, attempt: "fail" if number == 4 and attempt == 1 else "ok")

    # When a batch of 6 is delivered
    esm, parked = deliver(mapping(batch_size=6), function, [record(n) for n in range(1, 7)])

    # Then the retry starts at record 4: records 1 to 3 are checkpointed, never redelivered
    assert function.batches == [[1, 2, 3, 4, 5, 6], [4, 5, 6]]
    assert (esm.report.delivered, parked) == (6, [])


def test_the_lowest_failed_record_sets_the_retry_point_whatever_the_report_order() -> None:
    # Given a function that reports records 5 and 3 failed, in that order, on its first try
    function = FakeFunction(lambda number, attempt: "fail" if number in (3, 5) and attempt == 1 else "ok")

    # When a batch of 6 is delivered
    deliver(mapping(batch_size=6), function, [record(n) for n in range(1, 7)])

    # Then the retry starts at record 3
    assert function.batches[1] == [3, 4, 5, 6]


def test_a_function_error_bisects_the_batch_until_the_poison_record_is_alone() -> None:
    # Given a function that raises whenever record 3 is in its batch
    function = FakeFunction(lambda number, attempt: "raise" if number == 3 else "ok")

    # When a batch of 8 is delivered with bisection on, and one retry
    esm, parked = deliver(mapping(batch_size=8, retries=1, bisect=True), function, [record(n) for n in range(1, 9)])

    # Then the halves without record 3 succeed once, and record 3 alone is tried twice, then parked
    assert [batch for batch in function.batches if 3 not in batch] == [[1, 2], [4], [5, 6, 7, 8]]
    assert [batch for batch in function.batches if batch == [3]] == [[3], [3]]
    assert esm.report.delivered == 7
    [info] = parked
    assert info["DDBStreamBatchInfo"]["startSequenceNumber"] == info["DDBStreamBatchInfo"]["endSequenceNumber"]
    assert int(info["DDBStreamBatchInfo"]["startSequenceNumber"]) == 3


def test_without_bisection_a_failing_batch_is_retried_whole_then_parked_with_its_coordinates() -> None:
    # Given a function that always raises on record 2
    function = FakeFunction(lambda number, attempt: "raise" if number == 2 else "ok")

    # When a batch of 3 is delivered with two retries and no bisection
    esm, parked = deliver(mapping(batch_size=3, retries=2), function, [record(n) for n in range(1, 4)])

    # Then the whole batch is tried three times, then parked as Lambda's on-failure record describes it
    assert function.batches == [[1, 2, 3]] * 3
    [info] = parked
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["requestContext"]["approximateInvokeCount"] == 3
    assert info["responseContext"]["functionError"] == "Unhandled"
    batch_info = info["DDBStreamBatchInfo"]
    assert (int(batch_info["startSequenceNumber"]), int(batch_info["endSequenceNumber"])) == (1, 3)
    assert (batch_info["batchSize"], batch_info["shardId"]) == (3, SHARD)
    assert batch_info["streamArn"].endswith("/stream/1")
    assert (esm.report.delivered, esm.report.parked) == (0, 3)


def test_a_record_that_keeps_failing_is_parked_after_the_retry_limit_and_the_rest_goes_on() -> None:
    # Given a function that reports record 2 failed every time
    function = FakeFunction(lambda number, attempt: "fail" if number == 2 else "ok")

    # When two batches are delivered with one retry
    esm, parked = deliver(mapping(batch_size=3, retries=1), function, [record(n) for n in range(1, 7)])

    # Then records 2 and 3 (from the failed record on) are parked, and the next batch is delivered
    assert function.batches == [[1, 2, 3], [2, 3], [4, 5, 6]]
    [info] = parked
    assert info["DDBStreamBatchInfo"]["batchSize"] == 2
    assert info["responseContext"]["functionError"] == ""
    assert (esm.report.delivered, esm.report.parked) == (4, 2)


def test_zero_retries_parks_a_failing_batch_after_one_invocation() -> None:
    function = FakeFunction(lambda number, attempt: "raise")

    _, parked = deliver(mapping(batch_size=2, retries=0), function, [record(1), record(2)])

    assert function.batches == [[1, 2]]
    assert len(parked) == 1


def test_failures_reported_without_report_batch_item_failures_are_ignored() -> None:
    # Given a mapping without ReportBatchItemFailures: Lambda takes any normal return as success
    function = FakeFunction(lambda number, attempt: "fail")

    esm, parked = deliver(mapping(report_failures=False), function, [record(1), record(2)])

    assert function.batches == [[1, 2]]
    assert (esm.report.delivered, parked) == (2, [])


def test_an_unreadable_failure_report_fails_the_whole_batch() -> None:
    # Given a function whose batchItemFailures lack itemIdentifier
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": [{"id": "?"}]}

    parked: list[dict[str, Any]] = []
    esm = EventSourceMapping(mapping(retries=1), send_to_failure_queue=parked.append, handler=handler)

    # When a batch is delivered
    esm.deliver(SHARD, [record(1), record(2)])

    # Then it counts as a failure of every record: retried, then parked whole
    assert calls == [2, 2]
    assert parked[0]["DDBStreamBatchInfo"]["batchSize"] == 2


def test_a_cancelled_mapping_stops_between_invocations_and_parks_nothing() -> None:
    # Given a mapping that is cancelled after its first invocation
    function = FakeFunction()
    parked: list[dict[str, Any]] = []
    esm = EventSourceMapping(
        mapping(batch_size=2),
        send_to_failure_queue=parked.append,
        handler=function,
        cancelled=lambda: bool(function.batches),
    )

    # When three batches' worth of records are delivered
    esm.deliver(SHARD, [record(n) for n in range(1, 7)])

    # Then only the first batch was invoked
    assert function.batches == [[1, 2]]
    assert parked == []
