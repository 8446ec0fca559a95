"""The measuring path in-process on moto: posts per second, DynamoDB requests and write units per post."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from moto import mock_aws
from moto.backends import get_backend
from moto.dynamodb.models.dynamo_type import DynamoType

from replyclock.dal import table
from replyclock.models.domain import AuthorRole, Brand, Post
from tests.support.pipeline import Pipeline

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
ACCOUNT, REGION = "123456789012", "us-east-1"


def synthetic_posts(conversations: int, seed: int = 1) -> list[Post]:
    """Mentions of two brands over a week; most answered once, some followed up, some never answered."""
    rng = random.Random(seed)
    posts: list[Post] = []
    for n in range(conversations):
        brand_id = rng.choice(["acme", "globex"])
        channel = rng.choice(["x", "mastodon", "bluesky"])
        asked = START + timedelta(minutes=rng.uniform(0, 7 * 24 * 60))
        posts.append(_post(n, "q", None, asked, f"@{brand_id} my order is late", channel))
        if rng.random() < 0.85:
            answered = asked + timedelta(seconds=rng.lognormvariate(7, 1.2))
            posts.append(_post(n, "a", brand_id, answered, "sorry, sending a DM", channel))
            if rng.random() < 0.3:
                again = answered + timedelta(minutes=rng.uniform(5, 120))
                posts.append(_post(n, "f", None, again, "still nothing", channel))
                later = again + timedelta(seconds=rng.lognormvariate(7, 1.2))
                posts.append(_post(n, "b", brand_id, later, "done now", channel))
    return posts


def _post(conversation: int, suffix: str, brand_id: str | None, at: datetime, text: str, channel: str) -> Post:
    return Post(
        channel=channel,
        id=f"{conversation}-{suffix}",
        author=brand_id or f"customer{conversation}",
        author_role=AuthorRole.BRAND if brand_id else AuthorRole.CUSTOMER,
        brand_id=brand_id,
        created_at=at,
        text=text,
        conversation_id=f"conv{conversation}",
        mentions=tuple(word[1:] for word in text.split() if word.startswith("@")),
    )


class RequestMeter:
    """Counts DynamoDB requests, and the keys written so write units can be priced by stored item size."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.written_keys: list[tuple[str, str]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.requests[model.name] += 1
        if model.name in WRITES:
            body = json.loads(params["body"])
            key = body.get("Key") or body["Item"]
            self.written_keys.append((key["pk"]["S"], key["sk"]["S"]))

    def write_units(self, table_name: str) -> Counter[str]:
        """Write units by item kind (post, state, bucket): DynamoDB bills a write by its item's size in 1 KB
        units; the item's final image stands in for each write (an upper bound for items that grow)."""
        moto_table = get_backend("dynamodb")[ACCOUNT][REGION].tables[table_name]
        units: Counter[str] = Counter()
        for pk, sk in self.written_keys:
            item = moto_table.get_item(DynamoType({"S": pk}), DynamoType({"S": sk}))
            kind = "bucket" if pk.startswith("AGG#") else sk.split("#", 1)[0].lower()
            units[kind] += max(1, math.ceil(item.size() / 1024)) if item is not None else 1
        return units


def run(conversations: int = 1500) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)
    posts = synthetic_posts(conversations)
    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()
    with mock_aws():
        pipeline = Pipeline.create()
        pipeline.add_brands([Brand(id="acme", name="Acme"), Brand(id="globex", name="Globex")])
        events = table.get_resource().meta.client.meta.events
        ingest_meter, meter = RequestMeter(), RequestMeter()
        events.register("before-call.dynamodb", ingest_meter)
        started = time.perf_counter()
        pipeline.write(posts)
        write_seconds = time.perf_counter() - started
        events.unregister("before-call.dynamodb", ingest_meter)
        events.register("before-call.dynamodb", meter)
        started = time.perf_counter()
        pipeline.run()
        measure_seconds = time.perf_counter() - started
        events.unregister("before-call.dynamodb", meter)
        moto_table = get_backend("dynamodb")[ACCOUNT][REGION].tables[pipeline.table_name]
        states = sum(1 for item in moto_table.all_items() if item.attrs["sk"].value.startswith("STATE#"))
        post_units = ingest_meter.write_units(pipeline.table_name)
        path_units = meter.write_units(pipeline.table_name)
    logging.disable(logging.NOTSET)
    count = len(posts)
    units = post_units + path_units
    return {
        "posts": count,
        "conversations": conversations,
        "conversation_states": states,
        "post_writes_per_second": count / write_seconds,
        "measured_posts_per_second": count / measure_seconds,
        "requests_per_post": (sum(meter.requests.values()) + sum(ingest_meter.requests.values())) / count,
        "requests_by_operation": dict(meter.requests + ingest_meter.requests),
        "write_units_per_post": units.total() / count,
        "write_units_per_post_by_item": {kind: value / count for kind, value in sorted(units.items())},
        "floor_write_units_per_post": (count + states) / count,
        "bucket_updates_per_post": meter.requests["UpdateItem"] / count,
    }


def main(argv: list[str]) -> None:
    result = run()
    count = result["posts"]
    by_operation = ", ".join(
        f"{name} {value / count:.2f}" for name, value in sorted(result["requests_by_operation"].items())
    )
    by_item = " + ".join(f"{kind}s {value:.2f}" for kind, value in result["write_units_per_post_by_item"].items())
    print(
        f"{count} posts in {result['conversations']} conversations ({result['conversation_states']} conversation"
        " states), written first and then measured through the real measure and aggregate handlers on moto's"
        " stream, as in a backfill (live, a conversation is measured once per post that changes it):\n"
        f"  throughput: {result['measured_posts_per_second']:.0f} posts/s through measure+aggregate"
        f" (writing the posts alone: {result['post_writes_per_second']:.0f} posts/s)\n"
        f"  requests per post: {result['requests_per_post']:.2f} ({by_operation})\n"
        f"  write units per post: {result['write_units_per_post']:.2f} = {by_item}\n"
        f"  floor: {result['floor_write_units_per_post']:.2f} WCU/post (one post write per post and one state write"
        f" per conversation state) + amortized bucket writes ({result['bucket_updates_per_post']:.2f} bucket"
        " UpdateItems per post: an hourly and a daily bucket per changed state, shared within a batch)"
    )
