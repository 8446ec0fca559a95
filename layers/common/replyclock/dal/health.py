"""Ingestion health: what each source's last polls left behind, read tolerantly.

Sources live at pk "SOURCES", sk "SOURCE#<id>", and each source's cursor at pk
"SOURCE#<id>", sk "CURSOR" (key layout from replyclock.dal.sources, which owns them).
SourceStore validates whole configurations, and one bad document would fail it; health
must still answer then, so this module reads the items itself and takes only the few
attributes it needs (last_success_at, last_error, newest_post_at, ...) from the cursor
item, its JSON "cursor" value, or else the source item (flat or its JSON "config"),
treating any of them missing or oddly typed as unknown. A cursor is only saved after a
successful poll, so its updated_at stands in for a missing last_success_at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from replyclock.dal.sources import SOURCES_PK, cursor_key
from replyclock.dal.table import batch_get_items, get_table, query_items

SOURCE_SK_PREFIX = "SOURCE#"
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
    return [source_record(source_id, sources[source_id], cursors.get(source_id, {})) for source_id in sorted(sources)]


def source_record(source_id: str, source: Mapping[str, Any], cursor: Mapping[str, Any]) -> SourceRecord:
    """A source's health attributes; the cursor's win over the source item's."""
    merged = {**source, **{name: value for name, value in cursor.items() if value is not None}}
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
