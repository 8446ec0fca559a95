"""Make moto's DynamoDB Query cost what DynamoDB's does: proportional to one partition.

moto 5.2 answers every Query on a table by sorting *all* of the table's items, so a
conversation lookup on a table of 5,000 posts takes ~80 ms and a replay of a real
export grows quadratically. This patch hands Query only the partition it asks for
when it queries the base table; index queries and everything else are untouched.
It changes speed only: the items returned and their order are the same.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.models.table import Table

_original_query = Table.query
_original_all_items = Table.all_items
_partition = threading.local()


def _all_items(self: Table) -> Any:
    hint = getattr(_partition, "hint", None)
    if hint is not None and hint[0] is self:
        return list(hint[1].values())
    return _original_all_items(self)


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name is not None or not self.range_key_attr or hash_key is None:
        return _original_query(self, hash_key, *args, **kwargs)
    _partition.hint = (self, self.items.get(hash_key, {}))
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        _partition.hint = None


def install() -> None:
    Table.query = _query  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
