"""The alert outbox: every SLA alert the sweeper decided to send, until SNS acknowledged it.

- pk "OUTBOX#PENDING", sk "<alert id>": an alert not yet acknowledged by SNS, with everything needed to
  publish it again. One small partition, read whole by every sweep: it holds only what is in flight.
- pk "ALERT#<alert id>", sk "PUBLISHED": the alert was acknowledged; expires after a week (the table's
  TTL). A sweep that comes late to a transition another sweep already delivered finds it and adds nothing.

An alert's id is a digest of its wait and status, so every sweep that decides the same alert writes the
same item, and receivers drop duplicates by that id (delivery is at least once).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import get_table, put_if, query_items, translate

PENDING_PK = "OUTBOX#PENDING"
PUBLISHED_SK = "PUBLISHED"
ITEM_TYPE = "alert_outbox"
# How long an acknowledged alert is remembered: far longer than any sweep that could come late to it.
PUBLISHED_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class OutboxEntry:
    alert_id: str
    # The alert as Alert.to_record() wrote it.
    record: dict[str, Any]
    created_at: str
    attempts: int = 0


def _published_key(alert_id: str) -> dict[str, str]:
    return {"pk": f"ALERT#{alert_id}", "sk": PUBLISHED_SK}


class AlertOutbox:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def add(self, alert_id: str, record: dict[str, Any], now: datetime) -> bool:
        """Record an alert to send; False when it is pending or was published already (nothing written)."""
        try:
            found = self._table.get_item(Key=_published_key(alert_id), ConsistentRead=True).get("Item")
        except ClientError as error:
            raise translate(error) from error
        if found is not None:
            return False
        return put_if(
            self._table,
            {
                "pk": PENDING_PK,
                "sk": alert_id,
                "item_type": ITEM_TYPE,
                "alert": json.dumps(record, sort_keys=True),
                "created_at": now.isoformat(),
                "attempts": 0,
            },
            "attribute_not_exists(pk)",
        )

    def pending(self) -> list[OutboxEntry]:
        """Every alert not acknowledged yet, oldest first."""
        items = query_items(self._table, KeyConditionExpression=Key("pk").eq(PENDING_PK), ConsistentRead=True)
        entries = [
            OutboxEntry(
                alert_id=str(item["sk"]),
                record=json.loads(str(item["alert"])),
                created_at=str(item.get("created_at", "")),
                attempts=int(item.get("attempts", 0)),
            )
            for item in items
        ]
        return sorted(entries, key=lambda entry: (entry.created_at, entry.alert_id))

    def deliver(self, alert_id: str, publish: Callable[[], None], now: datetime) -> str | None:
        """Publish a pending alert and record how it went: None once delivered, else why it stays pending."""
        try:
            publish()
        except Exception as error:  # noqa: BLE001 - any failure leaves the alert pending for the next sweep
            reason = f"{type(error).__name__}: {error}"
            self.failed(alert_id, reason)
            return reason
        self.published(alert_id, now)
        return None

    def failed(self, alert_id: str, reason: str) -> None:
        """Note a failed publish on a pending alert (it stays pending for the next sweep)."""
        try:
            self._table.update_item(
                Key={"pk": PENDING_PK, "sk": alert_id},
                UpdateExpression="ADD attempts :one SET last_error = :reason",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":one": 1, ":reason": reason[:300]},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise translate(error) from error

    def published(self, alert_id: str, now: datetime) -> None:
        """SNS acknowledged the alert: remember that, then take it out of the pending ones."""
        try:
            self._table.put_item(
                Item={
                    **_published_key(alert_id),
                    "item_type": ITEM_TYPE,
                    "published_at": now.isoformat(),
                    "expires_at": int((now + PUBLISHED_RETENTION).timestamp()),
                }
            )
        except ClientError as error:
            raise translate(error) from error
        self.discard(alert_id)

    def discard(self, alert_id: str) -> None:
        """Forget a pending alert that no longer applies (its wait was answered before the alert was recorded)."""
        try:
            self._table.delete_item(Key={"pk": PENDING_PK, "sk": alert_id})
        except ClientError as error:
            raise translate(error) from error
