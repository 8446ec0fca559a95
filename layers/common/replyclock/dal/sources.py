"""Sources: their configuration, each one's cursor, and the lease that lets one poll run at a time.

- configuration: pk "SOURCES", sk "SOURCE#<id>" (one small partition, read whole): the JSON
                 "config" and, beside it, the poll schedule the ingest tick keeps: `next_poll_at`
                 (epoch seconds; absent: due now), `last_poll_at`, `last_poll_status` and
                 `last_poll_error` (/health reads its own item, replyclock.dal.health). Replacing
                 the config keeps them; deleting the source removes them.
- cursor:        pk "SOURCE#<id>", sk "CURSOR", written with a version check so a poll
                 that lost its lease cannot move the cursor under the one that took it
- lease:         pk "SOURCE#<id>", sk "LEASE", a conditional put that succeeds only when
                 no unexpired lease exists; `expires_at` is also the table's TTL attribute
                 (TTL deletes late, so the condition compares it rather than relying on it)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import ValidationError

from replyclock.dal.table import ConditionFailed, get_table, put_if, query_items, translate
from replyclock.models.sources import Source
from replyclock.observability import logger

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


@dataclass(frozen=True)
class PollSchedule:
    """When the ingest tick polls a source next, and how its last poll ended."""

    # None: due now (never polled since it was configured).
    next_poll_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_poll_status: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class ConfiguredSource:
    source: Source
    schedule: PollSchedule


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _schedule_of(item: dict[str, Any]) -> PollSchedule:
    next_poll = item.get("next_poll_at")
    last_poll = item.get("last_poll_at")
    return PollSchedule(
        next_poll_at=datetime.fromtimestamp(int(str(next_poll)), UTC) if next_poll is not None else None,
        last_poll_at=datetime.fromisoformat(str(last_poll)) if last_poll else None,
        last_poll_status=str(item["last_poll_status"]) if item.get("last_poll_status") else None,
        last_error=str(item["last_poll_error"]) if item.get("last_poll_error") else None,
    )


class SourceStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put(self, source: Source) -> bool:
        """Create or replace the source's configuration, keeping its poll schedule; True when it was created."""
        try:
            found = self._table.update_item(
                Key=source_key(source.id),
                UpdateExpression="SET item_type = :type, config = :config",
                ExpressionAttributeValues={":type": SOURCE_ITEM_TYPE, ":config": source.model_dump_json()},
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as error:
            raise translate(error) from error
        return "config" not in found.get("Attributes", {})

    def get(self, source_id: str) -> Source | None:
        configured = self.get_configured(source_id)
        return configured.source if configured else None

    def get_configured(self, source_id: str) -> ConfiguredSource | None:
        try:
            found = self._table.get_item(Key=source_key(source_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        if not item:
            return None
        return ConfiguredSource(Source.model_validate_json(str(item["config"])), _schedule_of(item))

    def configured(self) -> list[ConfiguredSource]:
        """Every source with its schedule, by id; a configuration that no longer validates is logged and skipped."""
        result = []
        for item in query_items(self._table, KeyConditionExpression=Key("pk").eq(SOURCES_PK)):
            try:
                result.append(ConfiguredSource(Source.model_validate_json(str(item["config"])), _schedule_of(item)))
            except (KeyError, ValueError, ValidationError) as error:
                logger.warning("unreadable source configuration", sk=str(item.get("sk")), error=str(error)[:300])
        return sorted(result, key=lambda configured: configured.source.id)

    def all(self) -> list[Source]:
        return [configured.source for configured in self.configured()]

    def delete(self, source_id: str) -> bool:
        """Remove the source's configuration and schedule (its cursor stays); False when there was none."""
        try:
            found = self._table.delete_item(Key=source_key(source_id), ReturnValues="ALL_OLD")
        except ClientError as error:
            raise translate(error) from error
        return bool(found.get("Attributes"))

    def claim(self, source_id: str, seen: datetime | None, until: datetime) -> bool:
        """Move the source's next poll to `until` if nobody moved it since it read `seen`; False otherwise.

        Two overlapping ticks that both found the source due: only one claims it.
        """
        condition = "attribute_exists(pk) AND " + (
            "attribute_not_exists(next_poll_at)" if seen is None else "next_poll_at = :seen"
        )
        values: dict[str, Any] = {":until": _epoch(until)}
        if seen is not None:
            values[":seen"] = _epoch(seen)
        try:
            self._table.update_item(
                Key=source_key(source_id),
                UpdateExpression="SET next_poll_at = :until",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            translated = translate(error)
            if isinstance(translated, ConditionFailed):
                return False
            raise translated from error
        return True

    def record_poll(
        self, source_id: str, *, status: str, at: datetime, next_poll_at: datetime, error: str | None = None
    ) -> None:
        """Keep how a poll ended and when the next one is due, if the source is still configured."""
        values: dict[str, Any] = {":at": at.isoformat(), ":status": status, ":next": _epoch(next_poll_at)}
        expression = "SET last_poll_at = :at, last_poll_status = :status, next_poll_at = :next"
        if error is None:
            expression += " REMOVE last_poll_error"
        else:
            expression += ", last_poll_error = :error"
            values[":error"] = error
        try:
            self._table.update_item(
                Key=source_key(source_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=values,
            )
        except ClientError as error_:
            translated = translate(error_)
            if not isinstance(translated, ConditionFailed):
                raise translated from error_

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
