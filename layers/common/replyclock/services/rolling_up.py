"""Roll up: build each brand's monthly roll-ups of settled months, and keep them current.

The API reads a monthly roll-up instead of a month's brand-wide days only for months that end on or
before the brand's `built` watermark, so those roll-ups must always equal the days they sum, even when
a late answer or breach changes a day of an old month. Two writers keep them so:

- the sweeper (roll_up) builds them, month by month, as days settle;
- the aggregate step and reconcile (refresh) rebuild the months of any day they change that the
  watermark already reaches.

The race between them is closed by announcing before building. The aggregate step learns the
watermark with its guards, before it writes; the sweeper first announces a range of days
(`announced`), and builds its months only ANNOUNCE_LEAD later, longer than any aggregate invocation
lives. So a write by an invocation that read the watermark before the announcement has landed
before the build reads the days, and one that read it after rebuilds the month itself, after its write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from replyclock.dal.aggregates import Watermark
from replyclock.dal.rollups import RollupStore, month_end, months_between
from replyclock.dal.table import ConditionFailed
from replyclock.observability import logger

# Days at least this old are rolled up: most answers and breaches of a day come within it.
SETTLE_AGE = timedelta(days=3)
# Longer than any aggregate invocation can run (Lambda's 15-minute maximum), with a margin.
ANNOUNCE_LEAD = timedelta(minutes=20)
# One announcement reaches at most this many days, so a brand's long history is rolled up in steps.
MAX_DAYS_PER_ANNOUNCEMENT = 366
MAX_ATTEMPTS = 5


@dataclass
class RollupOutcome:
    announced: dict[str, str] = field(default_factory=dict)  # brand -> the last day announced
    built: dict[str, str] = field(default_factory=dict)  # brand -> the last day built
    rollups_written: int = 0


def roll_up(
    store: RollupStore, brand_ids: Iterable[str], now: datetime, out_of_time: Callable[[], bool] = lambda: False
) -> RollupOutcome:
    """For each brand: build what was announced long enough ago, then announce the next settled days."""
    outcome = RollupOutcome()
    for brand_id in sorted(set(brand_ids)):
        if out_of_time():
            break
        try:
            _roll_up_brand(store, brand_id, now, out_of_time, outcome)
        except ConditionFailed:
            # Another sweep moved the watermark: it is doing the same work.
            logger.info("roll-up watermark moved meanwhile", brand=brand_id)
    return outcome


def _roll_up_brand(
    store: RollupStore, brand_id: str, now: datetime, out_of_time: Callable[[], bool], outcome: RollupOutcome
) -> None:
    mark = store.watermark(brand_id)
    if mark.announced is not None and mark.built != mark.announced:
        if mark.announced_at is None or now - mark.announced_at < ANNOUNCE_LEAD:
            return
        mark = _build_announced(store, brand_id, mark, out_of_time, outcome)
        if mark.built != mark.announced:
            return  # out of time part-way; the next run goes on
    settled = (now - SETTLE_AGE).date()
    first = mark.announced + timedelta(days=1) if mark.announced else store.first_day(brand_id)
    if first is None or first > settled:
        return
    through = min(settled, first + timedelta(days=MAX_DAYS_PER_ANNOUNCEMENT - 1))
    store.announce(brand_id, mark, through, now)
    outcome.announced[brand_id] = through.isoformat()


def _build_announced(
    store: RollupStore, brand_id: str, mark: Watermark, out_of_time: Callable[[], bool], outcome: RollupOutcome
) -> Watermark:
    """Build the whole months of the announced days one at a time, recording each as built; the watermark after.

    The watermark then reaches the last announced day, so a month it ends inside is built by the next
    announcement, which reaches its end.
    """
    announced = mark.announced
    assert announced is not None
    first = mark.built + timedelta(days=1) if mark.built else store.first_day(brand_id) or announced
    for month in months_between(first, announced):
        if month_end(month) > announced:
            break
        if out_of_time():
            return mark
        outcome.rollups_written += store.rebuild_months(brand_id, month, month)
        mark = _mark_built(store, brand_id, mark, month_end(month), outcome)
    if mark.built != announced:
        mark = _mark_built(store, brand_id, mark, announced, outcome)
    return mark


def _mark_built(store: RollupStore, brand_id: str, mark: Watermark, through: date, outcome: RollupOutcome) -> Watermark:
    store.mark_built(brand_id, mark, through)
    outcome.built[brand_id] = through.isoformat()
    return Watermark(mark.announced, mark.announced_at, through)


def refresh(store: RollupStore, brand_id: str, days: Iterable[date], watermark: Watermark) -> int:
    """Rebuild the monthly roll-ups of these changed days where the watermark reaches their whole month."""
    if watermark.announced is None:
        return 0
    announced = watermark.announced
    months = sorted({f"{day:%Y-%m}" for day in days if month_end(f"{day:%Y-%m}") <= announced})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return sum(store.rebuild_months(brand_id, month, month) for month in months)
        except ConditionFailed:
            # A roll-up was rebuilt meanwhile (the sweeper, another batch): read again.
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")
