"""aggregate: add the exact delta of each conversation-state change to its hourly and daily buckets, once.

Daily buckets are roll-ups: each hourly delta is also added to the bucket of its UTC day, through the
same guarded write (one UpdateItem per touched bucket per batch), so both stay exact under redelivery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from replyclock.dal.aggregates import (
    BucketStore,
    GuardedWrite,
    expired_guards,
    guard_name,
    guard_value,
    guard_version,
    write_fits,
)
from replyclock.dal.table import ConditionFailed, StoreError
from replyclock.logic.aggregation import BucketKey, BucketTotals, rolled_up, state_delta
from replyclock.models.domain import ConversationState
from replyclock.models.records import StateChangeRecord
from replyclock.observability import logger

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class StateChange:
    """One stream record of a conversation-state item."""

    sequence_number: str
    source_key: str  # the state item's "pk|sk"
    version: int
    old: ConversationState | None
    new: ConversationState | None
    deltas: dict[BucketKey, BucketTotals] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        hourly = state_delta(self.old, self.new)
        object.__setattr__(self, "deltas", hourly | rolled_up(hourly))


@dataclass
class AggregateOutcome:
    buckets_written: int = 0
    failed_sequence_numbers: set[str] = field(default_factory=set)


def apply_state_changes(store: BucketStore, changes: Sequence[StateChange], now: datetime) -> AggregateOutcome:
    """Sum the changes per bucket and write each bucket once; report the changes whose bucket failed."""
    contributions: dict[BucketKey, list[StateChange]] = defaultdict(list)
    for change in changes:
        for key in change.deltas:
            contributions[key].append(change)
    outcome = AggregateOutcome()
    guards = store.read_guards(contributions) if contributions else {}
    for key in sorted(contributions):
        try:
            outcome.buckets_written += _apply_bucket(store, key, contributions[key], guards[key], now)
        except StoreError:
            outcome.failed_sequence_numbers.update(change.sequence_number for change in contributions[key])
    return outcome


def _apply_bucket(
    store: BucketStore, key: BucketKey, changes: list[StateChange], guards: dict[str, str], now: datetime
) -> int:
    written = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            for write in _guarded_writes(key, changes, guards, now):
                store.apply(write)
                written += 1
            return written
        except ConditionFailed:
            # Another invocation moved one of our guards (or we applied part of the writes): re-read, so
            # nothing it or we applied is applied again.
            if attempt == MAX_ATTEMPTS:
                raise
            guards = store.read_guards([key])[key]
    raise AssertionError("unreachable")


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
