"""Exact expectations computed without AWS, to compare the stored results with."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from replyclock.dal.aggregates import BucketStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.surges import SLOT_RETENTION, SurgeStore
from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, PeriodKey, RollupKey, rolled_up
from replyclock.logic.sentiment import scored
from replyclock.logic.surges import slot_start
from replyclock.logic.waits import brands_in_conversation, compute_waits, placed_conversation
from replyclock.models.domain import Brand, Post, Wait
from replyclock.services.measuring import BrandDirectory

Snapshot = dict[PeriodKey, tuple[dict[str, int], dict[int, int], int, dict[int, int], int]]


LaneKey = tuple[str, str, str, str]


def expected_waits(posts: Iterable[Post], brands: BrandDirectory) -> dict[LaneKey, list[Wait]]:
    """(channel, conversation, brand, customer) -> waits, from the pure function alone."""
    by_conversation: dict[tuple[str, str], list[Post]] = defaultdict(list)
    for post in posts:
        # Scored as the post store scores a post it stores for the first time (a stored post keeps its score).
        post = post if post.sentiment is not None else scored(post)
        by_conversation[(post.channel, post.conversation_id)].append(post)
    waits: dict[LaneKey, list[Wait]] = {}
    for (channel, conversation_id), thread in by_conversation.items():
        placed = placed_conversation(thread, brands.brand_for_handle)
        for brand_id in brands_in_conversation(placed, brands.brand_for_handle):
            lanes = compute_waits(thread, brands.get(brand_id), brands.brand_for_handle)
            for customer, computed in lanes.items():
                waits[(channel, conversation_id, brand_id, customer)] = computed
    return waits


def stored_waits(store: ConversationStore, conversations: Iterable[tuple[str, str]]) -> dict[LaneKey, list[Wait]]:
    """(channel, conversation, brand, customer) -> waits, as stored (lanes without waits left out)."""
    waits: dict[LaneKey, list[Wait]] = {}
    for channel, conversation_id in sorted(set(conversations)):
        items = store.load(channel, conversation_id)
        for (brand_id, customer), lane in items.lanes.items():
            if lane_waits := items.waits_of(lane):
                waits[(channel, conversation_id, brand_id, customer)] = lane_waits
    return waits


def snapshot(buckets: Iterable[tuple[PeriodKey, BucketTotals]]) -> Snapshot:
    """Buckets in a comparable form: non-zero counters and histogram bins (float sums compared apart)."""
    result: Snapshot = {}
    for key, totals in buckets:
        counters = {name: value for name, value in totals.counters.items() if value}
        calendar_bins, calendar_zero, _ = totals.calendar.to_bins()
        business_bins, business_zero, _ = totals.business.to_bins()
        if not counters:
            continue
        result[key] = (
            counters,
            {index: count for index, count in calendar_bins.items() if count},
            calendar_zero,
            {index: count for index, count in business_bins.items() if count},
            business_zero,
        )
    return result


def expected_snapshot(
    waits: Iterable[Wait], granularity: Granularity = Granularity.HOUR, *, brand_wide: bool = False
) -> Snapshot:
    """The buckets the waits make: hourly, or their daily roll-ups; per channel and priority, or brand-wide."""
    buckets: dict[PeriodKey, BucketTotals] = {}
    for wait in waits:
        key: PeriodKey = BucketKey.of(wait)
        if granularity is Granularity.DAY:
            key = key.day()
        if brand_wide:
            key = RollupKey(key.brand_id, key.period, key.kind, key.granularity)
        buckets.setdefault(key, BucketTotals()).merge(BucketTotals.of_wait(wait))
    return snapshot(buckets.items())


def stored_buckets(
    store: BucketStore, brand_ids: Iterable[str], granularity: Granularity = Granularity.HOUR
) -> list[tuple[BucketKey, BucketTotals]]:
    """Every stored bucket of these brands, of one granularity (hourly ones through the hourly query callers use)."""
    read = store.query if granularity is Granularity.HOUR else store.query_days
    return [bucket for brand_id in sorted(set(brand_ids)) for bucket in read(brand_id, "0000", "9999")]


def stored_snapshot(
    store: BucketStore,
    brand_ids: Iterable[str],
    granularity: Granularity = Granularity.HOUR,
    *,
    brand_wide: bool = False,
) -> Snapshot:
    if brand_wide:
        return snapshot(
            bucket
            for brand_id in sorted(set(brand_ids))
            for bucket in store.query_brand_wide(brand_id, granularity, "0000", "9999")
        )
    return snapshot(stored_buckets(store, brand_ids, granularity))


def rolled_up_snapshot(buckets: Iterable[tuple[BucketKey, BucketTotals]]) -> Snapshot:
    """Hourly buckets summed per day: what the daily buckets must hold."""
    hourly = list(buckets)
    assert all(key.granularity is Granularity.HOUR for key, _ in hourly)
    return snapshot(rolled_up(dict(hourly)).items())


def brand_directory(brands: Iterable[Brand]) -> BrandDirectory:
    from replyclock.services.measuring import directory_from

    return directory_from(list(brands))


def assert_arrivals_are_the_wait_starts(table_name: str, brands: list[str], waits: list[Wait]) -> None:
    """The arrivals per 5-minute slot (surges) are exactly the waits' starts, each counted once.

    The aggregate step writes only the slots the sweeper can still read (SLOT_RETENTION back from its clock), so
    slots within an hour of that horizon, which the run may have crossed, are left out.
    """
    if not waits:
        return
    first, last = min(w.started_at for w in waits), max(w.started_at for w in waits)
    horizon = datetime.now(UTC) - SLOT_RETENTION
    surges = SurgeStore(table_name)

    def certain(slot: datetime) -> bool:
        return abs(slot - horizon) > timedelta(hours=1)

    arrivals = Counter(
        {
            (brand, channel, slot): count
            for brand in brands
            for channel, slots in surges.arrivals(brand, slot_start(first), slot_start(last)).items()
            for slot, count in slots.items()
            if count and certain(slot)
        }
    )
    starts = [(w.brand_id, w.channel, slot_start(w.started_at)) for w in waits]
    assert arrivals == Counter(start for start in starts if certain(start[2]) and start[2] > horizon)
