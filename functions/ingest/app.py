"""ingest: poll the source named by the EventBridge Scheduler input, {"source_id": "..."}."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from replyclock.models.sources import SourceId
from replyclock.observability import capture_lambda_handler, logger
from replyclock.services.ingesting import ingest
from replyclock.settings import get_settings


class ScheduledPoll(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source_id: SourceId


@logger.inject_lambda_context
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ScheduledPoll.model_validate(event)
    outcome = ingest(
        request.source_id,
        table_name=get_settings().table_name,
        remaining_ms=context.get_remaining_time_in_millis,
        owner=context.aws_request_id,
    )
    return outcome.as_dict()
