"""redrive: re-apply the stream batches that measure or aggregate parked on their on-failure queues.

Invoked by hand (or by an operator's schedule): {"target": "measure" | "aggregate", "max_batches": 10}.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from replyclock.dal import parked
from replyclock.dal.aggregates import BucketStore
from replyclock.dal.brands import BrandStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.stream_records import read_range
from replyclock.observability import logger, tracer
from replyclock.services.measuring import directory_from
from replyclock.services.redriving import Target, aggregate_records, measure_records, redrive, wanted_by
from replyclock.settings import get_settings


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Target
    max_batches: int = Field(default=10, ge=1, le=1000)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    request = RedriveRequest.model_validate(event)
    settings = get_settings()
    table = settings.table_name
    if request.target is Target.MEASURE:
        queue_url = settings.measure_failure_queue_url
        apply = measure_records(ConversationStore(table), directory_from(BrandStore(table).all()))
    else:
        queue_url = settings.aggregate_failure_queue_url
        apply = aggregate_records(BucketStore(table), now=lambda: datetime.now(UTC))
    if not queue_url:
        raise RuntimeError(f"no on-failure queue configured for {request.target.value}")
    outcome = redrive(
        parked.receive(queue_url, request.max_batches),
        read=read_range,
        wanted=wanted_by(request.target),
        apply=apply,
        remove=functools.partial(parked.delete, queue_url),
    )
    logger.info("re-drove parked batches", target=request.target.value, outcome=outcome.as_dict())
    return outcome.as_dict()
