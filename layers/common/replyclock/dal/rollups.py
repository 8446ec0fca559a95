"""Monthly roll-ups: a brand's brand-wide daily buckets of one wait kind, pre-merged per settled UTC month.

A long unfiltered summary reads one item per kind per whole month instead of one per day. Items, in
the brand's partition "AGG#<brand>":

- "R#M#<YYYY-MM>#<kind>": the sum of that month's brand-wide daily buckets ("R#D#...", dal.aggregates);
- "R#WATERMARK": how far monthly roll-ups are announced and built (services.rolling_up).

A monthly roll-up is only ever written whole, from its days read consistently: its totals packed into
one string attribute (`t`: settled sums are never ADDed to, so they need not be one attribute per
bin) and a digest of the revisions of the days it was built from (`src`), so comparing digests says
whether it is current without comparing sums. Each write is conditioned on the roll-up's own
revision (`rev`), and a builder reads the roll-up before its days: of two builders racing, the one
that read older days loses its write and reads again.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.aggregates import (
    REVISION,
    WATERMARK_SK,
    Watermark,
    period_key_from_item,
    totals_from_item,
    watermark_from_item,
)
from replyclock.dal.table import ConditionFailed, get_table, put_if, query_as_sent, query_items, translate
from replyclock.logic.aggregation import COUNTER_NAMES, BucketTotals, Granularity, RollupKey
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import WaitKind

ROLLUP_ITEM_TYPE = "rollup"
WATERMARK_ITEM_TYPE = "rollup_watermark"
MONTH_PREFIX = "R#M"
DAY_PREFIX = "R#D"  # the brand-wide daily buckets a month sums (dal.aggregates)


def pack(totals: BucketTotals) -> str:
    """Totals as one compact JSON string: the counters, then each clock's histogram (see _pack_histogram)."""
    return json.dumps(
        [[totals.counters.get(name, 0) for name in COUNTER_NAMES], _pack_histogram(totals.calendar)]
        + [_pack_histogram(totals.business)],
        separators=(",", ":"),
    )


def unpack(text: str) -> BucketTotals:
    counters, calendar, business = json.loads(text)
    totals = BucketTotals(calendar=_unpack_histogram(calendar), business=_unpack_histogram(business))
    # Items packed before a counter was added hold fewer counters: the missing ones are zero.
    totals.counters.update({name: value for name, value in zip(COUNTER_NAMES, counters, strict=False) if value})
    return totals


def _pack_histogram(histogram: LatencyHistogram) -> list[Any]:
    """[zero count, sum in ms, first bin, runs]: runs hold each bin's count from the first bin on, a run of k
    empty bins written as -k. Sums are kept to the millisecond, as buckets store them, so nothing is lost.

    Stored sums never hold a negative count; should one, the bins are written as an {index: count} object.
    """
    bins, zero_count, total = histogram.to_bins()
    head: list[Any] = [zero_count, round(total * 1000)]
    filled = sorted(index for index, count in bins.items() if count)
    if not filled:
        return head
    if any(bins[index] < 0 for index in filled):
        return [*head, {str(index): bins[index] for index in filled}]
    runs: list[int] = []
    previous = filled[0] - 1
    for index in filled:
        if index > previous + 1:
            runs.append(previous + 1 - index)
        runs.append(bins[index])
        previous = index
    return [*head, filled[0], runs]


def _unpack_histogram(packed: list[Any]) -> LatencyHistogram:
    zero_count, total_ms, *rest = packed
    bins: dict[int, int] = {}
    if len(rest) == 1:
        bins = {int(index): count for index, count in rest[0].items()}
    elif rest:
        index = rest[0]
        for run in rest[1]:
            if run < 0:
                index -= run
            else:
                bins[index] = run
                index += 1
    return LatencyHistogram.from_bins(bins, zero_count, total_ms / 1000)


def rollup_item_key(key: RollupKey) -> dict[str, str]:
    return {"pk": f"AGG#{key.brand_id}", "sk": f"{MONTH_PREFIX}#{key.period}#{key.kind.value}"}


def rollup_key_from_item(item: Mapping[str, Any]) -> RollupKey:
    _, _, period, kind = str(item["sk"]).split("#", 3)
    return RollupKey(str(item["pk"]).removeprefix("AGG#"), period, WaitKind(kind), Granularity.MONTH)


def stored_rollup(
    key: RollupKey, totals: BucketTotals, sources: Mapping[str, int], revision: int = 1
) -> dict[str, Any]:
    """The item of a roll-up built from sources at these revisions (also for building benchmark datasets)."""
    return {
        **rollup_item_key(key),
        "item_type": ROLLUP_ITEM_TYPE,
        "brand_id": key.brand_id,
        key.granularity.value: key.period,
        "t": pack(totals),
        "src": sources_digest(sources),
        REVISION: revision,
    }


def sources_digest(sources: Mapping[str, int]) -> str:
    """A short digest of what a roll-up sums (source -> its revision): equal digests, equal sums."""
    text = "|".join(f"{name}={revision}" for name, revision in sorted(sources.items()))
    return hashlib.blake2b(text.encode(), digest_size=9).hexdigest()


@dataclass
class _Built:
    totals: BucketTotals
    sources: dict[str, int]


class RollupStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def watermark(self, brand_id: str, *, consistent: bool = True) -> Watermark:
        """How far the brand's roll-ups reach; a reader may take it eventually consistent (it lags, never leads)."""
        try:
            found = self._table.get_item(Key={"pk": f"AGG#{brand_id}", "sk": WATERMARK_SK}, ConsistentRead=consistent)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return watermark_from_item(item) if item else Watermark()

    def announce(self, brand_id: str, previous: Watermark, through: date, now: datetime) -> None:
        """Announce roll-ups through `through`, if the watermark is still `previous`; else ConditionFailed."""
        item: dict[str, Any] = {
            "pk": f"AGG#{brand_id}",
            "sk": WATERMARK_SK,
            "item_type": WATERMARK_ITEM_TYPE,
            "announced": through.isoformat(),
            "announced_at": int(now.timestamp()),
        }
        if previous.built is not None:
            item["built"] = previous.built.isoformat()
        self._put_watermark(item, previous)

    def mark_built(self, brand_id: str, previous: Watermark, through: date) -> None:
        """Record roll-ups as built through `through`, if the watermark is still `previous`; else ConditionFailed."""
        if previous.announced is None or previous.announced_at is None:
            raise ValueError("roll-ups are built only through an announced day")
        item = {
            "pk": f"AGG#{brand_id}",
            "sk": WATERMARK_SK,
            "item_type": WATERMARK_ITEM_TYPE,
            "announced": previous.announced.isoformat(),
            "announced_at": int(previous.announced_at.timestamp()),
            "built": through.isoformat(),
        }
        self._put_watermark(item, previous)

    def _put_watermark(self, item: dict[str, Any], previous: Watermark) -> None:
        if previous.announced is None:
            written = put_if(self._table, item, "attribute_not_exists(pk)")
        else:
            values = {":announced": previous.announced.isoformat()}
            condition = "#announced = :announced"
            if previous.built is None:
                condition += " AND attribute_not_exists(#built)"
            else:
                condition += " AND #built = :built"
                values[":built"] = previous.built.isoformat()
            names = {"#announced": "announced", "#built": "built"}
            written = put_if(self._table, item, condition, values, names)
        if not written:
            raise ConditionFailed(f"the roll-up watermark of {item['pk']} moved")

    def first_day(self, brand_id: str) -> date | None:
        """The brand's earliest day with a brand-wide daily bucket, or None when it has none."""
        condition = Key("pk").eq(f"AGG#{brand_id}") & Key("sk").begins_with(f"{DAY_PREFIX}#")
        try:
            page = self._table.query(KeyConditionExpression=condition, Limit=1, ProjectionExpression="sk")
        except ClientError as error:
            raise translate(error) from error
        items = page.get("Items", [])
        return date.fromisoformat(str(items[0]["sk"]).split("#")[2]) if items else None

    def rebuild_months(self, brand_id: str, first_month: str, last_month: str) -> int:
        """Make the monthly roll-ups of first_month..last_month ("YYYY-MM") the sums of their brand-wide days;
        the roll-ups written. ConditionFailed when one was written meanwhile: call again."""
        held = {
            rollup_key_from_item(item): (str(item.get("src", "")), int(item.get(REVISION, 0)))
            for item in self._query(MONTH_PREFIX, brand_id, first_month, last_month, consistent=True)
        }
        built: dict[RollupKey, _Built] = defaultdict(lambda: _Built(BucketTotals(), {}))
        days = self._query(DAY_PREFIX, brand_id, f"{first_month}-01", f"{last_month}-31", consistent=True)
        for item in days:
            day = period_key_from_item(item)
            into = built[RollupKey(brand_id, day.period[:7], day.kind, Granularity.MONTH)]
            into.totals.merge(totals_from_item(item))
            into.sources[day.period[8:]] = int(item.get(REVISION, 0))
        return self._write_changed(held, built)

    def read(self, brand_id: str, first_month: str, last_month: str) -> list[tuple[RollupKey, BucketTotals]]:
        """The brand's monthly roll-ups of first_month..last_month ("YYYY-MM")."""
        values = {
            ":pk": {"S": f"AGG#{brand_id}"},
            ":first": {"S": f"{MONTH_PREFIX}#{first_month}"},
            ":last": {"S": f"{MONTH_PREFIX}#{last_month}#~"},
        }
        items = query_as_sent(self._table, "pk = :pk AND sk BETWEEN :first AND :last", values)
        return [
            (rollup_key_from_item({"pk": item["pk"]["S"], "sk": item["sk"]["S"]}), unpack(item["t"]["S"]))
            for item in items
        ]

    def _query(
        self, prefix: str, brand_id: str, first: str, last: str, *, consistent: bool
    ) -> Iterable[dict[str, Any]]:
        condition = Key("pk").eq(f"AGG#{brand_id}") & Key("sk").between(f"{prefix}#{first}", f"{prefix}#{last}#~")
        return query_items(self._table, KeyConditionExpression=condition, ConsistentRead=consistent)

    def _write_changed(self, held: Mapping[RollupKey, tuple[str, int]], built: Mapping[RollupKey, _Built]) -> int:
        written = 0
        for key in sorted(set(held) | set(built)):
            fresh = built.get(key) or _Built(BucketTotals(), {})
            digest, revision = held.get(key, ("", 0))
            if digest == sources_digest(fresh.sources) and key in held:
                continue
            item = stored_rollup(key, fresh.totals, fresh.sources, revision + 1)
            if revision:
                done = put_if(self._table, item, "#rev = :read", {":read": revision}, names={"#rev": REVISION})
            else:
                done = put_if(self._table, item, "attribute_not_exists(pk)")
            if not done:
                raise ConditionFailed(f"roll-up {key} was written meanwhile")
            written += 1
        return written


def months_between(first: date, last: date) -> list[str]:
    """The months ("YYYY-MM") of the days first..last."""
    months, moment = [], first.replace(day=1)
    while moment <= last:
        months.append(f"{moment:%Y-%m}")
        moment = (moment + timedelta(days=32)).replace(day=1)
    return months


def month_end(month: str) -> date:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC).date()
    return (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
