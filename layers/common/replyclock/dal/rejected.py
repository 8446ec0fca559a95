"""Items a connector could not read, parked with their raw payload until a poll can read them.

pk "SOURCE#<id>", sk "REJECTED#<stream>#<item id>" (a digest of the payload when it has no id).
A poll parks a page's rejected items before it stores the cursor that passes them, so the
cursor never makes an item unreachable; each later poll tries the parked items again (a fixed
connector reads them) and releases those it stores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import get_table, query_items, translate

REJECTED_SK_PREFIX = "REJECTED#"
ITEM_TYPE = "rejected_item"
# Well under DynamoDB's 400 KB item limit; a bigger payload is parked cut short (and cannot be read again).
MAX_RAW_CHARS = 300_000


@dataclass(frozen=True)
class ParkedItem:
    stream: str
    key: str
    raw: Any
    field: str
    reason: str
    first_seen: str
    attempts: int = 0


def _source_pk(source_id: str) -> str:
    return f"SOURCE#{source_id}"


def parked_key(stream: str, item_id: str | None, raw_json: str) -> str:
    name = item_id or "sha256-" + hashlib.sha256(raw_json.encode()).hexdigest()[:32]
    return f"{stream}#{name}"[:900]


class RejectedItemStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def park(
        self, source_id: str, *, stream: str, item_id: str | None, field: str, reason: str, raw: Any, now: datetime
    ) -> str:
        """Park one rejected item (again: its first sighting is kept, its attempts counted); returns its key."""
        raw_json = json.dumps(raw, default=str, ensure_ascii=False)
        key = parked_key(stream, item_id, raw_json)
        truncated = len(raw_json) > MAX_RAW_CHARS
        try:
            self._table.update_item(
                Key={"pk": _source_pk(source_id), "sk": REJECTED_SK_PREFIX + key},
                UpdateExpression=(
                    "SET item_type = :type, stream = :stream, #field = :field, reason = :reason, raw = :raw,"
                    " truncated = :truncated, first_seen = if_not_exists(first_seen, :now), last_seen = :now"
                    " ADD attempts :one"
                ),
                ExpressionAttributeNames={"#field": "field"},
                ExpressionAttributeValues={
                    ":type": ITEM_TYPE,
                    ":stream": stream,
                    ":field": field[:500],
                    ":reason": reason[:1000],
                    ":raw": raw_json[:MAX_RAW_CHARS],
                    ":truncated": truncated,
                    ":now": now.isoformat(),
                    ":one": 1,
                },
            )
        except ClientError as error:
            raise translate(error) from error
        return key

    def parked(self, source_id: str, limit: int) -> list[ParkedItem]:
        """Up to `limit` parked items of a source, oldest key first."""
        condition = Key("pk").eq(_source_pk(source_id)) & Key("sk").begins_with(REJECTED_SK_PREFIX)
        found: list[ParkedItem] = []
        for item in query_items(self._table, KeyConditionExpression=condition, ConsistentRead=True):
            if item.get("truncated"):
                continue
            try:
                raw = json.loads(str(item["raw"]))
            except ValueError:
                continue
            found.append(
                ParkedItem(
                    stream=str(item["stream"]),
                    key=str(item["sk"]).removeprefix(REJECTED_SK_PREFIX),
                    raw=raw,
                    field=str(item.get("field", "")),
                    reason=str(item.get("reason", "")),
                    first_seen=str(item.get("first_seen", "")),
                    attempts=int(item.get("attempts", 0)),
                )
            )
            if len(found) >= limit:
                break
        return found

    def release(self, source_id: str, key: str) -> None:
        try:
            self._table.delete_item(Key={"pk": _source_pk(source_id), "sk": REJECTED_SK_PREFIX + key})
        except ClientError as error:
            raise translate(error) from error
