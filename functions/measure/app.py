"""measure: recompute the waits of every conversation touched by newly stored posts."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from replyclock.dal.brands import BrandStore
from replyclock.dal.conversations import ConversationStore
from replyclock.logic.recovery import outcome_of
from replyclock.models.domain import Wait, WaitKind, WaitStatus
from replyclock.models.records import PostRecord
from replyclock.observability import capture_lambda_handler, logger, metrics
from replyclock.services.measuring import (
    BrandDirectory,
    directory_from,
    measure_conversation,
    new_posts_by_conversation,
)
from replyclock.settings import get_settings

# Brand configuration changes rarely; a warm container re-reads it at most once a minute.
BRAND_CACHE_SECONDS = 60
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, model=PostRecord)
_brand_cache: tuple[float, BrandDirectory] | None = None


def brand_directory() -> BrandDirectory:
    global _brand_cache
    if _brand_cache is None or time.monotonic() - _brand_cache[0] > BRAND_CACHE_SECONDS:
        _brand_cache = (time.monotonic(), directory_from(BrandStore(get_settings().table_name).all()))
    return _brand_cache[1]


def emit_closed_wait(wait: Wait, breach_already_reported: bool) -> None:
    name = "FirstResponseSeconds" if wait.kind is WaitKind.FIRST else "NextResponseSeconds"
    with single_metric(name=name, unit=MetricUnit.Seconds, value=wait.calendar_seconds or 0.0) as metric:
        metric.add_dimension(name="brand", value=wait.brand_id)
        metric.add_dimension(name="channel", value=wait.channel)
    if breach_already_reported:
        return
    outcome = "SLAMet" if wait.status is WaitStatus.MET else "SLABreached"
    # The service-wide rollup feeds the compliance alarm (met / (met + breached)).
    metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)
    with single_metric(name=outcome, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="brand", value=wait.brand_id)
        metric.add_dimension(name="channel", value=wait.channel)


def emit_followed_up(wait: Wait) -> None:
    """A customer who was negative before the answer posted again: recovered (non-negative) or not."""
    recovery = outcome_of(wait)
    recovered = int(recovery is not None and recovery.recovered)
    # The service-wide rollup feeds the recovery alarm (Recovered / RecoveryFollowUps); per brand for the dashboard.
    metrics.add_metric(name="RecoveryFollowUps", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Recovered", unit=MetricUnit.Count, value=recovered)
    for name, value in (("RecoveryFollowUps", 1), ("Recovered", recovered)):
        with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
            metric.add_dimension(name="brand", value=wait.brand_id)


@logger.inject_lambda_context
@capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    store = ConversationStore(get_settings().table_name)
    brands = brand_directory()
    batch = new_posts_by_conversation(event.get("Records", []))
    measured: set[tuple[str, str]] = set()

    def measure_record(record: PostRecord) -> None:
        image = record.post
        conversation = (image.channel, image.conversation_id)
        # Every post of the batch is already stored (or removed), so one measurement per conversation sees them all.
        if conversation in measured:
            return
        outcome = measure_conversation(store, brands, *conversation, batch.get(conversation) or ())
        measured.add(conversation)
        for wait in outcome.newly_closed:
            emit_closed_wait(wait, (wait.customer, wait.start_post_id) in outcome.breach_already_reported)
        for wait in outcome.newly_followed_up:
            emit_followed_up(wait)
        logger.debug(
            "measured conversation",
            channel=image.channel,
            conversation_id=image.conversation_id,
            whole=outcome.whole,
            written=len(outcome.written),
        )

    return process_partial_response(event=event, record_handler=measure_record, processor=processor, context=context)
