"""Sources: their configuration, each one's cursor, and the lease that lets one poll run at a time.

- configuration: pk "SOURCES", sk "SOURCE#<id>" (one small partition, read whole)
- cursor:        pk "SOURCE#<id>", sk "CURSOR", written with a version check so a poll
                 that lost its lease cannot move the cursor under the one that took it
- lease:         pk "SOURCE#<id>", sk "LEASE", a conditional put that succeeds only when
                 no unexpired lease exists; `expires_at` is also the table's TTL attribute
                 (TTL deletes late, so the condition compares it rather than relying on it)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import ConditionFailed, get_table, put_if, query_items, translate
from replyclock.models.sources import Source

SOURCES_PK = "SOURCES"
SOURCE_ITEM_TYPE = "source"
CURSOR_ITEM_TYPE = "cursor"
LEASE_ITEM_TYPE = "lease"


def source_key(source_id: str) -> dict[str, str]:
    return {"pk": SOURCES_PK, "sk": f"SOURCE#{source_id}"}


def cursor_key(source_id: str) -> dict[str, str]:
    return {"pk": f"SOURCE#{source_id}", "sk": "CURSOR"}


def lease_key(source_id: str) -> dict[str, str]:
    return {"pk": f"SOURCE#{source_id}", "sk": "LEASE"}


@dataclass(frozen=True)
class StoredCursor:
    value: dict[str, Any]
    # 0 when no cursor was ever stored.
    version: int = 0


class SourceStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put(self, source: Source) -> None:
        item = {**source_key(source.id), "item_type": SOURCE_ITEM_TYPE, "config": source.model_dump_json()}
        try:
            self._table.put_item(Item=item)
        except ClientError as error:
            raise translate(error) from error

    def get(self, source_id: str) -> Source | None:
        try:
            found = self._table.get_item(Key=source_key(source_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return Source.model_validate_json(str(item["config"])) if item else None

    def all(self) -> list[Source]:
        items = query_items(self._table, KeyConditionExpression=Key("pk").eq(SOURCES_PK))
        return [Source.model_validate_json(str(item["config"])) for item in items]

    def load_cursor(self, source_id: str) -> StoredCursor:
        try:
            found = self._table.get_item(Key=cursor_key(source_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        if not item:
            return StoredCursor(value={})
        return StoredCursor(value=json.loads(str(item["cursor"])), version=int(str(item["version"])))

    def save_cursor(self, source_id: str, value: dict[str, Any], expected_version: int, now: datetime) -> int:
        """Store the cursor if nobody moved it since `expected_version`; returns the new version.

        Raises ConditionFailed when another poll moved it (this poll's lease had expired).
        """
        item: dict[str, Any] = {
            **cursor_key(source_id),
            "item_type": CURSOR_ITEM_TYPE,
            "cursor": json.dumps(value, sort_keys=True),
            "version": expected_version + 1,
            "updated_at": now.isoformat(),
        }
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if expected_version:
            condition = {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": expected_version},
            }
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as error:
            raise translate(error) from error
        return expected_version + 1

    def acquire_lease(self, source_id: str, owner: str, now: datetime, duration: timedelta) -> bool:
        """Take the source's lease unless an unexpired one exists; False when another poll holds it."""
        item: dict[str, Any] = {
            **lease_key(source_id),
            "item_type": LEASE_ITEM_TYPE,
            "owner": owner,
            "acquired_at": now.isoformat(),
            "expires_at": int((now + duration).timestamp()),
        }
        return put_if(
            self._table, item, "attribute_not_exists(pk) OR expires_at <= :now", {":now": int(now.timestamp())}
        )

    def hold_lease(self, source_id: str, owner: str, until: datetime, reason: str) -> None:
        """Keep the lease, if it is still ours, until `until`: no poll of the source starts before then."""
        try:
            self._table.update_item(
                Key=lease_key(source_id),
                UpdateExpression="SET expires_at = :until, held_for = :reason",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": owner, ":until": int(until.timestamp()), ":reason": reason},
            )
        except ClientError as error:
            translated = translate(error)
            if not isinstance(translated, ConditionFailed):
                raise translated from error

    def release_lease(self, source_id: str, owner: str) -> None:
        """Give the lease back, if it is still ours (an expired one may have been taken since)."""
        try:
            self._table.delete_item(
                Key=lease_key(source_id),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": owner},
            )
        except ClientError as error:
            translated = translate(error)
            if not isinstance(translated, ConditionFailed):
                raise translated from error
