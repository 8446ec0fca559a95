"""sweep: every minute, move unanswered waits to at-risk and breached, alert, report open waits, compact buckets,
roll up settled days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from replyclock.dal.aggregates import BucketStore
from replyclock.dal.alert_outbox import AlertOutbox
from replyclock.dal.brands import BrandStore
from replyclock.dal.compaction import CompactionCursorStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.exposure import ExposureStore
from replyclock.dal.notifications import AlertPublisher
from replyclock.dal.open_waits import OpenWaitIndex
from replyclock.dal.posts import PostStore
from replyclock.dal.rollups import RollupStore
from replyclock.dal.surges import SurgeStore
from replyclock.dal.table import Throttled
from replyclock.models.domain import WaitStatus
from replyclock.observability import capture_lambda_handler, logger, metrics
from replyclock.services.compacting import CompactionOutcome, compact_buckets
from replyclock.services.measuring import directory_from
from replyclock.services.rolling_up import RollupOutcome, roll_up
from replyclock.services.surging import SurgeAlert, UnansweredTopPosts, watch_surges
from replyclock.services.sweeping import Alert, brand_exposures, sweep
from replyclock.settings import get_settings

# Compaction starts another hour, and roll-up another month, only with this much time left (a few Queries per brand).
COMPACTION_RESERVE_MILLIS = 20_000


def _count(name: str, brand: str, channel: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    with single_metric(name=name, unit=unit, value=value) as metric:
        metric.add_dimension(name="brand", value=brand)
        metric.add_dimension(name="channel", value=channel)


@dataclass(frozen=True)
class SurgeCounts:
    opened: int
    closed: int


def _watch_surges(
    table_name: str, brand_ids: list[str], now: datetime, publisher: AlertPublisher
) -> SurgeCounts | None:
    """Open and close mention surges (services.surging), alert the openings; None when throttled (next minute)."""

    def publish(alert: SurgeAlert) -> None:
        episode = alert.episode
        publisher.publish(
            alert.subject,
            alert.message(),
            {"alert_id": alert.alert_id, "brand": episode.brand_id, "channel": episode.channel, "status": "surge"},
        )
        _count("MentionSurge", episode.brand_id, episode.channel, 1)

    outbox = AlertOutbox(table_name)
    top_posts = UnansweredTopPosts(OpenWaitIndex(table_name), ConversationStore(table_name), PostStore(table_name))
    try:
        watch = watch_surges(SurgeStore(table_name), brand_ids, now, publish, outbox, top_posts)
    except Throttled:
        # Nothing half-done matters: an opening is claimed before its alert, and the next sweep finishes it.
        logger.warning("surges not evaluated (throttled); the next sweep does")
        return None
    for (brand, channel), ratio in watch.ratios.items():
        _count("SurgeRatio", brand, channel, ratio, MetricUnit.NoUnit)
    # 1 while a surge is open on the channel, 0 once it closed: MentionSurgeAlarm follows the episode.
    for (brand, channel), is_open in watch.open_now.items():
        _count("OpenSurges", brand, channel, int(is_open))
    if watch.failed:
        logger.error("surge alert publish failed; pending until a later sweep delivers it", failed=watch.failed[:5])
    if watch.opened or watch.closed:
        logger.info(
            "surges",
            opened=[episode.surge_id for episode in watch.opened],
            closed=[episode.surge_id for episode in watch.closed],
        )
    return SurgeCounts(len(watch.opened), len(watch.closed))


@logger.inject_lambda_context
@capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    if not settings.alerts_topic_arn:
        raise RuntimeError("ALERTS_TOPIC_ARN is not set: the sweeper has nowhere to send alerts")
    publisher = AlertPublisher(settings.alerts_topic_arn)

    def publish(alert: Alert) -> None:
        publisher.publish(
            alert.subject,
            alert.message(),
            {
                "alert_id": alert.alert_id,
                "brand": alert.wait.brand_id,
                "channel": alert.wait.channel,
                "status": alert.status.value,
            },
        )
        name = "SLABreached" if alert.status is WaitStatus.BREACHED else "SLAAtRisk"
        _count(name, alert.wait.brand_id, alert.wait.channel, 1)
        if alert.status is WaitStatus.BREACHED:
            # The service-wide rollup feeds the compliance alarm, as measure's does.
            metrics.add_metric(name="SLABreached", unit=MetricUnit.Count, value=1)

    brands = BrandStore(settings.table_name).all()
    now = datetime.now(UTC)
    outcome = sweep(
        OpenWaitIndex(settings.table_name),
        ConversationStore(settings.table_name),
        PostStore(settings.table_name),
        directory_from(brands),
        publish,
        now=now,
        outbox=AlertOutbox(settings.table_name),
    )
    if outcome.failed:
        # Still pending: the next sweep publishes them again.
        logger.error(
            "alert publish failed; pending until a later sweep delivers it",
            failed=len(outcome.failed),
            first=[{"alert_id": alert_id, "reason": reason} for alert_id, reason in outcome.failed[:5]],
        )
    metrics.add_metric(name="AlertsPending", unit=MetricUnit.Count, value=len(outcome.failed))
    for (brand, channel), gauge in outcome.gauges.items():
        _count("OpenWaits", brand, channel, gauge.open_waits)
        _count("OldestOpenWaitSeconds", brand, channel, gauge.oldest_open_wait_seconds, MetricUnit.Seconds)
        _count("OpenExposure", brand, channel, gauge.open_exposure)
    # What GET /metrics/summary reports as a brand's open exposure: one item per brand, zeros included.
    exposure_store = ExposureStore(settings.table_name)
    try:
        known = sorted({brand.id for brand in brands} | set(exposure_store.brand_ids()))
        exposure_store.put_all(brand_exposures(outcome.gauges, known, now))
    except Throttled:
        # The alerts are out; the summary shows the previous count (with its as_of) until the next minute.
        logger.warning("open exposure not written (throttled); the next sweep writes it")
    surges = _watch_surges(settings.table_name, [brand.id for brand in brands], now, publisher)
    logger.info(
        "swept",
        alerts=len(outcome.alerts),
        retried=outcome.retried,
        dropped=outcome.dropped,
        open_waits=sum(g.open_waits for g in outcome.gauges.values()),
    )

    # After the alerts, which are due now; compaction can wait for the next minute if time runs short.
    try:
        compaction = compact_buckets(
            BucketStore(settings.table_name),
            CompactionCursorStore(settings.table_name),
            [brand.id for brand in brands],
            now,
            out_of_time=lambda: context.get_remaining_time_in_millis() < COMPACTION_RESERVE_MILLIS,
        )
    except Throttled:
        # Not worth an error alarm: the cursor only moves past finished hours, so the next minute redoes this one.
        logger.warning("compaction throttled; it resumes on the next sweep")
        compaction = CompactionOutcome()
    if compaction.hours:
        logger.info(
            "compacted",
            hours=compaction.hours,
            buckets=compaction.buckets_compacted,
            guards_removed=compaction.guards_removed,
        )
    try:
        rollups = roll_up(
            RollupStore(settings.table_name),
            [brand.id for brand in brands],
            now,
            out_of_time=lambda: context.get_remaining_time_in_millis() < COMPACTION_RESERVE_MILLIS,
        )
    except Throttled:
        # The watermark only moves past finished months, so the next minute goes on from there.
        logger.warning("roll-up throttled; it resumes on the next sweep")
        rollups = RollupOutcome()
    if rollups.announced or rollups.built:
        logger.info("rolled up", announced=rollups.announced, built=rollups.built, written=rollups.rollups_written)
    return {
        "alerts": len(outcome.alerts),
        "alerts_pending": len(outcome.failed),
        "skipped": outcome.skipped,
        "surges_opened": surges.opened if surges else 0,
        "compacted_hours": len(compaction.hours),
        "rollups_written": rollups.rollups_written,
    }
