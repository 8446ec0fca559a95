"""aggregate: apply conversation-state changes to the hourly and daily buckets, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from replyclock.dal.aggregates import BucketStore
from replyclock.models.records import StateChangeRecord
from replyclock.observability import logger, metrics, tracer
from replyclock.services.aggregating import StateChange, apply_state_changes
from replyclock.settings import get_settings

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class ChangeNotApplied(Exception):
    """This record's delta is not in the buckets yet; the stream must deliver it again."""


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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    changes, unreadable = parse_changes(records)
    outcome = apply_state_changes(BucketStore(get_settings().table_name), changes, now=datetime.now(UTC))
    failed = unreadable | outcome.failed_sequence_numbers
    logger.info("applied state changes", records=len(records), buckets=outcome.buckets_written, failed=len(failed))

    def confirm_applied(record: DynamoDBRecord) -> None:
        if record.dynamodb is None or record.dynamodb.sequence_number in failed:
            raise ChangeNotApplied(record.dynamodb.sequence_number if record.dynamodb else "unknown")

    return process_partial_response(event=event, record_handler=confirm_applied, processor=processor, context=context)
