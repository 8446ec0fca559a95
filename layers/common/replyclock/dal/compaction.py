"""The compaction cursor: the last hour whose buckets had their expired guards pruned.

One item, pk "COMPACTION", sk "CURSOR", moved forward with a condition on the hour it
held, so two overlapping sweeps never both claim the same hour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from replyclock.dal.table import get_table, translate

CURSOR_KEY = {"pk": "COMPACTION", "sk": "CURSOR"}
CURSOR_ITEM_TYPE = "compaction_cursor"


class CompactionCursorStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def load(self) -> str | None:
        """The last compacted UTC hour ("YYYY-MM-DDTHH"), or None before the first compaction."""
        try:
            found = self._table.get_item(Key=CURSOR_KEY, ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return str(item["hour"]) if item else None

    def advance(self, previous: str | None, hour: str, now: datetime) -> None:
        """Record `hour` as compacted, if the cursor still holds `previous`; else ConditionFailed."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous is None
            else {
                "ConditionExpression": "#hour = :previous",
                "ExpressionAttributeNames": {"#hour": "hour"},
                "ExpressionAttributeValues": {":previous": previous},
            }
        )
        item = {**CURSOR_KEY, "item_type": CURSOR_ITEM_TYPE, "hour": hour, "updated_at": now.isoformat()}
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as error:
            raise translate(error) from error
