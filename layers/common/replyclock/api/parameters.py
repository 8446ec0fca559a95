"""Query and path parameters shared by several routes, with their OpenAPI descriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from replyclock.models.api import Interval
from replyclock.models.domain import BrandId, Channel, Clock, Priority, WaitStatus

BrandQuery = Annotated[BrandId, Query(description="The brand's id.")]
BrandPath = Annotated[BrandId, Path(description="The brand's id.")]
ChannelQuery = Annotated[Channel | None, Query(description="Only this channel (e.g. x, mastodon, bluesky, reddit).")]
PriorityQuery = Annotated[Priority | None, Query(description="Only waits of this priority.")]
FromQuery = Annotated[
    datetime | None,
    Query(
        alias="from",
        description="Window start, ISO-8601 with a UTC offset (2026-01-31T00:00:00Z). Default: `to` minus 7 days.",
    ),
]
ToQuery = Annotated[datetime | None, Query(description="Window end (exclusive), ISO-8601 with offset. Default: now.")]
ClockQuery = Annotated[Clock, Query(description="Latencies in calendar seconds or in the brand's business seconds.")]
IntervalQuery = Annotated[Interval, Query(description="One point per UTC hour or per UTC day.")]
StatusQuery = Annotated[WaitStatus | None, Query(description="Only conversations whose current wait has this status.")]
