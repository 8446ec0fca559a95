"""Measuring cost against thread length, and the twcs head live and as a backfill.

`thread`: one viral thread fed one post at a time (a post, then measure and aggregate see its
stream records, as live): customers pile on, the brand answers some by name and, now and then,
everyone at once. At 10, 100, 1,000, 5,000 and 20,000 posts it reports the cost of the posts just
before that length (handler time, requests and write units per post) and the largest item
written so far, and checks the lanes against the pure fold of the whole thread.

`twcs`: ../shared/datasets/twcs_head5000.csv in timestamp order, one post per stream batch
(live), and the whole file stored first, then measured (backfill), with the bill by operation,
item kind and index, and dollars per million posts.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moto import mock_aws
from moto.backends import get_backend
from moto.dynamodb.models.dynamo_type import DynamoType

from benchmarks.billing import Bill, table_indexes
from devtools.localstack.lambda_runtime import FakeLambdaContext
from replyclock.dal import table
from replyclock.models.domain import AuthorRole, Brand, Post
from tests.support.expectations import brand_directory, expected_waits, stored_waits
from tests.support.pipeline import Pipeline

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MARKS = (10, 100, 1_000, 5_000, 20_000)
WINDOW = 50
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
ACCOUNT, REGION = "123456789012", "us-east-1"
DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "twcs_head5000.csv"


def viral_thread(length: int, seed: int = 7) -> list[Post]:
    """A complaint that goes viral: replies to the root and to each other, the brand answering as it can."""
    rng = random.Random(seed)
    posts = [_post(0, "alice", START, "@acme your app is down #thissucks", None)]
    customers = ["alice"]
    for n in range(1, length):
        at = START + timedelta(seconds=5 * n)
        if n % 5 == 4:
            if n % 100 == 99:
                posts.append(_post(n, "acme", at, "We know, a fix is rolling out now", "0", brand=True))
                continue
            target = rng.choice(posts[max(0, n - 40) : n])
            named = target.author if target.author != "acme" else rng.choice(customers)
            posts.append(_post(n, "acme", at, f"@{named} sorry, please DM us", target.id, brand=True))
            continue
        author = f"c{rng.randrange(n)}" if rng.random() < 0.3 else f"c{n}"
        customers.append(author)
        parent = rng.choice(posts[max(0, n - 40) : n]).id if rng.random() < 0.5 else "0"
        posts.append(_post(n, author, at, "@acme same here, still broken", parent))
    return posts


def _post(n: int, author: str, at: datetime, text: str, parent: str | None, *, brand: bool = False) -> Post:
    return Post(
        channel="x",
        id=str(n),
        author=author,
        author_role=AuthorRole.BRAND if brand else AuthorRole.CUSTOMER,
        brand_id="acme" if brand else None,
        created_at=at,
        text=text,
        in_reply_to=parent,
        conversation_id="0",
        mentions=tuple(word[1:] for word in text.split() if word.startswith("@")),
    )


class RecordedStream:
    """The table's stream, recorded at the SDK: each write's old and new item, as DynamoDB would emit them.

    moto's own stream re-serialises every record on each read, which makes a 20,000-post thread fed
    one post at a time take hours; the handlers get the same records here, in write order.
    """

    def __init__(self, table_name: str) -> None:
        self._table = get_backend("dynamodb")[ACCOUNT][REGION].tables[table_name]
        self._pending: dict[str, Any] | None = None
        self._sequence = 0
        self.records: list[dict[str, Any]] = []
        self.failed_writes = 0

    def _item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self._table.get_item(DynamoType(key["pk"]), DynamoType(key["sk"]))
        return item.to_json()["Attributes"] if item is not None else None

    def before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name in WRITES:
            body = json.loads(params["body"])
            key = body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
            self._pending = {"key": key, "old": self._item(key)}

    def after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in WRITES or self._pending is None:
            return
        pending, self._pending = self._pending, None
        if "Error" in parsed:
            self.failed_writes += 1  # a refused conditional write is billed all the same
            return
        old, new = pending["old"], self._item(pending["key"])
        if old == new:
            return
        self._sequence += 1
        images: dict[str, Any] = {"Keys": pending["key"]}
        if old is not None:
            images["OldImage"] = old
        if new is not None:
            images["NewImage"] = new
        self.records.append(
            {
                "eventID": str(self._sequence),
                "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/bench/stream/2026",
                "dynamodb": {
                    **images,
                    "ApproximateCreationDateTime": time.time(),
                    "SequenceNumber": f"{self._sequence:021d}",
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        )


class MeteredPipeline:
    """The real measure and aggregate handlers on moto, every request, write and invocation billed."""

    def __init__(self, brands: Iterable[Brand]) -> None:
        self.pipeline = Pipeline.create()
        self.pipeline.add_brands(brands)
        self.indexes = table_indexes()
        self.bill = Bill()
        self.stream = RecordedStream(self.pipeline.table_name)
        self.delivered = 0
        consumers = self.pipeline.consumers
        self.measure = self.bill.time_handler(consumers["MeasureFunction"].mapping.handler)
        self.aggregate = self.bill.time_handler(consumers["AggregateFunction"].mapping.handler)
        self.batch_size = consumers["AggregateFunction"].mapping.mapping.batch_size
        events = table.get_resource().meta.client.meta.events
        events.register("before-call.dynamodb", self.bill.count_request)
        events.register("before-call.dynamodb", self.stream.before)
        events.register("after-call.dynamodb", self.bill.count_read)
        events.register("after-call.dynamodb", self.stream.after)

    def feed(self, posts: list[Post]) -> None:
        """Store the posts, then run measure and aggregate on what the stream carries until it is quiet."""
        self.pipeline.write(posts)
        while self.delivered < len(self.stream.records):
            fresh = self.stream.records[self.delivered :]
            self.delivered = len(self.stream.records)
            self.bill.add_stream_records(fresh, self.indexes)
            inserts = [r for r in fresh if r["dynamodb"]["Keys"]["sk"]["S"].startswith("POST#")]
            changes = [r for r in fresh if r["dynamodb"]["Keys"]["sk"]["S"].startswith("STATE#")]
            for handler, records in ((self.measure, inserts), (self.aggregate, changes)):
                for start in range(0, len(records), self.batch_size):
                    response = handler({"Records": records[start : start + self.batch_size]}, FakeLambdaContext())
                    if response.get("batchItemFailures"):
                        raise SystemExit(f"a handler failed records: {response}")
        self.bill.write_units["refused conditional write"] += self.stream.failed_writes
        self.stream.failed_writes = 0


def thread_curve(length: int) -> list[dict[str, Any]]:
    posts = viral_thread(length)
    rows: list[dict[str, Any]] = []
    with _fresh_moto():
        metered = MeteredPipeline([Brand(id="acme", name="Acme")])
        for position, post in enumerate(posts, start=1):
            window_start = next((mark - WINDOW for mark in MARKS if mark - WINDOW < position <= mark), None)
            if position - 1 == window_start or (position <= WINDOW and position == 1):
                before = _snapshot(metered.bill)
            metered.feed([post])
            if position in MARKS or position == len(posts):
                rows.append(_window_row(position, min(WINDOW, position), before, metered.bill))
        exact = expected_waits(posts, brand_directory([Brand(id="acme", name="Acme")]))
        stored = stored_waits(metered.pipeline.conversations, [("x", "0")])
        if stored != exact:
            raise SystemExit(f"the {length}-post thread was not measured exactly")
        for row in rows:
            row["exact"] = True
        rows[-1]["lanes"] = len(exact)
        rows[-1]["waits"] = sum(len(waits) for waits in exact.values())
    return rows


def _snapshot(bill: Bill) -> dict[str, float]:
    return {
        "seconds": bill.handler_seconds,
        "requests": float(bill.requests.total()),
        "write_units": float(bill.total_write_units),
    }


def _window_row(position: int, count: int, before: dict[str, float], bill: Bill) -> dict[str, Any]:
    now = _snapshot(bill)
    return {
        "posts": position,
        "ms_per_post": 1000 * (now["seconds"] - before["seconds"]) / count,
        "requests_per_post": (now["requests"] - before["requests"]) / count,
        "write_units_per_post": (now["write_units"] - before["write_units"]) / count,
        "largest_item_bytes": bill.largest_item,
    }


class _fresh_moto:  # noqa: N801 - used as a context manager
    def __enter__(self) -> None:
        logging.disable(logging.CRITICAL)
        table.get_resource.cache_clear()
        table.get_client.cache_clear()
        table.get_table.cache_clear()
        self._mock = mock_aws()
        self._mock.start()

    def __exit__(self, *_: object) -> None:
        self._mock.stop()
        logging.disable(logging.NOTSET)


def twcs(live: bool) -> dict[str, Any]:
    from replyclock.connectors import twcs as twcs_format

    with DATASET.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in twcs_format.read_rows(handle) if isinstance(row, twcs_format.TwcsRow)]
    posts = sorted(twcs_format.posts_from_rows(rows), key=lambda post: (post.created_at, len(post.id), post.id))
    brands = [Brand(id=brand_id, name=brand_id) for brand_id in sorted({p.brand_id for p in posts if p.brand_id})]
    with _fresh_moto():
        metered = MeteredPipeline(brands)
        started = time.perf_counter()
        if live:
            for post in posts:
                metered.feed([post])
        else:
            metered.feed(posts)
        wall = time.perf_counter() - started
        bill = metered.bill
    count = len(posts)
    dollars = bill.dollars()
    return {
        "mode": "live" if live else "backfill",
        "posts": count,
        "wall_seconds": wall,
        "requests_per_post": bill.requests.total() / count,
        "requests_by_operation": {name: value / count for name, value in sorted(bill.requests.items())},
        "write_units_per_post": bill.total_write_units / count,
        "write_units_by_item": {kind: value / count for kind, value in sorted(bill.write_units.items())},
        "index_write_units_by_index": {name: value / count for name, value in sorted(bill.index_write_units.items())},
        "read_units_per_post": bill.read_units / count,
        "handler_ms_per_post": 1000 * bill.handler_seconds / count,
        "invocations_per_post": bill.invocations / count,
        "dollars_per_million_posts": {name: value / count * 1_000_000 for name, value in dollars.items()},
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks thread_length")
    # make bench runs 5,000 (about 10 minutes here); --length 20000 runs the whole curve.
    parser.add_argument("--length", type=int, default=5_000)
    parser.add_argument("--skip-twcs", action="store_true")
    options = parser.parse_args(argv)
    print(f"One viral thread fed one post at a time (cost of the {WINDOW} posts before each length):")
    print("  posts | ms/post (handlers) | requests/post | write units/post | largest item so far")
    rows = thread_curve(options.length)
    for row in rows:
        print(
            f"  {row['posts']:>6} | {row['ms_per_post']:>18.1f} | {row['requests_per_post']:>13.2f} |"
            f" {row['write_units_per_post']:>16.2f} | {row['largest_item_bytes']:>6} B"
        )
    reference = next((row for row in rows if row["posts"] == 100), rows[0])
    last = rows[-1]
    print(
        f"  exact: every lane equals the pure fold of the whole thread ({last.get('lanes')} lanes,"
        f" {last.get('waits')} waits); at {last['posts']} posts a post costs"
        f" {last['write_units_per_post'] / reference['write_units_per_post']:.2f}x the write units,"
        f" {last['requests_per_post'] / reference['requests_per_post']:.2f}x the requests and"
        f" {last['ms_per_post'] / reference['ms_per_post']:.2f}x the handler time of one at 100 (target <= 1.5x);"
        f" largest item {last['largest_item_bytes']} B (target <= 65,536 B)"
    )
    if options.skip_twcs or not DATASET.exists():
        print(f"twcs head: skipped ({DATASET} not found)" if not options.skip_twcs else "")
        return
    for live in (True, False):
        result = twcs(live)
        dollars = result["dollars_per_million_posts"]
        print(
            f"\ntwcs head, {result['mode']} ({result['posts']} posts"
            f"{', timestamp order, one post per stream batch' if live else ', stored first, then measured'}):\n"
            f"  requests/post {result['requests_per_post']:.2f}: "
            + ", ".join(f"{name} {value:.2f}" for name, value in result["requests_by_operation"].items())
            + f"\n  write units/post {result['write_units_per_post']:.2f}: "
            + ", ".join(f"{kind} {value:.2f}" for kind, value in result["write_units_by_item"].items())
            + ", index "
            + ", ".join(f"{name} {value:.2f}" for name, value in result["index_write_units_by_index"].items())
            + f"\n  read units/post {result['read_units_per_post']:.2f};"
            f" handler time {result['handler_ms_per_post']:.1f} ms/post over"
            f" {result['invocations_per_post']:.2f} invocations/post (512 MB)\n"
            f"  $ per million posts: {sum(dollars.values()):.2f} = "
            + " + ".join(f"{name} {value:.2f}" for name, value in dollars.items())
        )
        print("  " + "; ".join(_against_targets(result, live)))


def _against_targets(result: dict[str, Any], live: bool) -> list[str]:
    """Issue 11's targets: live <= 2.5 requests and <= 2.0 write units per post, backfill <= 1.5, <= $2 per million."""
    dollars = sum(result["dollars_per_million_posts"].values())
    checks = [("write units/post", result["write_units_per_post"], 2.0 if live else 1.5), ("$/million", dollars, 2.0)]
    if live:
        checks.insert(0, ("requests/post", result["requests_per_post"], 2.5))
    return [
        f"{name} {value:.2f} vs target {target:g}: "
        + ("met" if value <= target else f"missed by {value - target:.2f} ({value / target:.1f}x)")
        for name, value, target in checks
    ]
