"""compact: prune the guards of buckets that stopped changing, so a bucket's size stops growing with its waits.

A bucket keeps one guard per conversation state that changed it (services.aggregating).
A guard only matters while a stream record of that change can still be redelivered:
records live 24 hours, so guards are expired after GUARD_RETENTION (48 h). The aggregate
step prunes expired guards whenever it writes a bucket, but most buckets stop being
written a few hours after their period: their guards would stay, and a summary would
read (and pay for) one guard per conversation of the window, growing with post count.

So the sweeper, once per hour of data, visits the buckets of an hour that is now past
retention (and again a week later, for answers and breaches that came days late) and
removes their expired guards, each removal conditioned on the guard still holding the
value read. After that a bucket holds counters and histogram bins only, whose number
does not depend on how many posts went into it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from replyclock.dal.aggregates import GUARD_RETENTION, BucketStore, expired_guards
from replyclock.dal.compaction import CompactionCursorStore
from replyclock.dal.table import ConditionFailed
from replyclock.logic.aggregation import Granularity

# An hour's buckets are visited once the writes of its first two hours (most answers) are past retention,
FIRST_PASS_AGE = GUARD_RETENTION + timedelta(hours=2)
# and again when those of its first six days are.
SECOND_PASS_AGE = timedelta(days=8)
# Catching up after an outage goes this many hours per run, so one run stays short.
MAX_HOURS_PER_RUN = 6


@dataclass
class CompactionOutcome:
    hours: list[str] = field(default_factory=list)
    buckets_compacted: int = 0
    guards_removed: int = 0


def compact_buckets(
    store: BucketStore,
    cursor: CompactionCursorStore,
    brand_ids: Iterable[str],
    now: datetime,
    out_of_time: Callable[[], bool] = lambda: False,
) -> CompactionOutcome:
    """Compact the hours after the cursor that are old enough, oldest first, moving the cursor after each."""
    brands = sorted(set(brand_ids))
    outcome = CompactionOutcome()
    previous = cursor.load()
    for hour in _hours_due(previous, now):
        if not _compact_hour(store, brands, hour, now, outcome, out_of_time):
            # Out of time part-way: the cursor stays, and the next run does this hour again (removals are idempotent).
            break
        label = Granularity.HOUR.label(hour)
        try:
            cursor.advance(previous, label, now)
        except ConditionFailed:
            # Another sweep moved the cursor: it is compacting the same hours, and removals are idempotent.
            break
        previous = label
        outcome.hours.append(label)
    return outcome


def _compact_hour(
    store: BucketStore,
    brands: list[str],
    hour: datetime,
    now: datetime,
    outcome: CompactionOutcome,
    out_of_time: Callable[[], bool],
) -> bool:
    """Compact every brand's buckets of this hour (first pass) and of the hour a week before it (second pass)."""
    # Daily buckets keep one guard per hour, not per state: they never need compacting.
    periods = [Granularity.HOUR.label(visited) for visited in (hour, hour - (SECOND_PASS_AGE - FIRST_PASS_AGE))]
    for brand_id in brands:
        if out_of_time():
            return False
        for period in periods:
            _compact_period(store, brand_id, period, now, outcome)
    return True


def _hours_due(previous: str | None, now: datetime) -> list[datetime]:
    newest = (now - FIRST_PASS_AGE).replace(minute=0, second=0, microsecond=0)
    if previous is None:
        return [newest]
    first = Granularity.HOUR.start_of(previous) + timedelta(hours=1)
    hours: list[datetime] = []
    while first <= newest and len(hours) < MAX_HOURS_PER_RUN:
        hours.append(first)
        first += timedelta(hours=1)
    return hours


def _compact_period(store: BucketStore, brand_id: str, hour: str, now: datetime, outcome: CompactionOutcome) -> None:
    for key, guards in store.guards_of_period(brand_id, Granularity.HOUR, hour).items():
        expired = expired_guards(guards, now)
        if expired:
            outcome.guards_removed += store.remove_guards(key, expired)
            outcome.buckets_compacted += 1
