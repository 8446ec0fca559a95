"""Re-drive: read each parked batch back from the stream and apply it again, as its consumer would.

A stream consumer that exhausts its retries parks the batch's coordinates (shard, first and last
sequence number) on its on-failure queue. Re-applying those records is safe at any time: measure
recomputes lanes from the stored posts; aggregate's guards let each change into a bucket once, and the
days the re-driven changes touched are then reconciled from the exact lanes (a change whose lane moved on
since it was parked would otherwise be skipped by its guard).
A batch leaves the queue only when every record of it was applied; one the stream no longer holds
(records live 24 hours) stays, counted as expired, for a reconcile of its buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from replyclock.dal.aggregates import BucketStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.parked import ParkedMessage
from replyclock.dal.rollups import RollupStore
from replyclock.dal.stream_records import RecordsExpired, ShardRange
from replyclock.dal.surges import SurgeStore
from replyclock.dal.table import StoreError
from replyclock.models.records import PostRecord, is_post_change, is_state_change
from replyclock.observability import logger
from replyclock.services.aggregating import apply_state_changes, parse_changes
from replyclock.services.measuring import BrandDirectory, measure_conversation, new_posts_by_conversation
from replyclock.services.reconciling import reconcile_days
from replyclock.services.surging import count_arrivals

Records = list[dict[str, Any]]
# Applies records; returns the sequence numbers of those not applied.
Apply = Callable[[Records], set[str]]


class Target(StrEnum):
    MEASURE = "measure"
    AGGREGATE = "aggregate"


class _BatchInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shardId: str  # noqa: N815 - Lambda's field names
    startSequenceNumber: str  # noqa: N815
    endSequenceNumber: str  # noqa: N815
    streamArn: str  # noqa: N815


class _ParkedBatch(BaseModel):
    """Lambda's on-failure record of a stream batch (only what re-driving needs)."""

    model_config = ConfigDict(extra="ignore")

    DDBStreamBatchInfo: _BatchInfo


@dataclass
class RedriveOutcome:
    batches: int = 0
    records: int = 0
    # Batches whose every record is now applied (and so removed from the queue).
    redriven: int = 0
    still_failing: int = 0
    expired: int = 0
    unreadable: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def redrive(
    messages: Iterable[ParkedMessage],
    *,
    read: Callable[[ShardRange], Records],
    wanted: Callable[[dict[str, Any]], bool],
    apply: Apply,
    remove: Callable[[ParkedMessage], None],
) -> RedriveOutcome:
    outcome = RedriveOutcome()
    for message in messages:
        outcome.batches += 1
        try:
            info = _ParkedBatch.model_validate(message.body).DDBStreamBatchInfo
        except ValidationError:
            outcome.unreadable += 1
            logger.error("parked message is not a stream batch", body=message.raw[:500])
            continue
        batch = ShardRange(info.streamArn, info.shardId, info.startSequenceNumber, info.endSequenceNumber)
        try:
            records = [record for record in read(batch) if wanted(record)]
        except RecordsExpired:
            outcome.expired += 1
            logger.warning("parked batch has left the stream; reconcile its buckets", shard_id=info.shardId)
            continue
        outcome.records += len(records)
        failed = apply(records)
        if failed:
            outcome.still_failing += 1
            logger.warning("re-driven batch still fails", shard_id=info.shardId, failed=len(failed))
            continue
        remove(message)
        outcome.redriven += 1
    return outcome


def wanted_by(target: Target) -> Callable[[dict[str, Any]], bool]:
    """The records the target's event-source mapping delivers (its FilterCriteria)."""
    return is_post_change if target is Target.MEASURE else is_state_change


def measure_records(store: ConversationStore, brands: BrandDirectory) -> Apply:
    def apply(records: Records) -> set[str]:
        failed: set[str] = set()
        by_conversation: dict[tuple[str, str], list[str]] = {}
        for record in records:
            sequence_number = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
            try:
                image = PostRecord.model_validate(record).post
            except ValueError:
                failed.add(sequence_number)
                continue
            by_conversation.setdefault((image.channel, image.conversation_id), []).append(sequence_number)
        new_posts = new_posts_by_conversation(records)
        for conversation, sequence_numbers in sorted(by_conversation.items()):
            try:
                measure_conversation(store, brands, *conversation, new_posts.get(conversation) or ())
            except Exception:  # noqa: BLE001 - whatever fails stays parked, logged with its conversation
                logger.exception("re-driven conversation failed", channel=conversation[0])
                failed.update(sequence_numbers)
        return failed

    return apply


def aggregate_records(
    store: BucketStore,
    rollups: RollupStore,
    surges: SurgeStore,
    conversations: ConversationStore,
    now: Callable[[], datetime],
) -> Apply:
    """Re-apply parked state changes (to the buckets and the surge slots, as aggregate does), then reconcile the days
    they touched.

    Re-applying alone is not enough: when a lane changed again after its record was parked, the later
    change moved the bucket's guard past it and the re-applied delta is skipped. Reconciling the
    brand's days that the parked changes touched rebuilds those buckets from the exact lanes.
    """

    def apply(records: Records) -> set[str]:
        changes, unreadable = parse_changes(records)
        failed = unreadable | apply_state_changes(store, rollups, changes, now=now()).failed_sequence_numbers
        failed |= count_arrivals(surges, changes, now())
        days: dict[str, set[date]] = defaultdict(set)
        for change in changes:
            for state in (change.old, change.new):
                for wait in state.waits if state else []:
                    days[wait.brand_id].add(wait.started_at.astimezone(UTC).date())
        for brand_id, touched in sorted(days.items()):
            try:
                reconcile_days(conversations, store, rollups, brand_id, min(touched), max(touched), now())
            except StoreError:
                logger.exception("reconciling re-driven days failed", brand=brand_id)
                failed.update(change.sequence_number for change in changes)
        return failed

    return apply
