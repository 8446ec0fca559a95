"""Roll up: build each brand's brand-wide daily and monthly roll-ups of settled days, and keep them current.

The API reads roll-ups only for days up to the brand's `built` watermark, so those roll-ups must
always equal the daily buckets they sum, even when a late answer or breach changes a daily bucket
of an old day. Two writers keep them so:

- the sweeper (roll_up) builds them, a range of settled days at a time;
- the aggregate step and reconcile (refresh) rebuild the roll-ups of any day they change that roll-ups
  already reach.

The race between them is closed by announcing before building. The aggregate step learns the
watermark with its guards, before it writes; the sweeper first announces a range (`announced`), and
builds it only ANNOUNCE_LEAD later, longer than any aggregate invocation lives. So a daily write by
an invocation that read the watermark before the announcement has landed before the build reads the
daily buckets, and one that read it after refreshes the roll-ups itself, after its write.
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
# A run announces at most this many days, so a brand's first roll-up of a long history is built in steps.
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
    if mark.announced is not None and (mark.built is None or mark.built < mark.announced):
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
    """Build the announced days a month at a time, recording each month as built; the watermark after."""
    assert mark.announced is not None
    first = mark.built + timedelta(days=1) if mark.built else store.first_day(brand_id) or mark.announced
    for month in months_between(first, mark.announced):
        if out_of_time():
            break
        last = min(month_end(month), mark.announced)
        outcome.rollups_written += _rebuild(store, brand_id, max(first, date.fromisoformat(f"{month}-01")), last)
        store.mark_built(brand_id, mark, last)
        mark = Watermark(mark.announced, mark.announced_at, last)
        outcome.built[brand_id] = last.isoformat()
    return mark


def refresh(store: RollupStore, brand_id: str, days: Iterable[date], watermark: Watermark) -> int:
    """Bring the roll-ups of these changed days (and their months) up to date, where roll-ups reach them."""
    if watermark.announced is None:
        return 0
    announced = watermark.announced
    covered = sorted({day for day in days if day <= announced})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return sum(_rebuild(store, brand_id, day, day, announced) for day in covered)
        except ConditionFailed:
            # A roll-up was rebuilt meanwhile (the sweeper, another batch): read again.
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _rebuild(store: RollupStore, brand_id: str, first: date, last: date, announced: date | None = None) -> int:
    """Rebuild the daily roll-ups of first..last, then the monthly ones of their months that roll-ups cover whole."""
    written = store.rebuild_days(brand_id, first, last)
    whole = [month for month in months_between(first, last) if month_end(month) <= (announced or last)]
    if whole:
        written += store.rebuild_months(brand_id, whole[0], whole[-1])
    return written
