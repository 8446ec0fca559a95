"""Ingestion health: what each source's last polls left behind, read tolerantly.

Sources live at pk "SOURCES", sk "SOURCE#<id>", and each source's cursor at pk
"SOURCE#<id>", sk "CURSOR" (key layout from replyclock.dal.sources, which owns them).
SourceStore validates whole configurations, and one bad document would fail it; health
must still answer then, so this module reads the items itself and takes only the few
attributes it needs (last_success_at, last_error, newest_post_at, ...) from the cursor
item, its JSON "cursor" value, or else the source item (flat or its JSON "config"),
treating any of them missing or oddly typed as unknown. A cursor is only saved after a
successful poll, so its updated_at stands in for a missing last_success_at.

Ingest writes what a poll found at pk "SOURCE#<id>", sk "HEALTH" (SourceHealthStore): its
last success, its last failure (kind and a redacted message) and the newest post time seen.
That item wins over the cursor and the source item, and is the only one ingest writes for health.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.sources import SOURCES_PK, cursor_key
from replyclock.dal.table import batch_get_items, get_table, query_items, translate
from replyclock.redaction import redact

SOURCE_SK_PREFIX = "SOURCE#"
HEALTH_SK = "HEALTH"
_DOCUMENT_ATTRIBUTES = ("config", "cursor")
_MAX_ERROR_LENGTH = 500
# Epoch numbers above this are milliseconds (it is in 1973 as milliseconds and in 5138 as seconds).
_MILLISECONDS_ABOVE = 1e11


@dataclass(frozen=True)
class SourceRecord:
    source_id: str
    enabled: bool
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    newest_post_at: datetime | None


def read_sources(table_name: str) -> list[SourceRecord]:
    """Every configured source with its last poll's outcome, by source id."""
    table = get_table(table_name)
    sources: dict[str, dict[str, Any]] = {}
    for item in query_items(table, KeyConditionExpression=Key("pk").eq(SOURCES_PK)):
        source_id = str(item.get("sk", "")).removeprefix(SOURCE_SK_PREFIX)
        if source_id:
            sources[source_id] = _flattened(item)
    cursors = _read_cursors(table.name, sorted(sources))
    health = _read_health(table.name, sorted(sources))
    return [
        source_record(source_id, sources[source_id], cursors.get(source_id, {}), health.get(source_id, {}))
        for source_id in sorted(sources)
    ]


def source_record(
    source_id: str, source: Mapping[str, Any], cursor: Mapping[str, Any], health: Mapping[str, Any] | None = None
) -> SourceRecord:
    """A source's health attributes; what ingest wrote wins over the cursor's, which win over the source item's."""
    merged = {**source, **{name: value for name, value in cursor.items() if value is not None}}
    merged |= {name: value for name, value in (health or {}).items() if value is not None}
    error = merged.get("last_error")
    error_at = merged.get("last_error_at")
    if isinstance(error, Mapping):
        error_at = error_at or error.get("at")
        error = error.get("message") or error.get("error") or json.dumps(error, default=str)
    enabled = merged.get("enabled", True)
    return SourceRecord(
        source_id=source_id,
        enabled=enabled if isinstance(enabled, bool) else True,
        last_success_at=as_datetime(merged.get("last_success_at")) or as_datetime(cursor.get("updated_at")),
        last_error=str(error)[:_MAX_ERROR_LENGTH] if error else None,
        last_error_at=as_datetime(error_at),
        newest_post_at=as_datetime(merged.get("newest_post_at")),
    )


def as_datetime(value: Any) -> datetime | None:
    """An ISO-8601 string (naive means UTC) or epoch seconds/milliseconds as aware UTC; None if neither."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float | Decimal):
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > _MILLISECONDS_ABOVE else number, tz=UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _flattened(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item's attributes, with those of its JSON documents ("config", "cursor") under them."""
    attributes = dict(item)
    documents: dict[str, Any] = {}
    for name in _DOCUMENT_ATTRIBUTES:
        value = attributes.pop(name, None)
        try:
            document = json.loads(value) if isinstance(value, str) else None
        except ValueError:
            document = None
        if isinstance(document, dict):
            documents.update(document)
    return {**documents, **attributes}


def _read_cursors(table_name: str, source_ids: list[str]) -> dict[str, dict[str, Any]]:
    keys = (cursor_key(source_id) for source_id in source_ids)
    return {
        str(item["pk"]).removeprefix(SOURCE_SK_PREFIX): _flattened(item)
        for item in batch_get_items(get_table(table_name), keys)
    }


def _read_health(table_name: str, source_ids: list[str]) -> dict[str, dict[str, Any]]:
    keys = (health_key(source_id) for source_id in source_ids)
    found: dict[str, dict[str, Any]] = {}
    for item in batch_get_items(get_table(table_name), keys):
        record = dict(item)
        kind, message = record.pop("last_error_kind", None), record.get("last_error")
        if isinstance(kind, str) and isinstance(message, str):
            record["last_error"] = f"{kind}: {message}"
        found[str(item["pk"]).removeprefix(SOURCE_SK_PREFIX)] = record
    return found


def health_key(source_id: str) -> dict[str, str]:
    return {"pk": f"{SOURCE_SK_PREFIX}{source_id}", "sk": HEALTH_SK}


def _moment(moment: datetime) -> str:
    """Fixed-width UTC ISO time: later moments compare greater as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SourceHealthStore:
    """What ingest records about each poll of a source (read back by read_sources)."""

    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def record_success(self, source_id: str, at: datetime, newest_post_at: datetime | None = None) -> None:
        self._update(source_id, "SET last_success_at = :at", {":at": _moment(at)})
        if newest_post_at is not None:
            self.record_newest_post(source_id, newest_post_at)

    def record_failure(self, source_id: str, at: datetime, kind: str, message: str) -> None:
        """A failed poll: its kind (the error's class) and its message, with every known secret masked."""
        self._update(
            source_id,
            "SET last_error = :message, last_error_kind = :kind, last_error_at = :at",
            {":message": redact(message)[:_MAX_ERROR_LENGTH] or "-", ":kind": kind[:100], ":at": _moment(at)},
        )

    def record_newest_post(self, source_id: str, newest_post_at: datetime) -> None:
        """Keep the newest post time ever seen (a replay of old posts does not move it back)."""
        moment = _moment(newest_post_at)
        try:
            self._table.update_item(
                Key=health_key(source_id),
                UpdateExpression="SET newest_post_at = :at, item_type = :type",
                ConditionExpression="attribute_not_exists(newest_post_at) OR newest_post_at < :at",
                ExpressionAttributeValues={":at": moment, ":type": "source_health"},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise translate(error) from error

    def _update(self, source_id: str, expression: str, values: dict[str, Any]) -> None:
        try:
            self._table.update_item(
                Key=health_key(source_id),
                UpdateExpression=f"{expression}, item_type = :type",
                ExpressionAttributeValues={**values, ":type": "source_health"},
            )
        except ClientError as error:
            raise translate(error) from error
