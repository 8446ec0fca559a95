"""The on-failure queues: batches a stream consumer gave up on, as Lambda parked them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

# Long enough to read the batch back and re-apply it; a re-drive that dies leaves the message to the next one.
VISIBILITY_SECONDS = 300


def _client() -> Any:
    # Not cached: a re-drive makes a handful of calls, and a cached client would outlive test mocks.
    return boto3.client("sqs")


@dataclass(frozen=True)
class ParkedMessage:
    body: dict[str, Any] | None
    receipt_handle: str
    raw: str


def receive(queue_url: str, limit: int) -> Iterator[ParkedMessage]:
    """Up to `limit` parked messages, hidden from other readers while they are re-driven."""
    received = 0
    while received < limit:
        messages = (
            _client()
            .receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, limit - received),
                VisibilityTimeout=VISIBILITY_SECONDS,
            )
            .get("Messages", [])
        )
        if not messages:
            return
        for message in messages:
            received += 1
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            yield ParkedMessage(body if isinstance(body, dict) else None, message["ReceiptHandle"], message["Body"])


def delete(queue_url: str, message: ParkedMessage) -> None:
    _client().delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt_handle)
