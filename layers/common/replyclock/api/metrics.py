"""GET /metrics/summary, /timeseries, /distribution and /recovery: answered from aggregate buckets only.

Each request reads the brand's daily buckets for the whole UTC days of the window and hourly
buckets for the rest (one paginated Query per piece of the window, metrics.read_plan), and folds
them with replyclock.logic.metrics; posts and conversation states are never read. A request that
filters on no channel or priority reads brand-wide roll-ups (dal.rollups) for the settled days
they reach: one item per kind per day or month instead of one per channel and priority.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from replyclock.logic.aggregation import BucketTotals, Granularity, PeriodKey
from replyclock.models.api import (
    DistributionResponse,
    Interval,
    OpenExposure,
    RecoveryResponse,
    SummaryResponse,
    TimeseriesResponse,
)
from replyclock.models.domain import Clock
from replyclock.observability import logger

router = new_router()
_ERRORS = route_responses(400, 404)


def read_buckets(
    stores: Stores,
    brand: str,
    window: metrics.TimeWindow,
    *,
    daily: bool,
    brand_wide: bool = False,
    months: bool = True,
) -> list[tuple[PeriodKey, BucketTotals]]:
    """The brand's buckets covering the window: with `daily`, daily ones for its whole UTC days.

    With `brand_wide` (a request that filters on no channel or priority), brand-wide buckets are read, and
    (with `months`) monthly roll-ups for the whole months the brand's roll-ups reach.
    Every window the API accepts (up to MaxWindowDays) is read whole: whether a request is answered never
    depends on how long reading takes, so an answer cannot change with the load on the machine.
    """
    require_known_brand(stores, brand)
    rolled_through = None
    if brand_wide and months and metrics.has_whole_days(window, daily=daily):
        rolled_through = stores.rollups.watermark(brand, consistent=False).built
    plan = metrics.read_plan(window, daily=daily, brand_wide=brand_wide, rolled_through=rolled_through, months=months)
    buckets: list[tuple[PeriodKey, BucketTotals]] = []
    for piece in plan:
        buckets.extend(_query(stores, brand, piece))
    logger.info("read buckets", brand=brand, hours=window.hours, items=len(buckets), rolled_through=rolled_through)
    return buckets


def _query(stores: Stores, brand: str, piece: metrics.ReadPiece) -> Sequence[tuple[PeriodKey, BucketTotals]]:
    first, last = piece.period_range()
    if piece.granularity is Granularity.MONTH:
        return stores.rollups.read(brand, first, last)
    if piece.brand_wide:
        return stores.buckets.query_brand_wide(brand, piece.granularity, first, last)
    if piece.granularity is Granularity.DAY:
        return stores.buckets.query_days(brand, first, last)
    return stores.buckets.query(brand, first, last)


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
    read = read_buckets(stores, brand, window, daily=True, brand_wide=channel is None and priority is None)
    figures = metrics.summarize(metrics.select(read, channel, priority), clock)
    return SummaryResponse(
        brand=brand,
        channel=channel,
        priority=priority,
        clock=clock,
        window=window.to_model(),
        exposure=open_exposure(stores, brand, channel) if priority is None else None,
        **figures.model_dump(),
    )


def open_exposure(stores: Stores, brand: str, channel: str | None) -> OpenExposure | None:
    """The sweeper's latest count of the brand's (or channel's) open waits and their exposure: one GetItem."""
    counted = stores.exposure.get(brand)
    if counted is None:
        return None
    if channel is None:
        return OpenExposure(open_waits=counted.open_waits, open_exposure=counted.open_exposure, as_of=counted.as_of)
    of_channel = counted.channels.get(channel)
    return OpenExposure(
        open_waits=of_channel.open_waits if of_channel else 0,
        open_exposure=of_channel.open_exposure if of_channel else 0,
        as_of=counted.as_of,
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
    brand_wide = channel is None and priority is None
    read = read_buckets(stores, brand, window, daily=interval is Interval.DAY, brand_wide=brand_wide, months=False)
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
    read = read_buckets(stores, brand, window, daily=True, brand_wide=channel is None and priority is None)
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


@router.get(
    "/metrics/recovery",
    summary="Do answers turn unhappy customers around, and do faster answers do it more often?",
    description="Answered waits (first and next) whose customer's last post before the answer was negative "
    "(VADER), and how many of those customers' next post was non-negative (recovered), in total and per response "
    "band (under 15 min, 15-60 min, 1-4 h, longer; calendar time). recovery_rate = recovered / followed_up: an "
    "answered customer who has not posted again is counted in no_follow_up, not as a failure. Read from the same "
    "buckets as the summary; waits that started in the window.",
    responses=_ERRORS,
    tags=["metrics"],
)
def get_recovery(
    brand: BrandQuery,
    now: Now,
    settings: SettingsDependency,
    stores: StoresDependency,
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> RecoveryResponse:
    window = metrics.aligned(metrics.requested_window(now, from_, to, max_days=settings.max_window_days))
    read = read_buckets(stores, brand, window, daily=True, brand_wide=channel is None and priority is None)
    overall, by_band = metrics.recovery(metrics.select(read, channel, priority))
    return RecoveryResponse(
        brand=brand,
        channel=channel,
        priority=priority,
        window=window.to_model(),
        by_response_band=by_band,
        **overall.model_dump(),
    )
