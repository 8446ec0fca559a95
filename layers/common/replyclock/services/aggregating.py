"""aggregate: add the exact delta of each conversation-state change to its buckets, once.

Hourly buckets (one channel and priority) are written with per-state guards (one UpdateItem per
touched bucket per batch). The other buckets follow them: what a batch added to an hour is added to
its day in one UpdateItem per touched day, conditioned on the day holding exactly the hour revisions
it had before; when it does not (a write it missed, a write applied meanwhile), the day is rebuilt
from its 24 hours. A daily bucket so keeps at most 24 small guards, however many conversations its
day had, and stays the sum of its hours. Brand-wide hours follow their channels' and priorities'
hours, and brand-wide days their brand-wide hours, the same way.

Months that the sweeper already rolled up (old days a late answer or breach changes) have their
roll-ups rebuilt after (services.rolling_up).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum
from typing import Any

from pydantic import ValidationError

from replyclock.dal.aggregates import (
    BucketGuards,
    BucketStore,
    GuardedWrite,
    HourAdded,
    WriteTooLarge,
    expired_guards,
    follow_guard_name,
    guard_name,
    guard_value,
    guard_version,
    write_fits,
)
from replyclock.dal.rollups import RollupStore
from replyclock.dal.table import ConditionFailed, StoreError
from replyclock.logic.aggregation import BucketKey, BucketTotals, PeriodKey, RollupKey, state_delta
from replyclock.models.domain import ConversationState
from replyclock.models.records import StateChangeRecord
from replyclock.observability import logger
from replyclock.services.rolling_up import refresh

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class StateChange:
    """One stream record of a conversation-state item."""

    sequence_number: str
    source_key: str  # the state item's "pk|sk"
    version: int
    old: ConversationState | None
    new: ConversationState | None
    deltas: dict[BucketKey, BucketTotals] = field(init=False, compare=False)  # per hourly bucket

    def __post_init__(self) -> None:
        object.__setattr__(self, "deltas", state_delta(self.old, self.new))


@dataclass
class AggregateOutcome:
    buckets_written: int = 0
    days_rebuilt: int = 0  # buckets that follow others (days, brand-wide hours) rebuilt rather than added to
    rollups_written: int = 0
    failed_sequence_numbers: set[str] = field(default_factory=set)


def apply_state_changes(
    store: BucketStore, rollups: RollupStore, changes: Sequence[StateChange], now: datetime
) -> AggregateOutcome:
    """Sum the changes per hourly bucket and write each once, then the buckets that follow them; report failures.

    Followers, in order: each channel and priority's day follows its hours; the brand-wide hour follows its
    channels' and priorities' hours; the brand-wide day follows the brand-wide hours. Monthly roll-ups of
    days the sweeper already rolled up are rebuilt last; their watermark is read with the guards, before
    writing (services.rolling_up says why that is enough).
    """
    contributions: dict[BucketKey, list[StateChange]] = defaultdict(list)
    for change in changes:
        for key in change.deltas:
            contributions[key].append(change)
    outcome = AggregateOutcome()
    if not contributions:
        return outcome
    days = _grouped(contributions, lambda hour: hour.day())
    brand_hours = _grouped(contributions, RollupKey.of)
    brand_days = _grouped(brand_hours, lambda hour: hour.day())
    read, watermarks = store.read_guards_and_watermarks([*contributions, *days, *brand_hours, *brand_days])
    added: dict[PeriodKey, HourAdded] = {}
    for key in sorted(contributions):
        try:
            added[key], writes = _apply_hour(store, key, contributions[key], read[key], now)
        except StoreError:
            outcome.failed_sequence_numbers.update(change.sequence_number for change in contributions[key])
            continue
        outcome.buckets_written += writes
    # The hourly buckets beneath each follower: their records fail with it.
    under: dict[PeriodKey, list[BucketKey]] = {}
    for combination_day, hours in days.items():
        under[combination_day] = hours
    for brand_hour, hours in brand_hours.items():
        under[brand_hour] = hours
    for brand_day, of_day in brand_days.items():
        under[brand_day] = [hour for brand_hour in of_day for hour in brand_hours[brand_hour]]
    followers: list[tuple[PeriodKey, Sequence[PeriodKey]]] = [
        *sorted(days.items()),
        *sorted(brand_hours.items()),
        *sorted(brand_days.items()),
    ]
    for parent, children in followers:
        followed = [added.get(child) or _unchanged(child, read[child]) for child in children]
        try:
            done, added[parent] = _follow(store, parent, followed, read[parent])
        except StoreError:
            outcome.failed_sequence_numbers.update(
                change.sequence_number for hour in under[parent] for change in contributions[hour]
            )
            continue
        outcome.buckets_written += done is not FollowWrite.NONE
        outcome.days_rebuilt += done is FollowWrite.REBUILT
    changed_days: dict[str, set[date]] = defaultdict(set)
    for brand_day in brand_days:
        changed_days[brand_day.brand_id].add(date.fromisoformat(brand_day.period))
    for brand_id, brand_changed in sorted(changed_days.items()):
        try:
            outcome.rollups_written += refresh(rollups, brand_id, brand_changed, watermarks[brand_id])
        except StoreError:
            outcome.failed_sequence_numbers.update(
                change.sequence_number
                for brand_day in brand_days
                if brand_day.brand_id == brand_id
                for hour in under[brand_day]
                for change in contributions[hour]
            )
    return outcome


def _grouped[Child: (BucketKey, RollupKey), Parent: (BucketKey, RollupKey)](
    children: Iterable[Child], parent_of: Callable[[Child], Parent]
) -> dict[Parent, list[Child]]:
    groups: dict[Parent, list[Child]] = defaultdict(list)
    for child in children:
        groups[parent_of(child)].append(child)
    return groups


class FollowWrite(Enum):
    NONE = "none"
    ADDED = "added"
    REBUILT = "rebuilt"


def _unchanged(key: PeriodKey, guards: BucketGuards) -> HourAdded:
    return HourAdded(key, BucketTotals(), guards.revision, guards.revision)


def _apply_hour(
    store: BucketStore, key: BucketKey, changes: list[StateChange], guards: BucketGuards, now: datetime
) -> tuple[HourAdded, int]:
    """Write the changes' deltas to one hourly bucket: what was added with the revisions around it, and the writes.

    revision_before is -1 when another invocation wrote the hour between our writes: what the hour then
    holds is not only ours to add to its day, which is rebuilt instead.
    """
    totals = BucketTotals()
    revision_before = revision = guards.revision
    writes = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            for write in _guarded_writes(key, changes, guards.guards, now):
                _, written = store.apply(write)
                totals.merge(write.totals)
                writes += 1
                if written != revision + 1:
                    revision_before = -1
                revision = written
            return HourAdded(key, totals, revision_before, revision), writes
        except ConditionFailed:
            # Another invocation moved one of our guards (or we applied part of the writes): re-read, so
            # nothing it or we applied is applied again.
            if attempt == MAX_ATTEMPTS:
                raise
            guards = store.read_guards([key])[key]
            if guards.revision != revision:
                revision_before = -1
            revision = guards.revision
    raise AssertionError("unreachable")


def _follow(
    store: BucketStore, parent: PeriodKey, children: list[HourAdded], guards: BucketGuards
) -> tuple[FollowWrite, HourAdded]:
    """Bring a following bucket up to these children: add what they added, or rebuild it from them.

    Returns what was done and what the parent gained, for the bucket that follows it in turn.
    """
    held, revision = guards.followed, guards.revision
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            fresh = store.read_guards([parent])[parent]
            held, revision = fresh.followed, fresh.revision
        pending = _to_add(parent, children, held)
        try:
            if pending is None:
                return _rebuilt(store, parent, revision)
            if not pending:
                return FollowWrite.NONE, HourAdded(parent, BucketTotals(), revision, revision)
            try:
                after = store.follow(parent, pending)
            except WriteTooLarge:
                return _rebuilt(store, parent, revision)
            totals = BucketTotals()
            for child in pending:
                totals.merge(child.totals)
            return FollowWrite.ADDED, HourAdded(parent, totals, after - 1, after)
        except ConditionFailed:
            # The parent was written meanwhile (another batch's children): look again.
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _rebuilt(store: BucketStore, parent: PeriodKey, revision: int) -> tuple[FollowWrite, HourAdded]:
    after = store.rebuild(parent)
    if after is None:
        return FollowWrite.NONE, HourAdded(parent, BucketTotals(), revision, revision)
    # What the parent now holds is not one known addition: whatever follows it rebuilds too.
    return FollowWrite.REBUILT, HourAdded(parent, BucketTotals(), -1, after)


def _to_add(parent: PeriodKey, children: list[HourAdded], held: dict[str, int]) -> list[HourAdded] | None:
    """The children whose additions the parent still needs; None when the parent must be rebuilt from them.

    `held` is the revision of each child the parent holds, by guard name.
    """
    pending = []
    for child in children:
        holds = held.get(follow_guard_name(parent, child.key), 0)
        if holds >= child.revision_after:
            continue  # nothing new here, or the parent is already past it
        if child.revision_before < 0 or holds != child.revision_before:
            return None
        pending.append(child)
    return pending


def _guarded_writes(
    key: BucketKey, changes: list[StateChange], guards: dict[str, str], now: datetime
) -> list[GuardedWrite]:
    """One write for the bucket, or several when DynamoDB's expression limits need it.

    A write moves the guards of the conversations whose deltas it adds, so splitting by
    conversation keeps every part exactly-once on its own.
    """
    write = _guarded_write(key, changes, guards, now)
    if write is None:
        return []
    sources = sorted({change.source_key for change in changes})
    if write_fits(write) or len(sources) == 1:
        return [write]
    first_half = set(sources[: len(sources) // 2])
    first = [change for change in changes if change.source_key in first_half]
    rest = [change for change in changes if change.source_key not in first_half]
    # Expired guards are pruned once, by the first part.
    return _guarded_writes(key, first, guards, now) + [
        replace(part, guards_expired={}) for part in _guarded_writes(key, rest, guards, now)
    ]


def _guarded_write(
    key: BucketKey, changes: list[StateChange], guards: dict[str, str], now: datetime
) -> GuardedWrite | None:
    totals = BucketTotals()
    applied_versions: dict[str, int] = {}
    for change in sorted(changes, key=lambda change: (change.source_key, change.version)):
        guard = guard_name(change.source_key)
        applied = max(applied_versions.get(guard, -1), guard_version(guards[guard]) if guard in guards else -1)
        if change.version <= applied:
            continue
        totals.merge(change.deltas[key])
        applied_versions[guard] = change.version
    if not applied_versions:
        return None
    written = {guard: guard_value(version, now) for guard, version in applied_versions.items()}
    return GuardedWrite(
        key=key,
        totals=totals,
        guards_read={guard: guards[guard] for guard in written if guard in guards},
        guards_written=written,
        guards_expired=expired_guards(guards, now, keep=written),
    )


def parse_changes(records: list[dict[str, Any]]) -> tuple[list[StateChange], set[str]]:
    """Parse the batch; a record that cannot be read blocks the later records of the same item.

    Applying a later version of an item before an earlier one would move its guard past
    the earlier delta, which would then never be counted.
    """
    changes: list[StateChange] = []
    unreadable: set[str] = set()
    blocked_items: set[str] = set()
    block_everything = False
    for raw in records:
        sequence_number = str(raw.get("dynamodb", {}).get("SequenceNumber", ""))
        item = _item_key(raw)
        if block_everything or item in blocked_items:
            unreadable.add(sequence_number)
            continue
        try:
            record = StateChangeRecord.model_validate(raw)
            new = record.dynamodb.NewImage
            old = record.dynamodb.OldImage
            changes.append(
                StateChange(
                    sequence_number=record.dynamodb.SequenceNumber,
                    source_key=new.source_key,
                    version=new.version,
                    old=old.to_state() if old else None,
                    new=new.to_state(),
                )
            )
        except (ValidationError, ValueError) as error:
            logger.error("unreadable state change", sequence_number=sequence_number, error=str(error))
            unreadable.add(sequence_number)
            if item is None:
                block_everything = True
            else:
                blocked_items.add(item)
    return changes, unreadable


def _item_key(raw: dict[str, Any]) -> str | None:
    keys = raw.get("dynamodb", {}).get("Keys", {})
    try:
        return f"{keys['pk']['S']}|{keys['sk']['S']}"
    except (KeyError, TypeError):
        return None
