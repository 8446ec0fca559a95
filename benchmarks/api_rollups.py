"""The cost of GET /metrics/summary over 90 days, 10 channels x 4 priorities: hourly buckets alone vs daily roll-ups.

The dataset is a dense 90 days of hourly buckets and their daily roll-ups (each daily item
is the sum of its day's hourly items, guards included, as the aggregate step leaves it).
The summary is asked for twice: "before", reading hourly buckets only (as the API did
before daily buckets existed: its read plan without daily buckets), and "after", reading
daily buckets for the window's whole UTC days and hourly ones for its partial first and
last days. Both answers must be identical.

The api function's handler answers events/api_metrics_summary.json in-process, against a
moto table made from template.yaml (the brand is read from moto). moto needs ~2.7 ms per
bucket to serialise a Query response (over 7 minutes for a dense 90-day summary), which
says nothing about DynamoDB, so for the timed runs the bucket Query pages are served at
the wire instead: pre-built bucket items, paged at 1 MB in DynamoDB's JSON exactly as
DynamoDB sends them, through botocore's before-send hook. The handler still does all it
does on Lambda (request signing, response parsing, DynamoDB type decoding, merging,
percentiles, the response model); only DynamoDB's own service time is left out, and it is
estimated per page. Before timing, a two-day window (one whole day, two half days) is
answered both ways and must agree; --moto-query also times the handler against moto
itself, on every bucket (slow).

Printed, for each way of reading: the median handler time, the items the summary read,
their size, and the read units DynamoDB would charge.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from benchmarks.wire import (
    CHANNELS,
    NOW,
    REPO_ROOT,
    TABLE_NAME,
    BucketPages,
    Reads,
    dynamodb_size,
    item_size,
    median_seconds,
    prepare_environment,
    summary_event,
)


def bucket_items(days: int, channels: int, kinds: tuple[str, ...], seed: int = 7) -> Iterator[dict[str, Any]]:
    """Stored bucket items: a few waits each, with their latency bins, sums and one guard per conversation state."""
    from replyclock.dal.aggregates import BUCKET_ITEM_TYPE, bucket_item_key, guard_name, guard_value
    from replyclock.logic.aggregation import BucketKey
    from replyclock.logic.histogram import LatencyHistogram
    from replyclock.models.domain import Priority, WaitKind

    generator = random.Random(seed)
    start = NOW.replace(minute=0) - timedelta(days=days)
    for hour in range(days * 24):
        label = (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H")
        for channel in CHANNELS[:channels]:
            for priority in Priority:
                for kind in kinds:
                    key = BucketKey("acme", label, WaitKind(kind), channel, priority)
                    waits = generator.randint(1, 6)
                    latencies = [generator.lognormvariate(7.5, 1.3) for _ in range(waits)]
                    met = sum(latency < 4 * 3600 for latency in latencies)
                    item: dict[str, Any] = {
                        **bucket_item_key(key),
                        "item_type": BUCKET_ITEM_TYPE,
                        "brand_id": key.brand_id,
                        "hour": key.period,
                        "n_waits": waits,
                        "n_responded": waits,
                        "n_met": met,
                    }
                    if waits - met:
                        item["n_breached"] = waits - met
                    for prefix, scale in (("c", 1.0), ("b", 0.4)):
                        histogram = LatencyHistogram.from_values([latency * scale for latency in latencies])
                        bins, _, total = histogram.to_bins()
                        item.update({f"{prefix}{index}": count for index, count in bins.items()})
                        item[f"{prefix}sum"] = Decimal(str(round(total, 3)))
                    for position in range(waits):
                        source = f"CONV#{channel}#{hour}-{position}|STATE#acme"
                        item[guard_name(source)] = guard_value(2, start + timedelta(hours=hour, days=2))
                    yield item


def daily_items(hourly: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The daily roll-ups of hourly items, as the aggregate step leaves them: numbers added, guards kept."""
    from replyclock.dal.aggregates import BUCKET_ITEM_TYPE, GUARD_PREFIX, bucket_item_key, bucket_key_from_item

    days: dict[Any, dict[str, Any]] = {}
    for item in hourly:
        key = bucket_key_from_item(item).day()
        day = days.setdefault(
            key, {**bucket_item_key(key), "item_type": BUCKET_ITEM_TYPE, "brand_id": key.brand_id, "day": key.period}
        )
        for name, value in item.items():
            if name.startswith(GUARD_PREFIX):
                day[name] = max(day.get(name, value), value)
            elif name not in ("pk", "sk", "item_type", "brand_id", "hour"):
                day[name] = day.get(name, 0) + value
    return list(days.values())


def guard_share(items: Iterable[dict[str, Any]]) -> float:
    """The part of the items' size that is guards (one per conversation state that changed the bucket)."""
    from replyclock.dal.aggregates import GUARD_PREFIX

    total = guards = 0
    for item in items:
        total += item_size(item)
        guards += sum(len(name) + dynamodb_size(value) for name, value in item.items() if name.startswith(GUARD_PREFIX))
    return guards / total if total else 0.0


def check_item_shape(item: dict[str, Any], granularity: str) -> None:
    """The bench writes items itself; the DAL's own reader must read back what was meant."""
    from replyclock.dal.aggregates import bucket_key_from_item, totals_from_item

    totals = totals_from_item(item)
    key = bucket_key_from_item(item)
    assert key.brand_id == "acme" and key.granularity == granularity and totals.counters["waits"] == item["n_waits"]
    assert totals.calendar.count == item["n_responded"] and totals.business.count == item["n_responded"]


@dataclass
class Measured:
    """One way of reading the window, timed: the handler's median time and what its Queries read."""

    name: str
    handler_seconds: float = 0.0
    cpu_seconds: float = 0.0
    reads: Reads = field(default_factory=Reads)
    moto_seconds: float | None = None

    def report(self, page_ms: float) -> str:
        return (
            f"{self.name}: median handler time {self.handler_seconds * 1000:,.0f} ms"
            f" (CPU {self.cpu_seconds * 1000:,.0f} ms),"
            f" + ~{self.reads.pages * page_ms:,.0f} ms DynamoDB at {page_ms:g} ms/page;"
            f" items read {self.reads.items:,} buckets + 1 brand item, in {self.reads.queries} Queries of"
            f" {self.reads.pages} pages ({self.reads.megabytes:.1f} MB, {self.reads.units:,.0f} RCU eventually"
            " consistent + 1 RCU for the brand)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks api_rollups", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--channels", type=int, default=10, choices=range(1, len(CHANNELS) + 1))
    parser.add_argument("--kinds", default="first,next", help="wait kinds with buckets: first,next or first")
    parser.add_argument("--runs", type=int, default=3, help="timed handler runs")
    parser.add_argument("--page-ms", type=float, default=20.0, help="assumed DynamoDB time per Query page (estimate)")
    parser.add_argument("--moto-query", action="store_true", help="also time one run against moto itself (slow)")
    arguments = parser.parse_args(argv)
    prepare_environment()
    kinds = tuple(kind.strip() for kind in arguments.kinds.split(",") if kind.strip())

    import boto3
    from moto import mock_aws

    from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
    from devtools.localstack.template import create_table_arguments
    from replyclock.api.dependencies import current_time
    from replyclock.dal import table
    from replyclock.dal.brands import BrandStore
    from replyclock.logic import metrics
    from replyclock.models.domain import Brand
    from replyclock.settings import get_settings

    table.get_resource.cache_clear()

    table.get_client.cache_clear()
    table.get_table.cache_clear()
    get_settings.cache_clear()
    planned = metrics.read_plan
    # "before": the API's read plan without daily buckets, so it reads hourly buckets alone.
    modes: dict[str, Callable[..., Any]] = {
        "before (hourly buckets only)": lambda window, daily: planned(window, daily=False),
        "after (daily + hourly at the edges)": planned,
    }
    with mock_aws():
        boto3.client("dynamodb").create_table(**create_table_arguments("Table", TABLE_NAME))
        BrandStore(TABLE_NAME).put(Brand(id="acme", name="Acme"))
        hourly = list(bucket_items(arguments.days, arguments.channels, kinds))
        daily = daily_items(hourly)
        check_item_shape(hourly[0], "hour")
        check_item_shape(daily[0], "day")
        items = daily + hourly
        pages = BucketPages(items)
        table.get_client().meta.events.register_first("before-send.dynamodb.Query", pages)
        mentions = sum(item["n_waits"] for item in hourly if "#first#" in item["sk"])
        assert mentions == sum(item["n_waits"] for item in daily if "#first#" in item["sk"])
        for name, found in (("hourly", hourly), ("daily", daily)):
            sizes = [item_size(item) for item in found]
            print(
                f"{len(found):,} {name} buckets: {arguments.days} days{' x 24 h' if name == 'hourly' else ''}"
                f" x {arguments.channels} channels x 4 priorities x {len(kinds)} kinds, {statistics.mean(sizes):,.0f} B"
                f" each ({sum(sizes) / 1e6:.1f} MB, {guard_share(found):.0%} of it guards)",
                flush=True,
            )

        handler = load_handler(REPO_ROOT / "functions" / "api" / "app.py")
        app = sys.modules["_replyclock_function_api"].app
        app.dependency_overrides[current_time] = lambda: NOW

        def ask(days: int, expected_mentions: int | None = None, expected_status: int | None = 200) -> str:
            response = handler(summary_event(days), FakeLambdaContext(function_name="ApiFunction"))
            assert expected_status is None or response["statusCode"] == expected_status, response["body"]
            if expected_mentions is not None:
                assert json.loads(response["body"])["mentions"] == expected_mentions
            return str(response["body"])

        # The pages served at the wire must read exactly as moto's: compare on two days (half, whole, half).
        since = NOW - timedelta(days=2)
        recent = [item for item in hourly if str(item["sk"]) >= f"H#{since:%Y-%m-%dT%H}"]
        recent += [item for item in daily if str(item["sk"]) >= f"D#{since:%Y-%m-%d}"]
        _write(recent)
        answers = set()
        for plan in modes.values():
            metrics.read_plan = plan
            pages.enabled = False
            moto_answer = ask(2)
            pages.enabled = True
            assert ask(2) == moto_answer, "the replayed pages disagree with moto"
            answers.add(moto_answer)
        assert len(answers) == 1, "daily buckets changed the answer"
        print(
            f"replayed Query pages agree with moto on a 2-day window ({len(recent):,} buckets), both ways", flush=True
        )

        results: list[Measured] = []
        full_answers = set()
        for name, plan in modes.items():
            metrics.read_plan = plan
            measured = Measured(name)
            # Timed: the whole window, once untimed to render the pages.
            full_answers.add(ask(arguments.days, mentions))
            pages.reset()
            cpu_started = time.process_time()
            measured.handler_seconds = median_seconds(lambda: ask(arguments.days, mentions), arguments.runs)
            measured.cpu_seconds = (time.process_time() - cpu_started) / arguments.runs
            measured.reads = pages.reads_per_request(arguments.runs)

            results.append(measured)
        assert len(full_answers) == 1, "daily buckets changed the 90-day answer"

        if arguments.moto_query:
            pages.enabled = False
            _write([item for item in items if item not in recent])
            for measured, plan in zip(results, modes.values(), strict=True):
                metrics.read_plan = plan
                print(f"timing {measured.name} against moto itself (minutes)...", flush=True)
                measured.moto_seconds = median_seconds(lambda: ask(arguments.days, mentions), 1)

    metrics.read_plan = planned
    print(f"summary over {arguments.days} days, {arguments.runs} runs each; both ways give the same answer:")
    for measured in results:
        print(f"  {measured.report(arguments.page_ms)}")
        if measured.moto_seconds is not None:
            print(f"    against moto itself: {measured.moto_seconds:,.0f} s (moto's response serialisation dominates)")
    before, after = results
    print(
        f"daily roll-ups: {before.reads.items / after.reads.items:.1f}x fewer items,"
        f" {before.reads.units / after.reads.units:.1f}x fewer read"
        f" units, {before.handler_seconds / after.handler_seconds:.1f}x less handler time"
    )


def _write(items: list[dict[str, Any]]) -> None:
    import boto3

    with boto3.resource("dynamodb").Table(TABLE_NAME).batch_writer() as writer:
        for item in items:
            writer.put_item(Item=item)
