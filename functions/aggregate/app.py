"""aggregate: apply conversation-state changes to the hourly and daily buckets, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from replyclock.dal.aggregates import BucketStore
from replyclock.dal.rollups import RollupStore
from replyclock.dal.surges import SurgeStore
from replyclock.observability import capture_lambda_handler, logger, metrics
from replyclock.services.aggregating import apply_state_changes, parse_changes
from replyclock.services.surging import count_arrivals
from replyclock.settings import get_settings

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class ChangeNotApplied(Exception):
    """This record's delta is not in the buckets yet; the stream must deliver it again."""


@logger.inject_lambda_context
@capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    changes, unreadable = parse_changes(records)
    table = get_settings().table_name
    now = datetime.now(UTC)
    outcome = apply_state_changes(BucketStore(table), RollupStore(table), changes, now=now)
    # Arrivals per 5-minute slot, for surges: the same changes, exactly once, in their own items.
    arrivals_failed = count_arrivals(SurgeStore(table), changes, now)
    failed = unreadable | outcome.failed_sequence_numbers | arrivals_failed
    logger.info(
        "applied state changes",
        records=len(records),
        buckets=outcome.buckets_written,
        days_rebuilt=outcome.days_rebuilt,
        rollups=outcome.rollups_written,
        failed=len(failed),
    )

    def confirm_applied(record: DynamoDBRecord) -> None:
        if record.dynamodb is None or record.dynamodb.sequence_number in failed:
            raise ChangeNotApplied(record.dynamodb.sequence_number if record.dynamodb else "unknown")

    return process_partial_response(event=event, record_handler=confirm_applied, processor=processor, context=context)
