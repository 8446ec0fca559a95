"""Reconcile: rebuild a brand's hourly buckets of some UTC days from the exact conversation states, then their days.

Buckets are sums of stream deltas; a delta that never arrived (a parked record whose lane changed again
before the re-drive, a record that left the stream) leaves them off for good. Lanes and archived waits
are exact, so the buckets of any days can be recomputed from them and the difference written.

A rewrite stays exactly-once with the aggregate step running: it moves the guard of every state item it
counted (or that the bucket had counted) to the version it read, so a record still in flight for an
older version is skipped and a newer one adds on top; and it is conditioned on the bucket's revision,
so a delta applied between the read and the rewrite makes it read and recompute again. Each daily
bucket is then rebuilt from its hours, each brand-wide hour from its channels and priorities, each
brand-wide day from its brand-wide hours (BucketStore.rebuild), and the monthly roll-ups of those days
where roll-ups reach them (services.rolling_up.refresh).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from replyclock.dal.aggregates import (
    BucketStore,
    StoredBucket,
    guard_name,
    guard_value,
    guard_version,
    same_sums,
)
from replyclock.dal.conversations import ConversationStore, state_key
from replyclock.dal.rollups import RollupStore
from replyclock.dal.table import ConditionFailed
from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, PeriodKey, RollupKey, totals_by_bucket
from replyclock.models.domain import ConversationState
from replyclock.observability import logger
from replyclock.services.rolling_up import refresh

MAX_ATTEMPTS = 5
# Lanes are found by their first wait's start; by default every lane of the brand is read, so that a
# next wait months after its conversation began is still counted.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rewrite:
    key: BucketKey
    totals: BucketTotals
    guards: dict[str, str]
    read_revision: int


@dataclass
class ReconcileOutcome:
    days: int = 0
    states_read: int = 0
    buckets_read: int = 0
    buckets_rewritten: int = 0
    days_rebuilt: int = 0
    rollups_written: int = 0
    attempts: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def source_key(state: ConversationState) -> str:
    """The state item's "pk|sk", as its stream records name it."""
    key = state_key(state)
    return f"{key['pk']}|{key['sk']}"


def rewrites(
    stored: Mapping[BucketKey, StoredBucket], states: Iterable[ConversationState], days: set[str], now: datetime
) -> list[Rewrite]:
    """The hourly buckets of `days` whose sums or guards differ from what the states say, as they should be."""
    exact: dict[BucketKey, BucketTotals] = defaultdict(BucketTotals)
    counted: dict[BucketKey, set[str]] = defaultdict(set)
    versions: dict[str, int] = {}
    for state in states:
        guard = guard_name(source_key(state))
        versions[guard] = state.version
        for key, totals in totals_by_bucket(state.waits).items():
            if key.period[:10] not in days:
                continue
            exact[key].merge(totals)
            counted[key].add(guard)
    changed: list[Rewrite] = []
    hourly = {key for key in stored if key.granularity is Granularity.HOUR}
    for key in sorted(hourly | set(exact)):
        old = stored.get(key, StoredBucket(BucketTotals(), {}, 0))
        guards = dict(old.guards)
        for guard in counted[key] | (set(old.guards) & set(versions)):
            if guard not in guards or guard_version(guards[guard]) < versions[guard]:
                guards[guard] = guard_value(versions[guard], now)
        totals = exact.get(key, BucketTotals())
        if guards != old.guards or not same_sums(totals, old.totals):
            changed.append(Rewrite(key, totals, guards, old.revision))
    return changed


def reconcile_days(
    conversations: ConversationStore,
    buckets: BucketStore,
    rollups: RollupStore,
    brand_id: str,
    first_day: date,
    last_day: date,
    now: datetime,
    *,
    lanes_since: datetime = EARLIEST,
) -> ReconcileOutcome:
    """Make the brand's buckets of first_day..last_day (UTC) equal what its lanes since `lanes_since` say."""
    days = {(first_day + timedelta(days=n)).isoformat() for n in range((last_day - first_day).days + 1)}
    outcome = ReconcileOutcome(days=len(days))
    until = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        outcome.attempts = attempt
        # Buckets first, states second: a state read later than its bucket is at least as new as the guard.
        stored = buckets.read_days(brand_id, first_day.isoformat(), last_day.isoformat())
        states = conversations.states_of_brand(brand_id, lanes_since, until)
        outcome.states_read, outcome.buckets_read = len(states), len(stored)
        try:
            changed = rewrites(stored, states, days, now)
            for rewrite in changed:
                buckets.rewrite(rewrite.key, rewrite.totals, rewrite.guards, rewrite.read_revision)
                outcome.buckets_rewritten += 1
            hours = {key for key in stored if key.granularity is Granularity.HOUR} | {r.key for r in changed}
            brand_hours = {RollupKey.of(hour) for hour in hours}
            followers: list[list[PeriodKey]] = [
                sorted({key.day() for key in stored} | {hour.day() for hour in hours}),
                sorted(brand_hours),
                sorted({hour.day() for hour in brand_hours}),
            ]
            for level in followers:
                for follower in level:
                    outcome.days_rebuilt += buckets.rebuild(follower) is not None
            # Read after the writes: roll-ups announced since are built from what was just written.
            reconciled = [first_day + timedelta(days=n) for n in range(len(days))]
            outcome.rollups_written += refresh(rollups, brand_id, reconciled, rollups.watermark(brand_id))
        except ConditionFailed:
            # The aggregate step wrote one of these buckets meanwhile: read again; what was rewritten now agrees.
            logger.info("bucket changed while reconciling; reading again", brand=brand_id, attempt=attempt)
            continue
        return outcome
    raise ConditionFailed(f"buckets of {brand_id} kept changing over {MAX_ATTEMPTS} reconcile attempts")
