"""The open-waits index: every open wait, ordered by the next moment the sweeper must act on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from replyclock.dal.conversations import (
    OPEN_WAIT_PARTITION_PREFIX,
    OPEN_WAIT_PARTITIONS,
    OPEN_WAITS_INDEX,
    parse_index_time,
)
from replyclock.dal.table import get_table, query_items


@dataclass(frozen=True)
class OpenWaitEntry:
    brand_id: str
    channel: str
    conversation_id: str
    customer: str
    open_since: datetime
    # None once the wait is breached: nothing more to do for it but wait for an answer.
    next_alert_at: datetime | None
    # The audience of the opening post (author's reach plus reposts; 0 where the network reports neither).
    exposure: int = 0


def entry_from_item(item: dict[str, Any]) -> OpenWaitEntry:
    """An index entry; its keys never move while the wait is open, only the projected status does."""
    due_at = parse_index_time(str(item["gsi1sk"]).split("#", 1)[0])
    status = str(item.get("status", "pending"))
    next_alert_at = {"pending": parse_index_time(str(item["at_risk_at"])), "at_risk": due_at}.get(status)
    brand_id = str(item["brand_id"])
    return OpenWaitEntry(
        brand_id=brand_id,
        channel=str(item["channel"]),
        conversation_id=str(item["pk"]).split("#", 2)[2],
        customer=str(item["sk"]).removeprefix(f"STATE#{brand_id}#"),
        open_since=parse_index_time(str(item["open_since"])),
        next_alert_at=next_alert_at,
        exposure=int(item.get("exposure", 0)),
    )


class OpenWaitIndex:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def all_open_waits(self) -> list[OpenWaitEntry]:
        entries: list[OpenWaitEntry] = []
        for partition in range(OPEN_WAIT_PARTITIONS):
            partition_key = Key("gsi1pk").eq(f"{OPEN_WAIT_PARTITION_PREFIX}{partition}")
            items = query_items(self._table, IndexName=OPEN_WAITS_INDEX, KeyConditionExpression=partition_key)
            entries.extend(entry_from_item(item) for item in items)
        return entries
