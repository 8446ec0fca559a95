"""GET /metrics/summary, /metrics/timeseries, /metrics/distribution: answered from hourly aggregates only.

Each request reads the brand's buckets of the window with one (paginated) Query and folds
them with replyclock.logic.metrics; posts and conversation states are never read.
"""

from __future__ import annotations

import time

from replyclock.api.brands import require_known_brand
from replyclock.api.dependencies import Deadline, Now, SettingsDependency, Stores, StoresDependency
from replyclock.api.errors import BadRequest, route_responses
from replyclock.api.parameters import (
    BrandQuery,
    ChannelQuery,
    ClockQuery,
    FromQuery,
    IntervalQuery,
    PriorityQuery,
    ToQuery,
)
from replyclock.api.routing import new_router
from replyclock.logic import metrics
from replyclock.logic.aggregation import BucketKey, BucketTotals
from replyclock.models.api import DistributionResponse, Interval, SummaryResponse, TimeseriesResponse
from replyclock.models.domain import Clock
from replyclock.observability import logger

router = new_router()
_ERRORS = route_responses(400, 404)


def read_buckets(
    stores: Stores, brand: str, window: metrics.TimeWindow, deadline: float
) -> list[tuple[BucketKey, BucketTotals]]:
    """The brand's buckets of the window, read in growing pieces so a window too big to merge in time fails fast.

    Decoding costs ~0.13 ms of CPU per bucket, so a large brand's long window can outlast API Gateway's 30 s;
    after each piece the cost of the rest is projected, and the request refused (400) if it would not fit.
    """
    require_known_brand(stores, brand)
    if window.is_empty:
        return []
    started = time.monotonic()
    buckets: list[tuple[BucketKey, BucketTotals]] = []
    hours_done = 0
    for piece in metrics.segments(window):
        elapsed = time.monotonic() - started
        if started + metrics.projected_seconds(elapsed, hours_done, window.hours - hours_done) > deadline:
            affordable_days = max(1, int(hours_done / elapsed * (deadline - started) / 24)) if elapsed else 1
            logger.warning("window too costly", brand=brand, hours=window.hours, read=len(buckets), seconds=elapsed)
            raise BadRequest(
                f"this brand has too many buckets in {window.hours // 24} days to merge in one request; ask for at "
                f"most about {affordable_days} days (or several shorter windows)",
                "from",
            )
        buckets.extend(stores.buckets.query(brand, *piece.hour_range()))
        hours_done += piece.hours
    logger.info("read buckets", brand=brand, hours=window.hours, items=len(buckets))
    return buckets


@router.get(
    "/metrics/summary",
    summary="First- and next-response figures of a brand over a window",
    description="Counts, response rate, latency percentiles and SLA compliance, merged over every bucket "
    "(hour x channel x priority) of the window. The window is widened to whole UTC hours.",
    responses=_ERRORS,
    tags=["metrics"],
)
def get_summary(
    brand: BrandQuery,
    now: Now,
    settings: SettingsDependency,
    stores: StoresDependency,
    deadline: Deadline,
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    clock: ClockQuery = Clock.CALENDAR,
) -> SummaryResponse:
    window = metrics.aligned(metrics.requested_window(now, from_, to, max_days=settings.max_window_days))
    buckets = metrics.select(read_buckets(stores, brand, window, deadline), channel, priority)
    figures = metrics.summarize(buckets, clock)
    return SummaryResponse(
        brand=brand,
        channel=channel,
        priority=priority,
        clock=clock,
        window=window.to_model(),
        **figures.model_dump(),
    )


@router.get(
    "/metrics/timeseries",
    summary="The summary's figures per hour or per day",
    description="One point per UTC hour or day of the window, empty intervals included. At most "
    f"{metrics.MAX_POINTS} points per request.",
    responses=_ERRORS,
    tags=["metrics"],
)
def get_timeseries(
    brand: BrandQuery,
    now: Now,
    settings: SettingsDependency,
    stores: StoresDependency,
    deadline: Deadline,
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    clock: ClockQuery = Clock.CALENDAR,
    interval: IntervalQuery = Interval.HOUR,
) -> TimeseriesResponse:
    requested = metrics.requested_window(now, from_, to, max_days=settings.max_window_days)
    metrics.check_points(requested, interval)
    window = metrics.aligned(requested, metrics.DAY if interval is Interval.DAY else metrics.HOUR)
    buckets = metrics.select(read_buckets(stores, brand, window, deadline), channel, priority)
    return TimeseriesResponse(
        brand=brand,
        channel=channel,
        priority=priority,
        clock=clock,
        window=window.to_model(),
        interval=interval,
        points=metrics.timeseries(buckets, clock, window, interval),
    )


@router.get(
    "/metrics/distribution",
    summary="First responses by how long they took",
    description="Counts of answered first waits within 15 min, 1 h, 4 h, 24 h and over (bands do not overlap). "
    "Latencies come from log-bucketed histograms, so an answer within 1% of a band edge may count on either side.",
    responses=_ERRORS,
    tags=["metrics"],
)
def get_distribution(
    brand: BrandQuery,
    now: Now,
    settings: SettingsDependency,
    stores: StoresDependency,
    deadline: Deadline,
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    clock: ClockQuery = Clock.CALENDAR,
) -> DistributionResponse:
    window = metrics.aligned(metrics.requested_window(now, from_, to, max_days=settings.max_window_days))
    buckets = list(metrics.select(read_buckets(stores, brand, window, deadline), channel, priority))
    figures = metrics.summarize(buckets, clock)
    return DistributionResponse(
        brand=brand,
        channel=channel,
        priority=priority,
        clock=clock,
        window=window.to_model(),
        responded=figures.responded,
        unanswered=figures.mentions - figures.responded,
        bands=metrics.distribution(metrics.first_response_histogram(buckets, clock)),
    )
