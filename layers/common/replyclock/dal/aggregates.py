"""Aggregate buckets, hourly and daily: counters and histogram bins that DynamoDB ADD merges.

Hourly buckets have sort keys "H#<YYYY-MM-DDTHH>#<kind>#<channel>#<priority>", their daily
roll-ups "D#<YYYY-MM-DD>#<kind>#<channel>#<priority>", in the same partition "AGG#<brand>".
Brand-wide hourly and daily buckets ("R#H#<hour>#<kind>", "R#D#<day>#<kind>") hold every
channel and priority together, for the requests that filter on neither.

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

A brand-wide hourly bucket follows the hourly buckets of its hour and kind the same way, with a guard
per channel and priority (`c_<hash>`: the revision of that bucket it holds), and a brand-wide daily
bucket follows the brand-wide hours of its day.
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
    query_as_sent,
    query_items,
    to_decimal,
    translate,
)
from replyclock.logic.aggregation import COUNTER_NAMES, BucketKey, BucketTotals, Granularity, PeriodKey, RollupKey
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Priority, WaitKind

BUCKET_ITEM_TYPE = "bucket"
GUARD_PREFIX = "g_"
# Every write that adds moves it on by 1: a rewrite is conditioned on it, so no delta applied meanwhile is lost.
REVISION = "rev"
# A daily bucket's guard of one hour: the revision of that hour's bucket it holds.
HOUR_GUARD_PREFIX = "h_"
# A brand-wide hourly bucket's guard of one channel and priority: the revision of that bucket it holds.
COMBINATION_GUARD_PREFIX = "c_"
_FOLLOW_GUARD_PREFIXES = (HOUR_GUARD_PREFIX, COMBINATION_GUARD_PREFIX)
# Stream records live 24 hours; a guard older than this can no longer be challenged by a redelivery.
GUARD_RETENTION = timedelta(hours=48)
_HISTOGRAM_PREFIX = {"calendar": "c", "business": "b"}
_COUNTERS = frozenset(COUNTER_NAMES)
# DynamoDB refuses an expression over 4 KB or with more than 300 operators (moto does not check;
# devtools/localstack/moto_patches.py makes it, in tests and the local stack).
MAX_EXPRESSION_BYTES = 4096
MAX_EXPRESSION_OPERATORS = 300
_SORT_KEY_PREFIX = {Granularity.HOUR: "H", Granularity.DAY: "D"}
_ROLLUP_SORT_KEY_PREFIX = {Granularity.HOUR: "R#H", Granularity.DAY: "R#D"}
_GRANULARITY_OF_ROLLUP_PREFIX = {prefix[2:]: granularity for granularity, prefix in _ROLLUP_SORT_KEY_PREFIX.items()}
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


def bucket_item_key(key: PeriodKey) -> dict[str, str]:
    if isinstance(key, RollupKey):
        return {
            "pk": f"AGG#{key.brand_id}",
            "sk": f"{_ROLLUP_SORT_KEY_PREFIX[key.granularity]}#{key.period}#{key.kind.value}",
        }
    prefix = _SORT_KEY_PREFIX[key.granularity]
    return {
        "pk": f"AGG#{key.brand_id}",
        "sk": f"{prefix}#{key.period}#{key.kind.value}#{key.channel}#{key.priority.value}",
    }


def period_key_from_item(item: Mapping[str, Any]) -> PeriodKey:
    """The key of a bucket item, of one channel and priority or brand-wide."""
    sort_key = str(item["sk"])
    if not sort_key.startswith("R#"):
        return bucket_key_from_item(item)
    _, prefix, period, kind = sort_key.split("#", 3)
    return RollupKey(
        str(item["pk"]).removeprefix("AGG#"), period, WaitKind(kind), _GRANULARITY_OF_ROLLUP_PREFIX[prefix]
    )


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
    """The sums of a bucket item as boto3 returns it (numbers as Decimal)."""
    return _totals(item.items())


def totals_as_sent(item: Mapping[str, Mapping[str, Any]]) -> BucketTotals:
    """The sums of a bucket item as DynamoDB sends it (numbers as {"N": "12"}; dal.table.query_as_sent)."""
    return _totals((name, typed["N"]) for name, typed in item.items() if "N" in typed)


def _totals(attributes: Iterable[tuple[str, Any]]) -> BucketTotals:
    """Counters ("n_<name>") and, per clock prefix, bins ("<p><index>"), zero count ("<p>zero") and sum ("<p>sum"),
    in one pass over the attributes; anything else (guards, keys, revisions) is passed over."""
    counters: dict[str, int] = {}
    bins: dict[str, dict[int, int]] = {prefix: {} for prefix in _HISTOGRAM_PREFIX.values()}
    zero_counts = dict.fromkeys(_HISTOGRAM_PREFIX.values(), 0)
    sums = dict.fromkeys(_HISTOGRAM_PREFIX.values(), 0.0)
    for name, value in attributes:
        head, rest = name[:1], name[1:]
        if head in bins:
            if rest.isdigit():
                bins[head][int(rest)] = int(value)
            elif rest == "zero":
                zero_counts[head] = int(value)
            elif rest == "sum":
                sums[head] = float(value)
        elif head == "n" and rest[:1] == "_" and rest[1:] in _COUNTERS:
            counters[rest[1:]] = int(value)
    totals = BucketTotals()
    totals.counters.update(counters)
    for clock, prefix in _HISTOGRAM_PREFIX.items():
        setattr(totals, clock, LatencyHistogram.from_bins(bins[prefix], zero_counts[prefix], sums[prefix]))
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
    key: PeriodKey, totals: BucketTotals, guards: Mapping[str, str | int] | None = None
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


def combination_guard_name(bucket: BucketKey) -> str:
    """The brand-wide hourly bucket's guard of one channel and priority's hourly bucket."""
    digest = hashlib.blake2b(f"{bucket.channel}#{bucket.priority.value}".encode(), digest_size=6).digest()
    return COMBINATION_GUARD_PREFIX + base64.urlsafe_b64encode(digest).decode()


def follow_guard_name(parent: PeriodKey, child: PeriodKey) -> str:
    """The guard under which a bucket that follows others (a day its hours, a brand-wide hour its
    channels and priorities) holds the revision of one of them."""
    if parent.granularity is Granularity.DAY:
        return hour_guard_name(child.period)
    if not isinstance(child, BucketKey):
        raise TypeError(f"{parent} does not follow {child}")
    return combination_guard_name(child)


def hours_of(day: PeriodKey) -> list[PeriodKey]:
    """The 24 hourly buckets whose sum a daily bucket is."""
    return [replace(day, period=f"{day.period}T{hour:02d}", granularity=Granularity.HOUR) for hour in range(24)]


@dataclass(frozen=True)
class BucketGuards:
    """What exactly-once writing needs of a bucket: its state guards, the revisions it holds of the buckets it
    follows (by guard name: a day's hours, a brand-wide hour's channels and priorities), its revision."""

    guards: dict[str, str] = field(default_factory=dict)
    followed: dict[str, int] = field(default_factory=dict)
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
    """What a batch added to one bucket, for the buckets that follow it: the sum, and its revision before and after.

    revision_before is -1 when what it now holds is not only that sum added (another writer, a rebuild).
    """

    key: PeriodKey
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

    def read_guards(self, keys: Iterable[PeriodKey]) -> dict[PeriodKey, BucketGuards]:
        """Guards and revision of each bucket (an absent bucket has none, at revision 0)."""
        return {key: _bucket_guards(item) if item else BucketGuards() for key, item in self._get_many(keys).items()}

    def read_guards_and_watermarks(
        self, keys: Iterable[PeriodKey]
    ) -> tuple[dict[PeriodKey, BucketGuards], dict[str, Watermark]]:
        """read_guards, and the roll-up watermark of each brand of these buckets, in the same requests."""
        wanted = list(set(keys))
        brands = sorted({key.brand_id for key in wanted})
        guards: dict[PeriodKey, BucketGuards] = {key: BucketGuards() for key in wanted}
        watermarks = {brand: Watermark() for brand in brands}
        requested = [bucket_item_key(key) for key in wanted] + [
            {"pk": f"AGG#{brand}", "sk": WATERMARK_SK} for brand in brands
        ]
        for item in batch_get_items(self._table, requested, consistent=True):
            if item["sk"] == WATERMARK_SK:
                watermarks[str(item["pk"]).removeprefix("AGG#")] = watermark_from_item(item)
            else:
                guards[period_key_from_item(item)] = _bucket_guards(item)
        return guards, watermarks

    def _get_many(self, keys: Iterable[PeriodKey]) -> dict[PeriodKey, dict[str, Any] | None]:
        wanted = list(set(keys))
        found: dict[PeriodKey, dict[str, Any] | None] = dict.fromkeys(wanted)
        for item in batch_get_items(self._table, (bucket_item_key(key) for key in wanted), consistent=True):
            found[period_key_from_item(item)] = item
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
        self, key: PeriodKey, totals: BucketTotals, guards: Mapping[str, str | int], read_revision: int
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

    def follow(self, parent: PeriodKey, children: Iterable[HourAdded]) -> int:
        """Add what a batch added to some buckets that `parent` follows (a day its hours, a brand-wide hour its
        channels and priorities), if it holds exactly their revisions before; the parent's revision after.

        ConditionFailed otherwise (a write it missed, or one applied meanwhile), WriteTooLarge when the
        additions exceed one UpdateItem's expression: see rebuild.
        """
        totals = BucketTotals()
        names = {"#rev": REVISION}
        values: dict[str, Any] = {":one": 1}
        sets, conditions = [], []
        for position, added in enumerate(sorted(children, key=lambda added: bucket_item_key(added.key)["sk"])):
            totals.merge(added.totals)
            names[f"#h{position}"] = follow_guard_name(parent, added.key)
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
            (("item_type", BUCKET_ITEM_TYPE), ("brand_id", parent.brand_id), (parent.granularity.value, parent.period))
        ):
            names[f"#k{position}"] = attribute
            values[f":k{position}"] = value
            sets.append(f"#k{position} = :k{position}")
        update = f"SET {', '.join(sets)} ADD {', '.join(adds)}"
        condition = " AND ".join(conditions)
        if len(update.encode()) > MAX_EXPRESSION_BYTES or len(condition.encode()) > MAX_EXPRESSION_BYTES:
            raise WriteTooLarge(f"{parent}: the additions do not fit in one UpdateItem")
        try:
            response = self._table.update_item(
                Key=bucket_item_key(parent),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            raise translate(error) from error
        return int(str(response.get("Attributes", {}).get(REVISION, 0)))

    def rebuild(self, parent: PeriodKey) -> int | None:
        """Make a bucket that follows others the sum of them as they are now, holding their revisions;
        its revision after, or None when it already was.

        ConditionFailed when it was written meanwhile: read again and decide again.
        """
        current, children = self._with_followed(parent)
        totals = BucketTotals()
        held: dict[str, int] = {}
        for child, item in children.items():
            if item is not None:
                totals.merge(totals_from_item(item))
                held[follow_guard_name(parent, child)] = int(item.get(REVISION, 0))
        if current is not None:
            if _followed_of(current) == held and same_sums(totals, totals_from_item(current)):
                return None
        elif not held:
            return None
        revision = int(current.get(REVISION, 0)) if current else 0
        self.rewrite(parent, totals, held, revision)
        return revision + 1

    def _with_followed(self, parent: PeriodKey) -> tuple[dict[str, Any] | None, dict[PeriodKey, dict[str, Any] | None]]:
        """A following bucket's item and those of the buckets it follows, read consistently.

        The parent is read first, in a request of its own: a follower's write that it shows (its revision)
        came after that follower's own write, which the later read of the children then shows too; one that
        it does not show moves its revision, and the rewrite conditioned on it fails.
        """
        current = self._get_many([parent])[parent]
        if parent.granularity is Granularity.DAY:
            return current, dict(self._get_many(hours_of(parent)))
        condition = Key("pk").eq(f"AGG#{parent.brand_id}") & Key("sk").begins_with(
            f"H#{parent.period}#{parent.kind.value}#"
        )
        items = query_items(self._table, KeyConditionExpression=condition, ConsistentRead=True)
        return current, {bucket_key_from_item(item): item for item in items}

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

    def query_brand_wide(
        self, brand_id: str, granularity: Granularity, first: str, last: str
    ) -> list[tuple[PeriodKey, BucketTotals]]:
        """Brand-wide hourly or daily buckets of a brand whose period lies in [first, last]."""
        items = self._read(brand_id, _ROLLUP_SORT_KEY_PREFIX[granularity], first, last)
        return [(period_key_from_item(_keys_of(item)), totals_as_sent(item)) for item in items]

    def _query(
        self, brand_id: str, granularity: Granularity, first: str, last: str
    ) -> list[tuple[BucketKey, BucketTotals]]:
        items = self._read(brand_id, _SORT_KEY_PREFIX[granularity], first, last)
        return [(bucket_key_from_item(_keys_of(item)), totals_as_sent(item)) for item in items]

    def _read(self, brand_id: str, prefix: str, first: str, last: str) -> list[dict[str, dict[str, Any]]]:
        """The bucket items of one sort-key prefix whose period lies in [first, last], as DynamoDB sends them."""
        values = {
            ":pk": {"S": f"AGG#{brand_id}"},
            ":first": {"S": f"{prefix}#{first}"},
            ":last": {"S": f"{prefix}#{last}#~"},
        }
        return list(query_as_sent(self._table, "pk = :pk AND sk BETWEEN :first AND :last", values))


def _keys_of(item: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {"pk": item["pk"]["S"], "sk": item["sk"]["S"]}


def expired_guards(guards: Mapping[str, str], now: datetime, keep: Iterable[str] = ()) -> dict[str, str]:
    """The guards no redelivery can challenge any more (applied over GUARD_RETENTION ago), with their values."""
    cutoff = (now - GUARD_RETENTION).timestamp()
    kept = set(keep)
    return {name: value for name, value in guards.items() if name not in kept and _guard_time(value) < cutoff}


def _bucket_guards(item: Mapping[str, Any]) -> BucketGuards:
    return BucketGuards(_guards_of(item), _followed_of(item), int(item.get(REVISION, 0)))


def _followed_of(item: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(value) for name, value in item.items() if name.startswith(_FOLLOW_GUARD_PREFIXES)}


def _guards_of(item: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in item.items() if name.startswith(GUARD_PREFIX)}
