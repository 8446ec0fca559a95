"""The cost of GET /metrics/summary by window length (1-365 days) and by post count (10k, 100k, 1M).

For each post count, that many posts of one brand are simulated over the last 365 days
(10 channels, 4 priorities; 70 % first waits, 30 % next waits; lognormal latencies) and
summed into the buckets the aggregate step would leave: daily buckets for every day, and
hourly ones for the days at the windows' edges (the only hourly buckets a summary reads),
each per channel and priority and brand-wide; and the monthly roll-ups the sweeper leaves
for the months that ended SETTLE_AGE before now (with its watermark).
Buckets are as compaction leaves them (services.compacting): those of the last 50 hours
keep one guard per conversation, older ones none. A second series keeps every guard, as
if buckets were never compacted.

The api function's handler answers events/api_metrics_summary.json in-process; the bucket
Queries are served at the wire from the pre-built items (benchmarks.wire), after checking
on a 2-day window that the served pages answer exactly as moto does. Every answer's
`mentions` must equal the simulated first waits of its window.

Printed per (posts, window): the items the summary read, their size, the read units
DynamoDB would charge, the median handler time, and an estimate of DynamoDB's time.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from benchmarks.wire import (
    CHANNELS,
    NOW,
    REPO_ROOT,
    TABLE_NAME,
    BucketPages,
    Reads,
    item_size,
    median_seconds,
    prepare_environment,
    summary_event,
)

SPAN_DAYS = 365
WINDOWS = (1, 7, 30, 90, 365)
POST_COUNTS = (10_000, 100_000, 1_000_000)
PRIORITY_WEIGHTS = {"urgent": 0.05, "high": 0.15, "normal": 0.6, "low": 0.2}
TARGET_SECONDS = 4 * 3600
# An unfiltered summary also reads the brand's roll-up watermark: one eventually consistent GetItem under 4 KB.
WATERMARK_READ_UNITS = 0.5
# Buckets of periods that started this recently still carry guards after compaction.
GUARDED_AGE = timedelta(hours=50)


@dataclass(frozen=True)
class SimulatedWait:
    number: int  # the conversation it belongs to
    started_at: datetime
    kind: str
    channel: str
    priority: str
    calendar_seconds: float | None  # None: still open

    @property
    def business_seconds(self) -> float | None:
        return None if self.calendar_seconds is None else self.calendar_seconds * 0.4


def simulate(posts: int, seed: int) -> list[SimulatedWait]:
    generator = random.Random(seed)
    priorities, weights = zip(*PRIORITY_WEIGHTS.items(), strict=True)
    span = SPAN_DAYS * 86_400
    waits = []
    for number in range(posts):
        started_at = NOW - timedelta(seconds=generator.random() * span)
        latency = generator.lognormvariate(7.5, 1.3)
        answered_by = started_at + timedelta(seconds=latency)
        waits.append(
            SimulatedWait(
                number=number,
                started_at=started_at,
                kind="first" if generator.random() < 0.7 else "next",
                channel=generator.choice(CHANNELS),
                priority=generator.choices(priorities, weights)[0],
                calendar_seconds=latency if answered_by <= NOW else None,
            )
        )
    return waits


def edge_days() -> set[date]:
    """The days a summary of each window reads hourly buckets for: its partial first and last day."""
    return {(NOW - timedelta(days=days)).date() for days in WINDOWS} | {NOW.date()}


def bucket_dataset(waits: list[SimulatedWait], compacted: bool) -> list[dict[str, Any]]:
    """The stored bucket items these waits make: daily ones, and hourly ones for the edge days (per channel and
    priority, and brand-wide), and the monthly roll-ups of settled months."""
    from replyclock.dal.aggregates import (
        combination_guard_name,
        guard_name,
        guard_value,
        hour_guard_name,
        stored_bucket,
    )
    from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, PeriodKey, RollupKey
    from replyclock.logic.histogram import LatencyHistogram
    from replyclock.models.domain import Priority, WaitKind

    edges = edge_days()
    grouped: dict[PeriodKey, list[SimulatedWait]] = defaultdict(list)
    for wait in waits:
        hourly = BucketKey(
            "acme",
            Granularity.HOUR.label(wait.started_at),
            WaitKind(wait.kind),
            wait.channel,
            Priority(wait.priority),
        )
        grouped[hourly.day()].append(wait)
        grouped[RollupKey.of(hourly).day()].append(wait)
        if wait.started_at.date() in edges:
            grouped[hourly].append(wait)
            grouped[RollupKey.of(hourly)].append(wait)
    items = []
    for key, members in grouped.items():
        answered = [wait for wait in members if wait.calendar_seconds is not None]
        totals = BucketTotals(
            calendar=LatencyHistogram.from_values([wait.calendar_seconds or 0.0 for wait in answered]),
            business=LatencyHistogram.from_values([wait.business_seconds or 0.0 for wait in answered]),
        )
        met = sum((wait.calendar_seconds or 0.0) <= TARGET_SECONDS for wait in answered)
        open_breached = sum(
            wait.calendar_seconds is None and NOW - wait.started_at > timedelta(seconds=TARGET_SECONDS)
            for wait in members
        )
        totals.counters.update(
            {
                "waits": len(members),
                "responded": len(answered),
                "met": met,
                "breached": len(answered) - met + open_breached,
                "open": len(members) - len(answered),
            }
        )
        guards: dict[str, str | int] = {}
        if key.granularity is Granularity.DAY:
            # A daily bucket holds the revision of each of its hours that it follows (at most 24).
            guards = {hour_guard_name(Granularity.HOUR.label(wait.started_at)): 1 for wait in members}
        elif isinstance(key, RollupKey):
            # A brand-wide hour holds the revision of each channel and priority's hour it follows.
            guards = {
                combination_guard_name(
                    BucketKey("acme", key.period, key.kind, wait.channel, Priority(wait.priority))
                ): 1
                for wait in members
            }
        elif not compacted or key.starts_at + key.granularity.length > NOW - GUARDED_AGE:
            guards = {
                guard_name(f"CONV#{wait.channel}#{wait.number}|STATE#acme"): guard_value(2, NOW) for wait in members
            }
        items.append(stored_bucket(key, totals, guards))
    return items + monthly_rollups(items)


def rolled_through() -> date:
    """The last day the sweeper's monthly roll-ups reach at NOW."""
    from replyclock.services.rolling_up import SETTLE_AGE

    return (NOW - SETTLE_AGE).date()


def monthly_rollups(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The monthly roll-ups of the brand-wide daily buckets among `items`, for months that end by rolled_through()."""
    from replyclock.dal.aggregates import period_key_from_item, totals_from_item
    from replyclock.dal.rollups import month_end, stored_rollup
    from replyclock.logic.aggregation import BucketTotals, Granularity, RollupKey

    months: dict[RollupKey, tuple[BucketTotals, dict[str, int]]] = {}
    for item in items:
        key = period_key_from_item(item)
        if not (isinstance(key, RollupKey) and key.granularity is Granularity.DAY):
            continue
        if month_end(key.period[:7]) > rolled_through():
            continue
        month = RollupKey("acme", key.period[:7], key.kind, Granularity.MONTH)
        totals, sources = months.setdefault(month, (BucketTotals(), {}))
        totals.merge(totals_from_item(item))
        sources[key.period[8:]] = int(item["rev"])
    return [stored_rollup(key, totals, sources) for key, (totals, sources) in months.items()]


def watermark_item() -> dict[str, Any]:
    """The roll-up watermark the sweeper leaves: built through rolled_through()."""
    from replyclock.dal.aggregates import WATERMARK_SK
    from replyclock.dal.rollups import WATERMARK_ITEM_TYPE

    through = rolled_through().isoformat()
    return {
        "pk": "AGG#acme",
        "sk": WATERMARK_SK,
        "item_type": WATERMARK_ITEM_TYPE,
        "announced": through,
        "announced_at": int((NOW - timedelta(days=1)).timestamp()),
        "built": through,
    }


def saturated_dataset(window_days: int) -> tuple[list[dict[str, Any]], int]:
    """Brand-wide buckets of a brand so busy that every latency bin the distribution reaches is filled, in every
    channel and priority of every hour.

    However many more posts arrive, a bucket cannot grow past this: its histogram has no bin left to
    add. Returns the items an unfiltered summary of the window reads from (brand-wide days, hours on its
    edge days, monthly roll-ups of its settled months) and the mentions they hold.
    """
    from replyclock.dal.aggregates import combination_guard_name, hour_guard_name, stored_bucket
    from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, RollupKey
    from replyclock.logic.histogram import LatencyHistogram
    from replyclock.models.domain import Priority, WaitKind

    # Every 0.5 % step across the 0.001 %..99.999 % quantiles of the simulated lognormal (mu 7.5, sigma 1.3).
    low, high = math.exp(7.5 - 4.26 * 1.3), math.exp(7.5 + 4.26 * 1.3)
    latencies = [low * 1.005**step for step in range(int(math.log(high / low) / math.log(1.005)) + 1)]
    combinations = [(channel, priority) for channel in CHANNELS for priority in Priority]
    calendar, business = LatencyHistogram(), LatencyHistogram()
    for _ in combinations:
        calendar.merge(LatencyHistogram.from_values(latencies))
        business.merge(LatencyHistogram.from_values([latency * 0.4 for latency in latencies]))
    waits = len(latencies) * len(combinations)
    start = NOW - timedelta(days=window_days)
    periods = [(Granularity.DAY, start + timedelta(days=day)) for day in range(window_days + 1)]
    # The partial edge days, hour by hour: the rest of the first day, and today until now.
    periods += [(Granularity.HOUR, start + timedelta(hours=hour)) for hour in range(24 - start.hour)]
    periods += [(Granularity.HOUR, NOW - timedelta(hours=hour + 1)) for hour in range(NOW.hour)]
    items, mentions = [], 0
    for granularity, moment in periods:
        for kind in WaitKind:
            key = RollupKey("acme", granularity.label(moment), kind, granularity)
            totals = BucketTotals(calendar=calendar.copy(), business=business.copy())
            totals.counters.update({"waits": waits, "responded": waits, "met": waits // 2, "breached": waits // 2})
            if granularity is Granularity.DAY:
                guards = {hour_guard_name(f"{key.period}T{hour:02d}"): 1 for hour in range(24)}
            else:
                guards = {
                    combination_guard_name(BucketKey("acme", key.period, kind, channel, priority)): 1
                    for channel, priority in combinations
                }
            items.append(stored_bucket(key, totals, guards))
            whole_day_inside = granularity is Granularity.DAY and start.date() < moment.date() < NOW.date()
            if kind is WaitKind.FIRST and (whole_day_inside or granularity is Granularity.HOUR):
                mentions += waits
    return items + monthly_rollups(items), mentions


@dataclass
class Cell:
    posts: int
    window_days: int
    compacted: bool
    reads: Reads = field(default_factory=Reads)
    handler_ms: float = 0.0
    mentions: int = 0

    def row(self, page_ms: float) -> str:
        return (
            f"{self.posts:>9,} {self.window_days:>5} d {self.reads.items:>7,} {self.reads.queries:>7}"
            f" {self.reads.pages:>5} {self.reads.megabytes:>7.2f} {self.reads.units:>7,.1f} {self.handler_ms:>10,.0f}"
            f" {self.reads.pages * page_ms:>8,.0f}"
            f" {self.mentions:>9,}"
        )


HEADER = (
    "    posts window   items Queries pages      MB     RCU handler ms  ~DDB ms  mentions\n"
    "                  read                                 (median)  (est.)"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks api_summary", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", default=",".join(str(count) for count in POST_COUNTS), help="post counts")
    parser.add_argument("--windows", default=",".join(str(days) for days in WINDOWS), help="window lengths in days")
    parser.add_argument("--runs", type=int, default=3, help="timed handler runs per cell")
    parser.add_argument("--page-ms", type=float, default=20.0, help="assumed DynamoDB time per Query page (estimate)")
    parser.add_argument(
        "--saturated-windows",
        type=lambda value: [int(days) for days in value.split(",") if days],
        default=[7, 365],
        help="windows (days) of the saturated-bucket ceiling; empty for none",
    )
    parser.add_argument("--uncompacted-window", type=int, default=90, help="window of the never-compacted series")
    arguments = parser.parse_args(argv)
    post_counts = [int(value) for value in arguments.posts.split(",")]
    windows = [int(value) for value in arguments.windows.split(",")]
    if max(windows) > SPAN_DAYS or not set(windows) <= set(WINDOWS):
        parser.error(f"windows must be among {WINDOWS} (the simulated buckets cover their edge days)")
    prepare_environment()

    import boto3
    from moto import mock_aws

    from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
    from devtools.localstack.template import create_table_arguments
    from replyclock.api.dependencies import current_time
    from replyclock.dal import table
    from replyclock.dal.brands import BrandStore
    from replyclock.models.domain import Brand
    from replyclock.settings import get_settings

    table.get_resource.cache_clear()

    table.get_client.cache_clear()
    table.get_table.cache_clear()
    get_settings.cache_clear()
    with mock_aws():
        boto3.client("dynamodb").create_table(**create_table_arguments("Table", TABLE_NAME))
        BrandStore(TABLE_NAME).put(Brand(id="acme", name="Acme"))
        # The roll-up watermark is read with GetItem, which moto answers; the bucket Queries are served below.
        boto3.resource("dynamodb").Table(TABLE_NAME).put_item(Item=watermark_item())
        handler = load_handler(REPO_ROOT / "functions" / "api" / "app.py")
        app = sys.modules["_replyclock_function_api"].app
        app.dependency_overrides[current_time] = lambda: NOW
        client = table.get_client()

        def ask(days: int, expect_ok: bool = True) -> dict[str, Any]:
            response = handler(summary_event(days), FakeLambdaContext(function_name="ApiFunction"))
            assert response["statusCode"] == 200 or not expect_ok, response["body"]
            return {"status": response["statusCode"], **json.loads(response["body"])}

        def measure(pages: BucketPages, cell: Cell, first_starts: list[datetime]) -> Cell:
            since = NOW - timedelta(days=cell.window_days)
            expected = bisect.bisect_right(first_starts, NOW) - bisect.bisect_left(first_starts, since)
            answer = ask(cell.window_days)  # untimed: renders the pages once, as DynamoDB would have them ready
            assert answer["mentions"] == expected, (cell, answer["mentions"], expected)
            pages.reset()
            cell.handler_ms = median_seconds(lambda: ask(cell.window_days), arguments.runs) * 1000
            cell.mentions = answer["mentions"]
            cell.reads = pages.reads_per_request(arguments.runs)
            return cell

        compacted: list[Cell] = []
        uncompacted: list[Cell] = []
        for posts in post_counts:
            waits = simulate(posts, seed=posts)
            first_starts = sorted(wait.started_at for wait in waits if wait.kind == "first")
            for is_compacted in (True, False):
                items = bucket_dataset(waits, compacted=is_compacted)
                pages = BucketPages(items)
                client.meta.events.register_first("before-send.dynamodb.Query", pages)
                if posts == post_counts[0] and is_compacted:
                    _agree_with_moto(pages, items, ask)
                pages.enabled = True
                if is_compacted:
                    sizes = [item_size(item) for item in items]
                    print(
                        f"{posts:,} posts over {SPAN_DAYS} days: {len(items):,} buckets (daily, and hourly on the"
                        f" windows' edge days), {sum(sizes) / len(sizes):,.0f} B each on average",
                        flush=True,
                    )
                    compacted += [measure(pages, Cell(posts, days, True), first_starts) for days in windows]
                else:
                    cell = Cell(posts, arguments.uncompacted_window, False)
                    uncompacted.append(measure(pages, cell, first_starts))
                client.meta.events.unregister("before-send.dynamodb.Query", pages)

        saturated: list[Cell] = []
        for days in arguments.saturated_windows:
            items, mentions = saturated_dataset(days)
            pages = BucketPages(items)
            client.meta.events.register_first("before-send.dynamodb.Query", pages)
            pages.enabled = True
            cell = Cell(0, days, True)
            answer = ask(days)
            assert answer["mentions"] == mentions, (answer["mentions"], mentions)
            pages.reset()
            cell.handler_ms = median_seconds(lambda days=days: ask(days), 1) * 1000
            cell.mentions, cell.reads = mentions, pages.reads_per_request(1)
            saturated.append(cell)
            client.meta.events.unregister("before-send.dynamodb.Query", pages)

    _conclude(compacted, uncompacted, saturated, arguments.page_ms)


def _agree_with_moto(pages: BucketPages, items: list[dict[str, Any]], ask: Any) -> None:
    """The served pages must answer exactly as moto does: compare on 2 days (half, whole, half day)."""
    since = NOW - timedelta(days=2)
    recent = [item for item in items if str(item.get("hour", item.get("day", "")))[:10] >= f"{since:%Y-%m-%d}"]
    import boto3

    with boto3.resource("dynamodb").Table(TABLE_NAME).batch_writer() as writer:
        for item in recent:
            writer.put_item(Item=item)
    pages.enabled = False
    from_moto = ask(2)
    pages.enabled = True
    assert ask(2) == from_moto, "the served pages disagree with moto"
    print(f"served Query pages answer as moto does on a 2-day window ({len(recent):,} buckets)", flush=True)


def _conclude(compacted: list[Cell], uncompacted: list[Cell], saturated: list[Cell], page_ms: float) -> None:
    print(f"summary by window and post count, compacted buckets (items and bytes as DynamoDB counts them):\n{HEADER}")
    for cell in compacted:
        print(cell.row(page_ms))
    if uncompacted:
        print("the same buckets never compacted (every bucket keeps one guard per conversation):")
        for cell in uncompacted:
            print(cell.row(page_ms))
    by_posts: dict[int, dict[int, Cell]] = defaultdict(dict)
    for cell in compacted:
        by_posts[cell.posts][cell.window_days] = cell
    counts = sorted(by_posts)
    print(
        "an unfiltered summary reads brand-wide items only: at most 2 per hour of its partial edge days, 2 per"
        " whole day it has, and 2 per whole settled month; items grow with posts only until every (period, kind)"
        " has one; after that only histogram bins are added, up to their fixed range"
    )
    for fewer, more in zip(counts, counts[1:], strict=False):
        for days in sorted(by_posts[more]):
            low, high = by_posts[fewer][days], by_posts[more][days]
            print(
                f"{days:>3} d, {fewer:,} -> {more:,} posts ({more / fewer:g}x):"
                f" {high.reads.items / max(low.reads.items, 1):.2f}x the items,"
                f" {high.reads.units / max(low.reads.units, 1):.2f}x the RCU,"
                f" {high.handler_ms / max(low.handler_ms, 1e-9):.2f}x the handler time"
            )
    if len(uncompacted) > 1:
        low, high = uncompacted[0], uncompacted[-1]
        print(
            f"never compacted, {high.window_days} d, {low.posts:,} -> {high.posts:,} posts:"
            f" {high.reads.units / max(low.reads.units, 1):.2f}x the RCU,"
            f" {high.handler_ms / max(low.handler_ms, 1e-9):.2f}x the handler time (guards grow with posts)"
        )
    if saturated:
        print("the ceiling: every bucket holding every latency bin the distribution reaches (any post count beyond)")
        for cell in saturated:
            print(f"{'saturated':>9} {cell.row(page_ms)[10:]}")
    _dollars(by_posts)
    _against_targets(by_posts, {cell.window_days: cell for cell in saturated})


def _dollars(by_posts: dict[int, dict[int, Cell]]) -> None:
    """Dollars per million summary requests: read units, and Lambda invocations and GB-seconds of handler time."""
    from benchmarks.billing import (
        DOLLARS_PER_GB_SECOND,
        DOLLARS_PER_INVOCATION,
        DOLLARS_PER_READ_UNIT,
        LAMBDA_MEMORY_GB,
    )

    most = max(by_posts)
    for days in (7, 90, 365):
        cell = by_posts[most].get(days)
        if cell is None:
            continue
        # The Queries' read units, and the eventually consistent GetItem of the roll-up watermark (0.5).
        units = cell.reads.units + WATERMARK_READ_UNITS
        reads = units * DOLLARS_PER_READ_UNIT * 1e6
        compute = cell.handler_ms / 1000 * LAMBDA_MEMORY_GB * DOLLARS_PER_GB_SECOND * 1e6
        invocations = DOLLARS_PER_INVOCATION * 1e6
        print(
            f"$ per million summary requests, {most:,} posts, {days} d: {reads + compute + invocations:.2f}"
            f" = reads {reads:.2f} ({units:g} RCU) + invocations {invocations:.2f}"
            f" + compute {compute:.2f} ({cell.handler_ms:.0f} ms at {LAMBDA_MEMORY_GB * 1024:.0f} MB)"
        )


def _against_targets(by_posts: dict[int, dict[int, Cell]], saturated: dict[int, Cell]) -> None:
    """Issue 12's targets, met or by how much they are missed."""
    checks: list[tuple[str, float, float]] = []
    million, fewest = by_posts.get(1_000_000, {}), by_posts.get(min(by_posts), {})
    if 365 in million:
        cell = million[365]
        checks += [
            ("1M posts, 365 d: items", cell.reads.items, 800),
            ("1M posts, 365 d: MB", cell.reads.megabytes, 2.0),
            ("1M posts, 365 d: median handler ms", cell.handler_ms, 500),
        ]
    if 90 in million:
        cell = million[90]
        checks += [
            ("1M posts, 90 d: items", cell.reads.items, 250),
            ("1M posts, 90 d: handler ms", cell.handler_ms, 150),
        ]
    for days in (90, 365):
        if days in million and days in fewest and min(by_posts) < 1_000_000:
            ratio = million[days].reads.items / max(fewest[days].reads.items, 1)
            checks.append((f"{days} d: items at 1M / at {min(by_posts):,} posts", ratio, 1.2))
    if 365 in saturated:
        checks.append(("saturated, 365 d: handler ms", saturated[365].handler_ms, 2000))
    for name, value, target in checks:
        verdict = "met" if value <= target else f"missed by {value - target:,.2f} ({value / target:.1f}x)"
        print(f"target {name} <= {target:g}: {value:,.2f}, {verdict}")
