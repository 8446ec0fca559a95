"""The table's stream, read back for one parked batch: its records as Lambda delivered them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from replyclock.dal.table import StoreError, translate

_PAGE = 1000


class RecordsExpired(StoreError):
    """The stream no longer holds the batch (records live 24 hours): reconcile its buckets instead."""


def _client() -> Any:
    # Not cached: a re-drive makes a handful of calls, and a cached client would outlive test mocks.
    return boto3.client("dynamodbstreams")


@dataclass(frozen=True)
class ShardRange:
    stream_arn: str
    shard_id: str
    first_sequence_number: str
    last_sequence_number: str


def _as_number(sequence_number: str) -> int:
    return int(sequence_number)


def read_range(batch: ShardRange) -> list[dict[str, Any]]:
    """Every record of the shard from the first to the last sequence number, both included, in order."""
    try:
        iterator = (
            _client()
            .get_shard_iterator(
                StreamArn=batch.stream_arn,
                ShardId=batch.shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=batch.first_sequence_number,
            )
            .get("ShardIterator")
        )
        records: list[dict[str, Any]] = []
        last = _as_number(batch.last_sequence_number)
        while iterator:
            page = _client().get_records(ShardIterator=iterator, Limit=_PAGE)
            for record in page.get("Records", []):
                if _as_number(record["dynamodb"]["SequenceNumber"]) > last:
                    return records
                records.append(_as_lambda_record(record, batch.stream_arn))
            if not page.get("Records"):
                return records
            iterator = page.get("NextShardIterator")
        return records
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            raise RecordsExpired(f"{batch.shard_id} no longer holds {batch.first_sequence_number}") from error
        raise translate(error) from error


def _as_lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape an event-source mapping hands to Lambda."""
    body = dict(record)
    dynamodb = dict(body["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    body["dynamodb"] = dynamodb
    body["eventSourceARN"] = stream_arn
    return json.loads(json.dumps(body, default=str))  # type: ignore[no-any-return]
