"""Lambda's DynamoDB-stream event-source mapping, emulated (the local stack's pollers and the tests use it).

Reads every shard of a table's stream, applies the mapping's FilterCriteria, batches
records, and delivers them with Lambda's semantics: partial batch failures retried
from the first failed record, bisection on function errors, a bounded number of
retries, then the batch's coordinates parked on the on-failure queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.localstack.lambda_runtime import FakeLambdaContext, Handler
from devtools.localstack.template import StreamMapping

Record = dict[str, Any]


def matches_pattern(value: Any, pattern: Any) -> bool:
    """EventBridge/Lambda filter pattern matching (exact values, prefix, exists, anything-but, numeric =)."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(matches_pattern(value.get(key, _MISSING), sub) for key, sub in pattern.items())
    if isinstance(pattern, list):
        candidates = value if isinstance(value, list) else [value]
        return any(_matches_rule(candidate, rule) for rule in pattern for candidate in candidates)
    return bool(value == pattern)


class _Missing:
    pass


_MISSING = _Missing()


def _matches_rule(value: Any, rule: Any) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return (value is not _MISSING) == bool(rule["exists"])
        if value is _MISSING:
            return False
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if "anything-but" in rule:
            excluded = rule["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        if "numeric" in rule and len(rule["numeric"]) == 2 and rule["numeric"][0] == "=":
            return isinstance(value, int | float) and value == rule["numeric"][1]
        raise ValueError(f"filter rule not supported by the local event-source mapping: {rule}")
    return value is not _MISSING and value == rule


def passes_filters(record: Record, patterns: Iterable[dict[str, Any]]) -> bool:
    patterns = list(patterns)
    return not patterns or any(matches_pattern(record, pattern) for pattern in patterns)


class StreamReader:
    """Reads new records from every shard of a stream, in order per shard."""

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        starting_position: str = "TRIM_HORIZON",
        start_after: dict[str, str] | None = None,
    ) -> None:
        self._client = streams_client
        self._stream_arn = stream_arn
        self._starting_position = starting_position
        self._iterators: dict[str, str | None] = {}
        # The last sequence number read from each shard (a checkpoint resumes just after it).
        self.positions: dict[str, str] = dict(start_after or {})

    def poll(self) -> dict[str, list[Record]]:
        shards = self._client.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        fresh: dict[str, list[Record]] = {}
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                where: dict[str, str] = {"ShardIteratorType": self._starting_position}
                if shard_id in self.positions:
                    where = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.positions[shard_id]}
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self._stream_arn, ShardId=shard_id, **where
                )["ShardIterator"]
            records: list[Record] = []
            while self._iterators[shard_id]:
                page = self._client.get_records(ShardIterator=self._iterators[shard_id], Limit=1000)
                self._iterators[shard_id] = page.get("NextShardIterator")
                if not page["Records"]:
                    break
                records.extend(self._as_lambda_record(record) for record in page["Records"])
            if records:
                fresh[shard_id] = records
                self.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
        return fresh

    def _as_lambda_record(self, record: Record) -> Record:
        body = dict(record)
        dynamodb = dict(body["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        body["dynamodb"] = dynamodb
        body["eventSourceARN"] = self._stream_arn
        # Round-trip through JSON so handlers get exactly what Lambda would send.
        return json.loads(json.dumps(body, default=str))  # type: ignore[no-any-return]


@dataclass
class DeliveryReport:
    invocations: int = 0
    # Records that passed the filters, and how many of them were processed (checkpointed) or parked.
    matched: int = 0
    delivered: int = 0
    parked: int = 0
    parked_batches: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EventSourceMapping:
    """One function's stream trigger; `deliver` runs a shard's new records through it."""

    mapping: StreamMapping
    send_to_failure_queue: Callable[[dict[str, Any]], None] | None = None
    # The function: the local stack's container, or the handler imported in the test's process.
    handler: Handler = field(kw_only=True)
    report: DeliveryReport = field(default_factory=DeliveryReport)
    # The function's ARN in parked batches (default: the template's logical id).
    function_arn: str | None = None
    # True when the mapping is being shut down: delivery stops between invocations, nothing is parked.
    cancelled: Callable[[], bool] = lambda: False

    def deliver(self, shard_id: str, records: list[Record]) -> None:
        matching = [record for record in records if passes_filters(record, self.mapping.filter_patterns)]
        self.report.matched += len(matching)
        for start in range(0, len(matching), self.mapping.batch_size):
            self._deliver_batch(shard_id, matching[start : start + self.mapping.batch_size])

    def _deliver_batch(self, shard_id: str, batch: list[Record]) -> None:
        attempts = 0
        while batch:
            if self.cancelled():
                return
            outcome = self._invoke(batch)
            if outcome is None:
                self.report.delivered += len(batch)
                return
            attempts += 1
            if isinstance(outcome, int):
                # Partial failure: everything before the first failed record is checkpointed.
                self.report.delivered += outcome
                batch = batch[outcome:]
            elif self.mapping.bisect_on_error and len(batch) > 1:
                half = len(batch) // 2
                self._deliver_batch(shard_id, batch[:half])
                self._deliver_batch(shard_id, batch[half:])
                return
            retries_left = self.mapping.maximum_retry_attempts < 0 or attempts <= self.mapping.maximum_retry_attempts
            if not retries_left:
                self._park(shard_id, batch, attempts, outcome)
                return

    def _invoke(self, batch: list[Record]) -> int | Exception | None:
        """None on success, the index of the first failed record, or the function's error."""
        self.report.invocations += 1
        try:
            response = self.handler({"Records": batch}, FakeLambdaContext(function_name=self.mapping.function))
        except Exception as error:  # noqa: BLE001 - any function error is what Lambda reacts to
            return error
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures or not self.mapping.report_batch_item_failures:
            return None
        try:
            failed = {str(failure["itemIdentifier"]) for failure in failures}
        except (KeyError, TypeError):
            # Lambda treats an unreadable failure report as a failure of the whole batch.
            return ValueError(f"malformed batchItemFailures: {failures!r}")
        for index, record in enumerate(batch):
            if record["dynamodb"]["SequenceNumber"] in failed:
                return index
        return ValueError(f"batchItemFailures names records not in the batch: {sorted(failed)}")

    def _park(self, shard_id: str, batch: list[Record], attempts: int, outcome: int | Exception) -> None:
        """Send the batch's coordinates to the on-failure destination, in Lambda's invocation-record shape."""
        info = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "functionArn": self.function_arn or self.mapping.function,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "" if isinstance(outcome, int) else "Unhandled",
            },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _arrival(batch[0]),
                "approximateArrivalOfLastRecord": _arrival(batch[-1]),
                "batchSize": len(batch),
                "streamArn": batch[0].get("eventSourceARN"),
            },
        }
        self.report.parked += len(batch)
        self.report.parked_batches.append(info)
        if self.send_to_failure_queue is not None:
            self.send_to_failure_queue(info)


def _arrival(record: Record) -> str | None:
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if not isinstance(created, int | float):
        return None
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
