"""Aggregate buckets, hourly and daily: counters and histogram bins that DynamoDB ADD merges.

Hourly buckets have sort keys "H#<YYYY-MM-DDTHH>#<kind>#<channel>#<priority>", their daily
roll-ups "D#<YYYY-MM-DD>#<kind>#<channel>#<priority>", in the same partition "AGG#<brand>".
Each bucket also keeps, per conversation state that ever changed it, the last state
version it has applied (a *guard*). A delta is added only together with moving its
guard forward, in one conditional UpdateItem, so a redelivered stream record can never
be counted twice, whatever shard or batch it comes back in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import get_resource, get_table, query_items, to_decimal, translate
from replyclock.logic.aggregation import COUNTER_NAMES, BucketKey, BucketTotals, Granularity
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Priority, WaitKind

BUCKET_ITEM_TYPE = "bucket"
GUARD_PREFIX = "g_"
# Stream records live 24 hours; a guard older than this can no longer be challenged by a redelivery.
GUARD_RETENTION = timedelta(hours=48)
_HISTOGRAM_PREFIX = {"calendar": "c", "business": "b"}
_BATCH_GET_LIMIT = 100
_SORT_KEY_PREFIX = {Granularity.HOUR: "H", Granularity.DAY: "D"}
_GRANULARITY_OF_PREFIX = {prefix: granularity for granularity, prefix in _SORT_KEY_PREFIX.items()}


def guard_name(source_key: str) -> str:
    """A short, stable attribute name for the conversation state a delta comes from."""
    return GUARD_PREFIX + hashlib.blake2b(source_key.encode(), digest_size=8).hexdigest()


def guard_value(version: int, applied_at: datetime) -> str:
    # Zero-padded so guards compare as strings; the time lets old guards be pruned.
    return f"{version:012d}|{int(applied_at.timestamp())}"


def guard_version(value: str) -> int:
    return int(value.split("|", 1)[0])


def _guard_time(value: str) -> int:
    return int(value.split("|", 1)[1])


def bucket_item_key(key: BucketKey) -> dict[str, str]:
    prefix = _SORT_KEY_PREFIX[key.granularity]
    return {
        "pk": f"AGG#{key.brand_id}",
        "sk": f"{prefix}#{key.period}#{key.kind.value}#{key.channel}#{key.priority.value}",
    }


def bucket_key_from_item(item: Mapping[str, Any]) -> BucketKey:
    prefix, period, kind, channel, priority = str(item["sk"]).split("#", 4)
    return BucketKey(
        str(item["pk"]).removeprefix("AGG#"),
        period,
        WaitKind(kind),
        channel,
        Priority(priority),
        _GRANULARITY_OF_PREFIX[prefix],
    )


def totals_from_item(item: Mapping[str, Any]) -> BucketTotals:
    totals = BucketTotals()
    for name in COUNTER_NAMES:
        if f"n_{name}" in item:
            totals.counters[name] = int(item[f"n_{name}"])
    for clock, prefix in _HISTOGRAM_PREFIX.items():
        bins = {
            int(attribute[len(prefix) :]): int(value)
            for attribute, value in item.items()
            if attribute.startswith(prefix) and attribute[len(prefix) :].isdigit()
        }
        histogram = LatencyHistogram.from_bins(
            bins, int(item.get(f"{prefix}zero", 0)), float(item.get(f"{prefix}sum", Decimal(0)))
        )
        setattr(totals, clock, histogram)
    return totals


def _additions(totals: BucketTotals) -> dict[str, Decimal | int]:
    additions: dict[str, Decimal | int] = {f"n_{name}": value for name, value in totals.counters.items() if value != 0}
    for clock, prefix in _HISTOGRAM_PREFIX.items():
        bins, zero_count, total = getattr(totals, clock).to_bins()
        additions.update({f"{prefix}{index}": count for index, count in bins.items() if count != 0})
        if zero_count:
            additions[f"{prefix}zero"] = zero_count
        if to_decimal(total) != 0:
            additions[f"{prefix}sum"] = to_decimal(total)
    return additions


@dataclass(frozen=True)
class GuardedWrite:
    """A sum of deltas for one bucket and the guards it moves forward."""

    key: BucketKey
    totals: BucketTotals
    guards_read: Mapping[str, str]
    guards_written: Mapping[str, str]
    guards_expired: tuple[str, ...] = ()


class BucketStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def read_guards(self, keys: Iterable[BucketKey]) -> dict[BucketKey, dict[str, str]]:
        """Every guard of each bucket (an absent bucket has none)."""
        wanted = sorted(set(keys))
        guards: dict[BucketKey, dict[str, str]] = {key: {} for key in wanted}
        table_name = self._table.name
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                table_name: {"Keys": [bucket_item_key(key) for key in wanted[start : start + _BATCH_GET_LIMIT]]}
            }
            while request:
                try:
                    response = get_resource().batch_get_item(RequestItems=request)
                except ClientError as error:
                    raise translate(error) from error
                for item in response.get("Responses", {}).get(table_name, []):
                    guards[bucket_key_from_item(item)] = {
                        name: str(value) for name, value in item.items() if name.startswith(GUARD_PREFIX)
                    }
                request = dict(response.get("UnprocessedKeys") or {})
        return guards

    def apply(self, write: GuardedWrite) -> None:
        """ADD the sums and move the guards, only if no guard moved since they were read."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds: list[str] = []
        for position, (attribute, amount) in enumerate(sorted(_additions(write.totals).items())):
            names[f"#a{position}"] = attribute
            values[f":a{position}"] = amount
            adds.append(f"#a{position} :a{position}")
        sets = []
        conditions = []
        for position, (guard, value) in enumerate(sorted(write.guards_written.items())):
            names[f"#g{position}"] = guard
            values[f":g{position}"] = value
            sets.append(f"#g{position} = :g{position}")
            if guard in write.guards_read:
                values[f":r{position}"] = write.guards_read[guard]
                conditions.append(f"#g{position} = :r{position}")
            else:
                conditions.append(f"attribute_not_exists(#g{position})")
        key = write.key
        for position, (attribute, value) in enumerate(
            # "hour" (hourly buckets) or "day" (daily buckets): the period, for people reading the table.
            (("item_type", BUCKET_ITEM_TYPE), ("brand_id", key.brand_id), (key.granularity.value, key.period))
        ):
            names[f"#k{position}"] = attribute
            values[f":k{position}"] = value
            sets.append(f"#k{position} = :k{position}")
        expression = f"SET {', '.join(sets)}"
        if adds:
            expression += f" ADD {', '.join(adds)}"
        if write.guards_expired:
            for position, guard in enumerate(write.guards_expired):
                names[f"#x{position}"] = guard
            expression += " REMOVE " + ", ".join(f"#x{position}" for position in range(len(write.guards_expired)))
        try:
            self._table.update_item(
                Key=bucket_item_key(key),
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            raise translate(error) from error

    def query(self, brand_id: str, first_hour: str, last_hour: str) -> list[tuple[BucketKey, BucketTotals]]:
        """Hourly buckets of a brand whose hour lies in [first_hour, last_hour]; reads aggregates only."""
        return self._query(brand_id, Granularity.HOUR, first_hour, last_hour)

    def query_days(self, brand_id: str, first_day: str, last_day: str) -> list[tuple[BucketKey, BucketTotals]]:
        """Daily buckets of a brand whose UTC day ("YYYY-MM-DD") lies in [first_day, last_day]."""
        return self._query(brand_id, Granularity.DAY, first_day, last_day)

    def _query(
        self, brand_id: str, granularity: Granularity, first: str, last: str
    ) -> list[tuple[BucketKey, BucketTotals]]:
        prefix = _SORT_KEY_PREFIX[granularity]
        condition = Key("pk").eq(f"AGG#{brand_id}") & Key("sk").between(f"{prefix}#{first}", f"{prefix}#{last}#~")
        items = query_items(self._table, KeyConditionExpression=condition)
        return [(bucket_key_from_item(item), totals_from_item(item)) for item in items]


def expired_guards(guards: Mapping[str, str], now: datetime, keep: Iterable[str]) -> tuple[str, ...]:
    cutoff = (now - GUARD_RETENTION).timestamp()
    kept = set(keep)
    return tuple(sorted(name for name, value in guards.items() if name not in kept and _guard_time(value) < cutoff))
