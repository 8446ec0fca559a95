"""GET /health: per ingestion source, when it last polled successfully, how stale that is, and its last error."""

from __future__ import annotations

from datetime import datetime

from replyclock.api.access import current_access
from replyclock.api.dependencies import Now, StoresDependency
from replyclock.api.errors import route_responses
from replyclock.api.routing import new_router
from replyclock.dal.health import SourceRecord, read_sources
from replyclock.dal.sources import SourceStore
from replyclock.models.api import HealthResponse, SourceHealth

router = new_router()


def source_health(record: SourceRecord, now: datetime) -> SourceHealth:
    failing = record.last_error is not None and (
        record.last_success_at is None or record.last_error_at is None or record.last_error_at >= record.last_success_at
    )
    if not record.enabled:
        status = "disabled"
    elif failing:
        status = "failing"
    elif record.last_success_at is None:
        status = "never_succeeded"
    else:
        status = "ok"
    return SourceHealth(
        id=record.source_id,
        status=status,
        last_success_at=record.last_success_at,
        lag_seconds=_seconds_since(record.last_success_at, now),
        newest_post_at=record.newest_post_at,
        newest_post_age_seconds=_seconds_since(record.newest_post_at, now),
        last_error=record.last_error,
        last_error_at=record.last_error_at,
    )


def _seconds_since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 3)


@router.get(
    "/health",
    summary="Ingestion health per source",
    description="Always 200 while the table answers; `status` is degraded when an enabled source is failing "
    "or has never polled successfully. A caller limited to some brands sees only their sources.",
    responses=route_responses(),
    tags=["health"],
)
def get_health(now: Now, stores: StoresDependency) -> HealthResponse:
    records = read_sources(stores.table_name)
    access = current_access()
    if not access.everything:
        # A caller limited to some brands sees the health of those brands' sources only.
        brand_of = {found.source.id: found.source.brand_id for found in SourceStore(stores.table_name).configured()}
        records = access.readable(records, lambda record: brand_of.get(record.source_id))
    sources = [source_health(record, now) for record in records]
    healthy = all(source.status in ("ok", "disabled") for source in sources)
    return HealthResponse(status="ok" if healthy else "degraded", checked_at=now, sources=sources)
