"""What DynamoDB and Lambda bill for a run of the measuring path, counted from what really happened.

Write units come from the table's own stream: every write leaves a record with the item's old and
new image, and DynamoDB bills a write by the larger of the two (1 unit per started KB), plus one
write per global secondary index whose entry the write puts, deletes or changes (an entry whose
keys move is a delete and a put; one whose projected attributes change is one write). Requests
and items read are counted at the SDK (botocore's before-call and after-call hooks).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from benchmarks.wire import item_size
from devtools.localstack.template import create_table_arguments

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
# us-east-1 list prices (on-demand DynamoDB since Nov 2024; Lambda arm64).
DOLLARS_PER_WRITE_UNIT = 0.625 / 1_000_000
DOLLARS_PER_READ_UNIT = 0.125 / 1_000_000
DOLLARS_PER_INVOCATION = 0.20 / 1_000_000
DOLLARS_PER_GB_SECOND = 0.0000133334
LAMBDA_MEMORY_GB = 512 / 1024
_TYPE_TAGS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})
_typed = TypeDeserializer().deserialize


def _deserialize(value: Any) -> Any:
    """A value in DynamoDB's JSON, or one boto3's resource layer already turned into Python."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TYPE_TAGS:
        return _typed(value)
    return value


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str
    attributes: tuple[str, ...]

    def entry(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        if item is None or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return item
        kept = {"pk", "sk", *self.keys, *(self.attributes if self.projection == "INCLUDE" else ())}
        return {name: value for name, value in item.items() if name in kept}


def table_indexes() -> list[Index]:
    arguments = create_table_arguments("Table", "billing")
    return [
        Index(
            name=index["IndexName"],
            keys=tuple(key["AttributeName"] for key in index["KeySchema"]),
            projection=index["Projection"]["ProjectionType"],
            attributes=tuple(index["Projection"].get("NonKeyAttributes", ())),
        )
        for index in arguments.get("GlobalSecondaryIndexes", [])
    ]


def item_kind(sort_key: str, partition_key: str) -> str:
    if partition_key.startswith("AGG#"):
        return "bucket"
    if partition_key.startswith("SURGE#"):
        return "surge slot" if sort_key.startswith("S#") else "surge episode"
    if sort_key.startswith("STATE#~"):
        return "archived wait"
    if sort_key.startswith("STATE#"):
        return "lane"
    return sort_key.split("#", 1)[0].lower()


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass
class Bill:
    """Write units by item kind and by index, requests by operation, items and read units read."""

    write_units: Counter[str] = field(default_factory=Counter)
    index_write_units: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    largest_item: int = 0
    handler_seconds: float = 0.0
    invocations: int = 0

    def add_stream_records(self, records: list[dict[str, Any]], indexes: list[Index]) -> None:
        for record in records:
            images = record["dynamodb"]
            old = {k: _deserialize(v) for k, v in images["OldImage"].items()} if "OldImage" in images else None
            new = {k: _deserialize(v) for k, v in images["NewImage"].items()} if "NewImage" in images else None
            keys = images["Keys"]
            kind = item_kind(keys["sk"]["S"], keys["pk"]["S"])
            sizes = [item_size(image) for image in (old, new) if image is not None]
            self.largest_item = max(self.largest_item, *sizes)
            self.write_units[kind] += _units(max(sizes), WRITE_UNIT_BYTES)
            for index in indexes:
                before, after = index.entry(old), index.entry(new)
                if before is None and after is None:
                    continue
                moved = before is not None and after is not None and any(before[k] != after[k] for k in index.keys)
                if before is not None and (after is None or moved):
                    self.index_write_units[index.name] += _units(item_size(before), WRITE_UNIT_BYTES)
                if after is not None and (before is None or moved or before != after):
                    self.index_write_units[index.name] += _units(item_size(after), WRITE_UNIT_BYTES)

    def count_request(self, model: Any, **_: Any) -> None:
        self.requests[model.name] += 1

    def count_read(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        strong = 1.0
        if model.name in ("GetItem",):
            items = [parsed["Item"]] if parsed.get("Item") else []
        elif model.name == "BatchGetItem":
            items = [item for found in parsed.get("Responses", {}).values() for item in found]
        elif model.name == "Query":
            size = sum(item_size({k: _deserialize(v) for k, v in item.items()}) for item in parsed.get("Items", []))
            self.read_units += _units(size, READ_UNIT_BYTES) * strong
            return
        else:
            return
        for item in items:
            self.read_units += _units(item_size({k: _deserialize(v) for k, v in item.items()}), READ_UNIT_BYTES)

    def time_handler(self, handler: Any) -> Any:
        def timed(event: dict[str, Any], context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                self.handler_seconds += time.perf_counter() - started
                self.invocations += 1

        return timed

    @property
    def total_write_units(self) -> int:
        return self.write_units.total() + self.index_write_units.total()

    def dollars(self) -> dict[str, float]:
        return {
            "dynamodb_writes": self.total_write_units * DOLLARS_PER_WRITE_UNIT,
            "dynamodb_reads": self.read_units * DOLLARS_PER_READ_UNIT,
            "lambda_invocations": self.invocations * DOLLARS_PER_INVOCATION,
            "lambda_compute": self.handler_seconds * LAMBDA_MEMORY_GB * DOLLARS_PER_GB_SECOND,
        }
