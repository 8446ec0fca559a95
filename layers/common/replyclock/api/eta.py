"""GET /brands/{id}/eta: the live wait estimate, from aggregate buckets and the sweeper's open-wait count.

What it reads does not grow with the brand's history, only with how many channels and priorities a
bucket period holds: the trailing 7 days (read as /metrics/summary reads a window: daily buckets for
whole UTC days, hourly ones for the edges; brand-wide items when neither channel nor priority is
asked), 5 windows of 3 hourly buckets (this hour of the week, this week and the 4 before), and one
GetItem of the brand's open-wait count. The estimate itself is replyclock.logic.eta.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from replyclock.api.dependencies import Now, Stores, StoresDependency
from replyclock.api.errors import route_responses
from replyclock.api.metrics import read_buckets
from replyclock.api.parameters import BrandPath, ChannelQuery, PriorityQuery
from replyclock.api.routing import new_router
from replyclock.logic import eta, metrics
from replyclock.logic.aggregation import BucketTotals, Granularity, PeriodKey
from replyclock.models.api import EtaBasedOn, EtaInterval, EtaResponse
from replyclock.models.domain import Priority
from replyclock.observability import logger

router = new_router()
# The share of actual waits the interval is meant to hold (logic.eta: the 5th to 95th percentile).
INTERVAL_COVERAGE = 0.8


def hourly_buckets(
    stores: Stores, brand: str, window: metrics.TimeWindow, *, brand_wide: bool
) -> list[tuple[PeriodKey, BucketTotals]]:
    """The brand's hourly buckets of a window of a few hours (brand-wide ones with `brand_wide`)."""
    first, last = window.hour_range()
    if brand_wide:
        return list(stores.buckets.query_brand_wide(brand, Granularity.HOUR, first, last))
    return list(stores.buckets.query(brand, first, last))


def open_waits(stores: Stores, brand: str, channel: str | None) -> tuple[int | None, datetime | None]:
    """The sweeper's latest count of the brand's (or channel's) open waits, and when it counted them."""
    counted = stores.exposure.get(brand)
    if counted is None:
        return None, None
    if channel is None:
        return counted.open_waits, counted.as_of
    of_channel = counted.channels.get(channel)
    return (of_channel.open_waits if of_channel else 0), counted.as_of


@router.get(
    "/brands/<brand_id>/eta",
    summary="How long a mention arriving now will likely wait for its first response",
    description="The expected first-response time and an 80% interval, from the brand's first responses of the "
    "trailing 7 days and at this hour of the week, with the open backlog and the recent answer rate they were "
    "made alongside. With fewer than 5 answered first waits in the trailing 7 days the answer says so "
    "(basis not_enough_history) rather than invent a number. Filter on a channel and/or a priority to estimate "
    "for a mention of that kind.",
    responses=route_responses(400, 404),
    tags=["brands"],
)
def get_eta(
    brand_id: BrandPath,
    now: Now,
    stores: StoresDependency,
    channel: ChannelQuery = None,
    priority: PriorityQuery = None,
) -> EtaResponse:
    brand_wide = channel is None and priority is None
    recent_window = eta.recent_window(now)
    # read_buckets answers 404 for an unknown brand before it reads anything.
    read = read_buckets(stores, brand_id, recent_window, daily=True, brand_wide=brand_wide, months=False)
    recent = list(metrics.select(read, channel, priority))
    profile = [
        bucket
        for window in eta.profile_windows(now)
        for bucket in metrics.select(hourly_buckets(stores, brand_id, window, brand_wide=brand_wide), channel, priority)
    ]
    waiting, counted_at = open_waits(stores, brand_id, channel)
    history = eta.history_from(recent, profile, recent_hours=recent_window.hours, open_waits=waiting)
    estimate = eta.estimate(history)
    _publish(estimate)
    logger.info("wait estimate", brand=brand_id, basis=estimate.basis.value, buckets=len(recent) + len(profile))
    return response_of(estimate, brand_id, channel, priority, now, counted_at)


def response_of(
    estimate: eta.WaitEstimate,
    brand: str,
    channel: str | None,
    priority: Priority | None,
    now: datetime,
    counted_at: datetime | None,
) -> EtaResponse:
    interval = None
    if estimate.low_seconds is not None and estimate.high_seconds is not None:
        interval = EtaInterval(
            low_seconds=round(estimate.low_seconds, 3),
            high_seconds=round(estimate.high_seconds, 3),
            coverage=INTERVAL_COVERAGE,
        )
    message = None
    if not estimate.has_estimate:
        message = (
            f"not enough history: {estimate.recent_answered} answered first waits in the trailing "
            f"{eta.RECENT_DAYS} days, at least {eta.MIN_ANSWERED} needed"
        )
    return EtaResponse(
        brand=brand,
        channel=channel,
        priority=priority,
        as_of=now,
        basis=estimate.basis.value,
        expected_seconds=None if estimate.expected_seconds is None else round(estimate.expected_seconds, 3),
        interval=interval,
        based_on=EtaBasedOn(
            recent_answered=estimate.recent_answered,
            hour_of_week_answered=estimate.profile_answered,
            answers_per_hour=round(estimate.answers_per_hour, 6),
            open_waits=estimate.open_waits,
            open_waits_as_of=counted_at,
            clearance_seconds=None if estimate.clearance_seconds is None else round(estimate.clearance_seconds, 3),
        ),
        message=message,
    )


def _publish(estimate: eta.WaitEstimate) -> None:
    """One EMF datum per estimate, by basis: a rising share of not_enough_history means brands without data."""
    with single_metric(name="WaitEstimates", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="Basis", value=estimate.basis.value)
