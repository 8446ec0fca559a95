"""redrive: re-apply the stream batches that measure or aggregate parked, or reconcile a brand's buckets.

Invoked by hand (or by an operator's schedule):
  {"target": "measure" | "aggregate", "max_batches": 10}  re-drives parked batches;
  {"reconcile": {"brand": "acme", "first_day": "2026-11-01", "last_day": "2026-11-03"}}  rebuilds that brand's
  hourly and daily buckets of those UTC days from the exact conversation states (after a re-drive, or for
  batches that expired before one).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from replyclock.dal import parked
from replyclock.dal.aggregates import BucketStore
from replyclock.dal.brands import BrandStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.rollups import RollupStore
from replyclock.dal.stream_records import read_range
from replyclock.dal.surges import SurgeStore
from replyclock.observability import capture_lambda_handler, logger
from replyclock.services.measuring import directory_from
from replyclock.services.reconciling import EARLIEST, reconcile_days
from replyclock.services.redriving import Target, aggregate_records, measure_records, redrive, wanted_by
from replyclock.settings import get_settings


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Target
    max_batches: int = Field(default=10, ge=1, le=1000)


MAX_RECONCILE_DAYS = 366


class BucketDays(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brand: str = Field(min_length=1, max_length=64)
    first_day: date
    last_day: date
    # Lanes whose first wait started before this day are not read (default: every lane of the brand).
    lanes_since: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BucketDays:
        if not 0 <= (self.last_day - self.first_day).days < MAX_RECONCILE_DAYS:
            raise ValueError(f"last_day must be first_day or up to {MAX_RECONCILE_DAYS - 1} days after it")
        return self


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reconcile: BucketDays


def reconcile(request: ReconcileRequest) -> dict[str, int]:
    table = get_settings().table_name
    days = request.reconcile
    since = datetime.combine(days.lanes_since, datetime.min.time(), tzinfo=UTC) if days.lanes_since else EARLIEST
    outcome = reconcile_days(
        ConversationStore(table),
        BucketStore(table),
        RollupStore(table),
        days.brand,
        days.first_day,
        days.last_day,
        datetime.now(UTC),
        lanes_since=since,
    )
    logger.info("reconciled buckets", brand=days.brand, outcome=outcome.as_dict())
    return outcome.as_dict()


@logger.inject_lambda_context
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    if "reconcile" in event:
        return reconcile(ReconcileRequest.model_validate(event))
    request = RedriveRequest.model_validate(event)
    settings = get_settings()
    table = settings.table_name
    if request.target is Target.MEASURE:
        queue_url = settings.measure_failure_queue_url
        apply = measure_records(ConversationStore(table), directory_from(BrandStore(table).all()))
    else:
        queue_url = settings.aggregate_failure_queue_url
        apply = aggregate_records(
            BucketStore(table),
            RollupStore(table),
            SurgeStore(table),
            ConversationStore(table),
            now=lambda: datetime.now(UTC),
        )
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
