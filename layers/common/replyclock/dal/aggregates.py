"""Aggregate buckets, hourly and daily: counters and histogram bins that DynamoDB ADD merges.

Hourly buckets have sort keys "H#<YYYY-MM-DDTHH>#<kind>#<channel>#<priority>", their daily
roll-ups "D#<YYYY-MM-DD>#<kind>#<channel>#<priority>", in the same partition "AGG#<brand>".

An hourly bucket keeps, per conversation state that changed it lately, the last state
version it has applied (a *guard*). A delta is added only together with moving its guard
forward, in one conditional UpdateItem, so a redelivered stream record can never be counted
twice, whatever shard or batch it comes back in. Every write that adds to it moves its
revision (`rev`) on by one.

A daily bucket is the sum of its day's hourly buckets. It keeps, per hour, the revision of
that hour's bucket it holds (`h_<HH>`), so it has at most 24 guards however many
conversations its day had: a batch adds what it added to an hour to the day only if the day
holds exactly the hour's revision before that write; otherwise the day is rebuilt from its
hours (`rebuild_day`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import (
    ConditionFailed,
    StoreError,
    batch_get_items,
    get_table,
    items_as_sent,
    query_items,
    to_decimal,
    translate,
)
from replyclock.logic.aggregation import COUNTER_NAMES, BucketKey, BucketTotals, Granularity
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Priority, WaitKind

BUCKET_ITEM_TYPE = "bucket"
GUARD_PREFIX = "g_"
# Every write that adds moves it on by 1: a rewrite is conditioned on it, so no delta applied meanwhile is lost.
REVISION = "rev"
# A daily bucket's guard of one hour: the revision of that hour's bucket it holds.
HOUR_GUARD_PREFIX = "h_"
# Stream records live 24 hours; a guard older than this can no longer be challenged by a redelivery.
GUARD_RETENTION = timedelta(hours=48)
_HISTOGRAM_PREFIX = {"calendar": "c", "business": "b"}
# DynamoDB refuses an expression over 4 KB or with more than 300 operators (moto does not check;
# devtools/moto_limits.py makes it, in tests and the local stack).
MAX_EXPRESSION_BYTES = 4096
MAX_EXPRESSION_OPERATORS = 300
_SORT_KEY_PREFIX = {Granularity.HOUR: "H", Granularity.DAY: "D"}
# How far the brand-wide roll-ups (dal.rollups) reach: read with the guards, so the aggregate step knows
# which days it changes have roll-ups to bring up to date, without a request of its own.
WATERMARK_SK = "R#WATERMARK"
_GRANULARITY_OF_PREFIX = {prefix: granularity for granularity, prefix in _SORT_KEY_PREFIX.items()}


class WriteTooLarge(StoreError):
    """The sums and guards of a write exceed what one UpdateItem may carry: split it by conversation."""


def guard_name(source_key: str) -> str:
    """A short, stable attribute name for the conversation state a delta comes from.

    48 bits of hash, as 8 base64url characters: a bucket holds at most thousands of guards, so a
    collision (which would make two states share a guard) has odds below one in 10^8 per bucket.
    Every byte of a guard is billed on every write of its bucket, so guards are kept short.
    """
    digest = hashlib.blake2b(source_key.encode(), digest_size=6).digest()
    return GUARD_PREFIX + base64.urlsafe_b64encode(digest).decode()


def guard_value(version: int, applied_at: datetime) -> str:
    """ "<version>|<applied at, epoch seconds>", both in base 36: the time lets old guards be pruned."""
    return f"{_base36(version)}|{_base36(int(applied_at.timestamp()))}"


def guard_version(value: str) -> int:
    return int(value.split("|", 1)[0], 36)


def _guard_time(value: str) -> int:
    return int(value.split("|", 1)[1], 36)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text


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


def same_sums(first: BucketTotals, second: BucketTotals) -> bool:
    """Whether two totals would be stored as the same counters, bins and sums."""
    return _additions(first) == _additions(second)


def stored_bucket(
    key: BucketKey, totals: BucketTotals, guards: Mapping[str, str | int] | None = None
) -> dict[str, Any]:
    """The item a new bucket is once `totals` (and these guards) were applied to it, as BucketStore.apply leaves it.

    For building datasets (benchmarks, tests) without replaying every delta through DynamoDB.
    """
    return {
        **bucket_item_key(key),
        "item_type": BUCKET_ITEM_TYPE,
        "brand_id": key.brand_id,
        key.granularity.value: key.period,
        **_additions(totals),
        **(guards or {}),
        REVISION: 1,
    }


@dataclass(frozen=True)
class GuardedWrite:
    """A sum of deltas for one bucket and the guards it moves forward.

    `guards_expired` (guard -> the value read) are removed too when the expression has
    room for them; pruning is opportunistic, so what does not fit stays for a later write.
    """

    key: BucketKey
    totals: BucketTotals
    guards_read: Mapping[str, str]
    guards_written: Mapping[str, str]
    guards_expired: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Expression:
    update: str
    condition: str
    names: dict[str, str]
    values: dict[str, Any]
    operators: int
    removed: tuple[str, ...]

    def fits(self) -> bool:
        return (
            len(self.update.encode()) <= MAX_EXPRESSION_BYTES
            and len(self.condition.encode()) <= MAX_EXPRESSION_BYTES
            and self.operators <= MAX_EXPRESSION_OPERATORS
        )


def _render(write: GuardedWrite) -> _Expression:
    """The UpdateItem of a write: ADD the sums, SET the guards, REMOVE the expired guards that fit."""
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
    if write.guards_written:
        names["#rev"] = REVISION
        values[":one"] = 1
        adds.append("#rev :one")
    update = f"SET {', '.join(sets)}"
    if adds:
        update += f" ADD {', '.join(adds)}"
    # Each condition is one comparison or function, joined by AND: 2n - 1 operators.
    operators = 2 * len(conditions) - 1
    condition = " AND ".join(conditions)
    removed: list[str] = []
    for position, (guard, value) in enumerate(sorted(write.guards_expired.items())):
        # Removed only if it still holds the value read: a concurrent write may have just made it fresh.
        remove = f"{', ' if removed else ' REMOVE '}#x{position}"
        check = f"{' AND ' if condition else ''}#x{position} = :x{position}"
        if (
            len(update) + len(remove) > MAX_EXPRESSION_BYTES
            or len(condition) + len(check) > MAX_EXPRESSION_BYTES
            or operators + 2 > MAX_EXPRESSION_OPERATORS
        ):
            break
        names[f"#x{position}"] = guard
        values[f":x{position}"] = value
        update += remove
        condition += check
        operators += 2
        removed.append(guard)
    return _Expression(update, condition, names, values, operators, tuple(removed))


def write_fits(write: GuardedWrite) -> bool:
    """Whether one UpdateItem can carry the write within DynamoDB's expression limits."""
    return _render(replace(write, guards_expired={})).fits()


def hour_guard_name(hour: str) -> str:
    """The daily bucket's guard of an hour ("YYYY-MM-DDTHH")."""
    return HOUR_GUARD_PREFIX + hour[-2:]


def hours_of(day: BucketKey) -> list[BucketKey]:
    """The 24 hourly buckets whose sum a daily bucket is."""
    return [replace(day, period=f"{day.period}T{hour:02d}", granularity=Granularity.HOUR) for hour in range(24)]


@dataclass(frozen=True)
class BucketGuards:
    """What exactly-once writing needs of a bucket: its state guards, its hours' revisions (daily), its revision."""

    guards: dict[str, str] = field(default_factory=dict)
    hours: dict[str, int] = field(default_factory=dict)
    revision: int = 0


@dataclass(frozen=True)
class Watermark:
    """Roll-ups are announced through `announced` (since `announced_at`) and built through `built`."""

    announced: date | None = None
    announced_at: datetime | None = None
    built: date | None = None


def watermark_from_item(item: Mapping[str, Any]) -> Watermark:
    def day(name: str) -> date | None:
        return date.fromisoformat(str(item[name])) if name in item else None

    announced_at = datetime.fromtimestamp(int(item["announced_at"]), UTC) if "announced_at" in item else None
    return Watermark(day("announced"), announced_at, day("built"))


@dataclass(frozen=True)
class HourAdded:
    """What a batch added to one hourly bucket, for its day: the sum, and the hour's revision before and after."""

    key: BucketKey
    totals: BucketTotals
    revision_before: int
    revision_after: int


@dataclass(frozen=True)
class StoredBucket:
    """A bucket as read whole: its sums, its guards, and its revision (0: no such item yet)."""

    totals: BucketTotals
    guards: dict[str, str]
    revision: int


class BucketStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def read_guards(self, keys: Iterable[BucketKey]) -> dict[BucketKey, BucketGuards]:
        """Guards and revision of each bucket (an absent bucket has none, at revision 0)."""
        return {key: _bucket_guards(item) if item else BucketGuards() for key, item in self._get_many(keys).items()}

    def read_guards_and_watermarks(
        self, keys: Iterable[BucketKey]
    ) -> tuple[dict[BucketKey, BucketGuards], dict[str, Watermark]]:
        """read_guards, and the roll-up watermark of each brand of these buckets, in the same requests."""
        wanted = sorted(set(keys))
        brands = sorted({key.brand_id for key in wanted})
        guards = {key: BucketGuards() for key in wanted}
        watermarks = {brand: Watermark() for brand in brands}
        requested = [bucket_item_key(key) for key in wanted] + [
            {"pk": f"AGG#{brand}", "sk": WATERMARK_SK} for brand in brands
        ]
        for item in batch_get_items(self._table, requested, consistent=True):
            if item["sk"] == WATERMARK_SK:
                watermarks[str(item["pk"]).removeprefix("AGG#")] = watermark_from_item(item)
            else:
                guards[bucket_key_from_item(item)] = _bucket_guards(item)
        return guards, watermarks

    def _get_many(self, keys: Iterable[BucketKey]) -> dict[BucketKey, dict[str, Any] | None]:
        wanted = sorted(set(keys))
        found: dict[BucketKey, dict[str, Any] | None] = dict.fromkeys(wanted)
        for item in batch_get_items(self._table, (bucket_item_key(key) for key in wanted), consistent=True):
            found[bucket_key_from_item(item)] = item
        return found

    def guards_of_period(self, brand_id: str, granularity: Granularity, period: str) -> dict[BucketKey, dict[str, str]]:
        """The guards of every bucket of a brand's hour ("YYYY-MM-DDTHH") or day ("YYYY-MM-DD")."""
        prefix = _SORT_KEY_PREFIX[granularity]
        condition = Key("pk").eq(f"AGG#{brand_id}") & Key("sk").begins_with(f"{prefix}#{period}#")
        return {
            bucket_key_from_item(item): _guards_of(item)
            for item in query_items(self._table, KeyConditionExpression=condition)
        }

    def read_days(self, brand_id: str, first_day: str, last_day: str) -> dict[BucketKey, StoredBucket]:
        """Every hourly and daily bucket of a brand's UTC days first_day..last_day ("YYYY-MM-DD"), read whole."""
        found: dict[BucketKey, StoredBucket] = {}
        for prefix in _SORT_KEY_PREFIX.values():
            condition = Key("pk").eq(f"AGG#{brand_id}") & Key("sk").between(
                f"{prefix}#{first_day}", f"{prefix}#{last_day}~"
            )
            for item in query_items(self._table, KeyConditionExpression=condition, ConsistentRead=True):
                found[bucket_key_from_item(item)] = StoredBucket(
                    totals_from_item(item), _guards_of(item), int(item.get(REVISION, 0))
                )
        return found

    def rewrite(
        self, key: BucketKey, totals: BucketTotals, guards: Mapping[str, str | int], read_revision: int
    ) -> None:
        """Replace the bucket with these sums and guards, only if no write reached it since it was read.

        ConditionFailed when one did (its revision moved): read it again and recompute.
        """
        item = {**stored_bucket(key, totals, guards), REVISION: read_revision + 1}
        if read_revision == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#rev)"}
        else:
            condition = {"ConditionExpression": "#rev = :read", "ExpressionAttributeValues": {":read": read_revision}}
        try:
            self._table.put_item(Item=item, ExpressionAttributeNames={"#rev": REVISION}, **condition)
        except ClientError as error:
            raise translate(error) from error

    def apply(self, write: GuardedWrite) -> tuple[tuple[str, ...], int]:
        """ADD the sums and move the guards, only if no guard moved since they were read.

        Returns the expired guards it removed (those that fit in the expression) and the bucket's revision after.
        Raises WriteTooLarge when the sums and guards alone exceed DynamoDB's expression limits.
        """
        expression = _render(write)
        if not expression.fits():
            raise WriteTooLarge(f"{write.key}: {len(write.guards_written)} guards do not fit in one UpdateItem")
        request: dict[str, Any] = {
            "Key": bucket_item_key(write.key),
            "UpdateExpression": expression.update,
            "ExpressionAttributeNames": expression.names,
            "ExpressionAttributeValues": expression.values,
            "ReturnValues": "UPDATED_NEW",
        }
        if expression.condition:
            request["ConditionExpression"] = expression.condition
        try:
            response = self._table.update_item(**request)
        except ClientError as error:
            raise translate(error) from error
        revision = response.get("Attributes", {}).get(REVISION, 0)
        return expression.removed, int(str(revision))

    def add_to_day(self, day: BucketKey, hours: Iterable[HourAdded]) -> None:
        """Add what a batch added to some hours of the day, if the day holds exactly those hours' revisions before.

        ConditionFailed otherwise (an hour's write it missed, or one applied meanwhile), WriteTooLarge when the
        additions exceed one UpdateItem's expression: see rebuild_day.
        """
        totals = BucketTotals()
        names = {"#rev": REVISION}
        values: dict[str, Any] = {":one": 1}
        sets, conditions = [], []
        for position, added in enumerate(sorted(hours, key=lambda added: added.key)):
            totals.merge(added.totals)
            names[f"#h{position}"] = hour_guard_name(added.key.period)
            values[f":h{position}"] = added.revision_after
            sets.append(f"#h{position} = :h{position}")
            if added.revision_before:
                values[f":b{position}"] = added.revision_before
                conditions.append(f"#h{position} = :b{position}")
            else:
                conditions.append(f"attribute_not_exists(#h{position})")
        adds = ["#rev :one"]
        for position, (attribute, amount) in enumerate(sorted(_additions(totals).items())):
            names[f"#a{position}"] = attribute
            values[f":a{position}"] = amount
            adds.append(f"#a{position} :a{position}")
        for position, (attribute, value) in enumerate(
            (("item_type", BUCKET_ITEM_TYPE), ("brand_id", day.brand_id), (day.granularity.value, day.period))
        ):
            names[f"#k{position}"] = attribute
            values[f":k{position}"] = value
            sets.append(f"#k{position} = :k{position}")
        update = f"SET {', '.join(sets)} ADD {', '.join(adds)}"
        if len(update.encode()) > MAX_EXPRESSION_BYTES:
            raise WriteTooLarge(f"{day}: the day's additions do not fit in one UpdateItem")
        try:
            self._table.update_item(
                Key=bucket_item_key(day),
                UpdateExpression=update,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            raise translate(error) from error

    def rebuild_day(self, day: BucketKey) -> bool:
        """Make a daily bucket the sum of its hourly buckets as they are now, with their revisions; False if it was.

        ConditionFailed when the day was written meanwhile: read again and decide again.
        """
        found = self._get_many([day, *hours_of(day)])
        totals = BucketTotals()
        hour_guards: dict[str, int] = {}
        for key in hours_of(day):
            item = found[key]
            if item is not None:
                totals.merge(totals_from_item(item))
                hour_guards[hour_guard_name(key.period)] = int(item.get(REVISION, 0))
        current = found[day]
        if current is not None:
            held = {name: int(value) for name, value in current.items() if name.startswith(HOUR_GUARD_PREFIX)}
            if held == hour_guards and same_sums(totals, totals_from_item(current)):
                return False
        elif not hour_guards:
            return False
        self.rewrite(day, totals, hour_guards, int(current.get(REVISION, 0)) if current else 0)
        return True

    def remove_guards(self, key: BucketKey, guards: Mapping[str, str]) -> int:
        """Remove guards that still hold the values read, in as many UpdateItems as the limits need.

        A guard that moved since it was read (a concurrent write made it fresh) stays: the
        UpdateItem that would remove it fails its condition and this returns what it removed so far.
        """
        removed = 0
        remaining = dict(guards)
        while remaining:
            write = GuardedWrite(key, BucketTotals(), guards_read={}, guards_written={}, guards_expired=remaining)
            try:
                done, _ = self.apply(write)
            except ConditionFailed:
                break
            removed += len(done)
            for guard in done:
                del remaining[guard]
        return removed

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
        # Buckets hold numbers and strings only, so their Query pages can skip botocore's per-value parse.
        with items_as_sent():
            items = list(query_items(self._table, KeyConditionExpression=condition))
        return [(bucket_key_from_item(item), totals_from_item(item)) for item in items]


def expired_guards(guards: Mapping[str, str], now: datetime, keep: Iterable[str] = ()) -> dict[str, str]:
    """The guards no redelivery can challenge any more (applied over GUARD_RETENTION ago), with their values."""
    cutoff = (now - GUARD_RETENTION).timestamp()
    kept = set(keep)
    return {name: value for name, value in guards.items() if name not in kept and _guard_time(value) < cutoff}


def _bucket_guards(item: Mapping[str, Any]) -> BucketGuards:
    hours = {
        f"{item.get('day', '')}T{name.removeprefix(HOUR_GUARD_PREFIX)}": int(value)
        for name, value in item.items()
        if name.startswith(HOUR_GUARD_PREFIX)
    }
    return BucketGuards(_guards_of(item), hours, int(item.get(REVISION, 0)))


def _guards_of(item: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in item.items() if name.startswith(GUARD_PREFIX)}
