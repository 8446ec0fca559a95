"""GET /metrics/summary, /metrics/timeseries, /metrics/distribution: answered from aggregate buckets only.

Each request reads the brand's daily buckets for the whole UTC days of the window and hourly
buckets for the rest (one paginated Query per piece of the window, metrics.read_plan), and folds
them with replyclock.logic.metrics; posts and conversation states are never read.
"""

from __future__ import annotations

from replyclock.api.brands import require_known_brand
from replyclock.api.dependencies import Now, SettingsDependency, Stores, StoresDependency
from replyclock.api.errors import route_responses
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
from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity
from replyclock.models.api import DistributionResponse, Interval, SummaryResponse, TimeseriesResponse
from replyclock.models.domain import Clock
from replyclock.observability import logger

router = new_router()
_ERRORS = route_responses(400, 404)


def read_buckets(
    stores: Stores, brand: str, window: metrics.TimeWindow, *, daily: bool
) -> list[tuple[BucketKey, BucketTotals]]:
    """The brand's buckets covering the window: with `daily`, daily ones for its whole UTC days.

    Every window the API accepts (up to MaxWindowDays) is read whole: whether a request is answered never
    depends on how long reading takes, so an answer cannot change with the load on the machine.
    """
    require_known_brand(stores, brand)
    buckets: list[tuple[BucketKey, BucketTotals]] = []
    for piece in metrics.read_plan(window, daily=daily):
        buckets.extend(_query(stores, brand, piece))
    logger.info("read buckets", brand=brand, hours=window.hours, items=len(buckets))
    return buckets


def _query(stores: Stores, brand: str, piece: metrics.ReadPiece) -> list[tuple[BucketKey, BucketTotals]]:
    if piece.granularity is Granularity.DAY:
        return stores.buckets.query_days(brand, *piece.period_range())
    return stores.buckets.query(brand, *piece.period_range())


@router.get(
    "/metrics/summary",
    summary="First- and next-response figures of a brand over a window",
    description="Counts, response rate, latency percentiles and SLA compliance, merged over every bucket "
    "(hour or day x channel x priority) of the window. The window is widened to whole UTC hours.",
    responses=_ERRORS,
    tags=["metrics"],
)
def get_summary(
    brand: BrandQuery,
    now: Now,
    settings: SettingsDependency,
    stores: StoresDependency,
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    clock: ClockQuery = Clock.CALENDAR,
) -> SummaryResponse:
    window = metrics.aligned(metrics.requested_window(now, from_, to, max_days=settings.max_window_days))
    read = read_buckets(stores, brand, window, daily=True)
    figures = metrics.summarize(metrics.select(read, channel, priority), clock)
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
    # Hourly points need hourly buckets; daily points take daily buckets wherever the window has whole days.
    read = read_buckets(stores, brand, window, daily=interval is Interval.DAY)
    buckets = metrics.select(read, channel, priority)
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
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    clock: ClockQuery = Clock.CALENDAR,
) -> DistributionResponse:
    window = metrics.aligned(metrics.requested_window(now, from_, to, max_days=settings.max_window_days))
    read = read_buckets(stores, brand, window, daily=True)
    buckets = list(metrics.select(read, channel, priority))
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
