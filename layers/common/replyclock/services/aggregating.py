"""aggregate: add the exact delta of each conversation-state change to its hourly and daily buckets, once.

Days that brand-wide roll-ups already reach (old days a late answer or breach changes) have their
roll-ups rebuilt after (services.rolling_up).

Hourly buckets are written with per-state guards (one UpdateItem per touched bucket per batch). Daily
buckets follow their hours: what a batch added to an hour is added to the day in one UpdateItem per
touched day, conditioned on the day holding exactly the hour revisions it had before; when it does not
(a write it missed, a write applied meanwhile), the day is rebuilt from its 24 hours. A daily bucket so
keeps at most 24 small guards, however many conversations its day had, and stays the sum of its hours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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
    guard_name,
    guard_value,
    guard_version,
    write_fits,
)
from replyclock.dal.rollups import RollupStore
from replyclock.dal.table import ConditionFailed, StoreError
from replyclock.logic.aggregation import BucketKey, BucketTotals, state_delta
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
    days_rebuilt: int = 0
    rollups_written: int = 0
    failed_sequence_numbers: set[str] = field(default_factory=set)


def apply_state_changes(
    store: BucketStore, rollups: RollupStore, changes: Sequence[StateChange], now: datetime
) -> AggregateOutcome:
    """Sum the changes per hourly bucket and write each once, then each touched day and its roll-ups; report failures.

    The roll-up watermarks are read with the guards, before writing (services.rolling_up says why that is enough).
    """
    contributions: dict[BucketKey, list[StateChange]] = defaultdict(list)
    for change in changes:
        for key in change.deltas:
            contributions[key].append(change)
    outcome = AggregateOutcome()
    if not contributions:
        return outcome
    days: dict[BucketKey, list[BucketKey]] = defaultdict(list)
    for key in contributions:
        days[key.day()].append(key)
    read, watermarks = store.read_guards_and_watermarks([*contributions, *days])
    added: dict[BucketKey, HourAdded] = {}
    followed_days: dict[str, set[date]] = defaultdict(set)
    for key in sorted(contributions):
        try:
            added[key], writes = _apply_hour(store, key, contributions[key], read[key], now)
        except StoreError:
            outcome.failed_sequence_numbers.update(change.sequence_number for change in contributions[key])
            continue
        outcome.buckets_written += writes
    for day, hours in sorted(days.items()):
        followed = [added.get(hour) or _unchanged(hour, read[hour]) for hour in hours]
        try:
            done = _follow_hours(store, day, followed, read[day].hours)
        except StoreError:
            outcome.failed_sequence_numbers.update(
                change.sequence_number for hour in hours for change in contributions[hour]
            )
            continue
        outcome.buckets_written += done is not DayWrite.NONE
        outcome.days_rebuilt += done is DayWrite.REBUILT
        followed_days[day.brand_id].add(date.fromisoformat(day.period))
    for brand_id, brand_days in sorted(followed_days.items()):
        try:
            outcome.rollups_written += refresh(rollups, brand_id, brand_days, watermarks[brand_id])
        except StoreError:
            outcome.failed_sequence_numbers.update(
                change.sequence_number
                for day, hours in days.items()
                if day.brand_id == brand_id
                for hour in hours
                for change in contributions[hour]
            )
    return outcome


class DayWrite(Enum):
    NONE = "none"
    ADDED = "added"
    REBUILT = "rebuilt"


def _unchanged(hour: BucketKey, guards: BucketGuards) -> HourAdded:
    return HourAdded(hour, BucketTotals(), guards.revision, guards.revision)


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


def _follow_hours(store: BucketStore, day: BucketKey, hours: list[HourAdded], held: dict[str, int]) -> DayWrite:
    """Bring a daily bucket up to these hours: add what they added, or rebuild it from its hours."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            held = store.read_guards([day])[day].hours
        pending = _to_add(hours, held)
        try:
            if pending is None:
                return DayWrite.REBUILT if store.rebuild_day(day) else DayWrite.NONE
            if not pending:
                return DayWrite.NONE
            try:
                store.add_to_day(day, pending)
            except WriteTooLarge:
                return DayWrite.REBUILT if store.rebuild_day(day) else DayWrite.NONE
            return DayWrite.ADDED
        except ConditionFailed:
            # The day was written meanwhile (another batch's hours): look again.
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _to_add(hours: list[HourAdded], held: dict[str, int]) -> list[HourAdded] | None:
    """The hours whose additions the day still needs; None when the day must be rebuilt from its hours.

    `held` is the revision of each hour the day holds.
    """
    pending = []
    for hour in hours:
        holds = held.get(hour.key.period, 0)
        if holds >= hour.revision_after:
            continue  # nothing new here, or the day is already past it
        if hour.revision_before < 0 or holds != hour.revision_before:
            return None
        pending.append(hour)
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
