"""ingest: the every-minute tick polls every due source; {"source_id": "..."} polls that one source now.

EventBridge Scheduler sends the tick as {} (events/ingest_tick.json); an invocation by hand
(the first poll of a new source, a re-poll) names the source (events/ingest_source.json).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from replyclock.models.sources import SourceId
from replyclock.observability import capture_lambda_handler, logger
from replyclock.services.dispatching import poll_one, tick
from replyclock.services.ingesting import PollContext
from replyclock.settings import get_settings


class IngestRequest(BaseModel):
    # Anything else is a misconfigured invocation, refused before anything is read.
    model_config = ConfigDict(extra="forbid")

    # None: the scheduled tick ({}).
    source_id: SourceId | None = None


@logger.inject_lambda_context
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = IngestRequest.model_validate(event)
    polls = PollContext(
        table_name=get_settings().table_name,
        remaining_ms=context.get_remaining_time_in_millis,
        owner=context.aws_request_id,
    )
    if request.source_id is None:
        return tick(polls).as_dict()
    return poll_one(request.source_id, polls).as_dict()
