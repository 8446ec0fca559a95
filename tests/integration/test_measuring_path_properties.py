"""Delivery order, duplication and batching must not change any state or count, hourly or daily."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.localstack.lambda_runtime import FakeLambdaContext
from devtools.localstack.streams import Record
from replyclock.logic.aggregation import Granularity
from replyclock.models.domain import AuthorRole, Brand, Post, Wait
from tests.support.builders import T0
from tests.support.emulators import TableEmulator, on_emulator
from tests.support.expectations import (
    LaneKey,
    assert_arrivals_are_the_wait_starts,
    brand_directory,
    expected_snapshot,
    expected_waits,
    rolled_up_snapshot,
    stored_buckets,
    stored_snapshot,
    stored_waits,
)
from tests.support.pipeline import Pipeline

# Hypothesis runs every property on many deliveries; the file takes over a minute.
pytestmark = pytest.mark.slow

BRANDS = [Brand(id="acme", name="Acme"), Brand(id="globex", name="Globex")]
AUTHORS = ["alice", "bob", "acme", "globex"]
TEXTS = [
    "@acme help",
    "@globex hi",
    "@acme @globex anyone?",
    "thanks",
    "still waiting",
    # Negative (VADER), so recovery's counters are exercised: "still broken" after an answer does not recover.
    "@acme this is awful",
    "still broken, terrible",
    "#thissucks @acme",
    "@alice sorry about that",
    "@bob please DM us",
    "@alice @bob we are on it",
]


@st.composite
def conversations(draw: st.DrawFn) -> list[Post]:
    posts: list[Post] = []
    for conversation in range(draw(st.integers(1, 3))):
        thread: list[Post] = []
        for index in range(draw(st.integers(1, 7))):
            author = draw(st.sampled_from(AUTHORS))
            is_brand = author in {"acme", "globex"}
            text = draw(st.sampled_from(TEXTS))
            # Three days from T0 (10:00 UTC): waits start on up to four UTC days, so daily buckets get several hours.
            minutes = draw(st.integers(0, 3 * 24 * 60))
            reply_to = draw(st.sampled_from([None, *[post.id for post in thread]]))
            thread.append(
                Post(
                    channel="x",
                    id=f"{conversation}{index:02d}",
                    author=author,
                    author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
                    brand_id=author if is_brand else None,
                    created_at=T0 + timedelta(minutes=minutes),
                    text=text,
                    in_reply_to=reply_to,
                    conversation_id=f"conv{conversation}",
                    mentions=tuple(word[1:] for word in text.split() if word.startswith("@")),
                    # A customer's reach is what their open waits expose (Wait.exposure).
                    author_reach=None if is_brand else 100 * (index + 1),
                )
            )
        posts.extend(thread)
    return posts


def deliveries(records: list[Record], rng: random.Random, *, keep_item_order: bool) -> list[list[Record]]:
    """Records split into random batches, with duplicates and redelivered earlier batches."""
    if keep_item_order:
        # A stream keeps each item's records in order; different items interleave freely.
        queues: dict[str, list[Record]] = {}
        for record in records:
            keys = record["dynamodb"]["Keys"]
            queues.setdefault(keys["pk"]["S"] + keys["sk"]["S"], []).append(record)
        ordered: list[Record] = []
        while queues:
            item = rng.choice(sorted(queues))
            ordered.append(queues[item].pop(0))
            if not queues[item]:
                del queues[item]
    else:
        ordered = rng.sample(records, len(records))
        ordered += rng.sample(ordered, rng.randint(0, len(ordered)))
    batches: list[list[Record]] = []
    position = 0
    while position < len(ordered):
        size = rng.randint(1, 5)
        batches.append(ordered[position : position + size])
        position += size
        if batches and rng.random() < 0.3:
            batches.append(rng.choice(batches))
    return batches


def invoke(handler: Any, batch: list[Record]) -> None:
    response = handler({"Records": batch}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}


# Each property runs on moto (40 examples) and, beside it, on AWS's DynamoDB Local (10: it starts once per
# session; the examples cost about what moto's do), so that a behaviour in which the emulators differ fails a test.
DYNAMODB_LOCAL_EXAMPLES = 10


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts=conversations(), seed=st.integers(0, 2**32 - 1))
def test_any_delivery_gives_the_states_and_buckets_of_the_pure_waits(posts: list[Post], seed: int) -> None:
    check_any_delivery(posts, seed, TableEmulator("moto"))


@settings(max_examples=DYNAMODB_LOCAL_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts=conversations(), seed=st.integers(0, 2**32 - 1))
def test_any_delivery_gives_the_states_and_buckets_of_the_pure_waits_on_dynamodb_local(
    posts: list[Post], seed: int, dynamodb_local: str
) -> None:
    check_any_delivery(posts, seed, TableEmulator("dynamodb-local", dynamodb_local))


def check_any_delivery(posts: list[Post], seed: int, table_emulator: TableEmulator) -> None:
    rng = random.Random(seed)
    directory = brand_directory(BRANDS)
    waits = expected_waits(posts, directory)
    with on_emulator(table_emulator):
        # Given the posts stored in a random order, each possibly twice
        pipeline = Pipeline.create()
        pipeline.add_brands(BRANDS)
        for post in rng.sample(posts, len(posts)) + rng.sample(posts, rng.randint(0, len(posts))):
            pipeline.posts.put(post)
        measure = pipeline.consumers["MeasureFunction"].mapping.handler
        aggregate = pipeline.consumers["AggregateFunction"].mapping.handler
        post_records = [r for r in pipeline.stream_records() if r["dynamodb"]["Keys"]["sk"]["S"].startswith("POST#")]

        # When measure sees the inserts in any order, duplicated, in any batches
        for batch in deliveries(post_records, rng, keep_item_order=False):
            invoke(measure, batch)
        state_records = [r for r in pipeline.stream_records() if r["dynamodb"]["Keys"]["sk"]["S"].startswith("STATE#")]
        # and aggregate sees the state changes in stream order per item, redelivered, in any batches
        for batch in deliveries(state_records, rng, keep_item_order=True):
            invoke(aggregate, batch)

        # Then the states are exactly the pure waits, and the buckets (hourly and daily) their totals
        assert_states_and_buckets_are_exact(pipeline, waits, posts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts=conversations(), seed=st.integers(0, 2**32 - 1))
def test_states_that_change_version_by_version_give_exact_hourly_and_daily_buckets(
    posts: list[Post], seed: int
) -> None:
    check_version_by_version(posts, seed, TableEmulator("moto"))


@settings(max_examples=DYNAMODB_LOCAL_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts=conversations(), seed=st.integers(0, 2**32 - 1))
def test_states_that_change_version_by_version_give_exact_hourly_and_daily_buckets_on_dynamodb_local(
    posts: list[Post], seed: int, dynamodb_local: str
) -> None:
    check_version_by_version(posts, seed, TableEmulator("dynamodb-local", dynamodb_local))


def check_version_by_version(posts: list[Post], seed: int, table_emulator: TableEmulator) -> None:
    rng = random.Random(seed)
    waits = expected_waits(posts, brand_directory(BRANDS))
    with on_emulator(table_emulator):
        pipeline = Pipeline.create()
        pipeline.add_brands(BRANDS)
        measure = pipeline.consumers["MeasureFunction"].mapping.handler
        aggregate = pipeline.consumers["AggregateFunction"].mapping.handler

        # Given posts that arrive in rounds, each round measured (in any order and batches) before the next arrives,
        # so that a conversation's state is written version after version, its waits moving between hours and days
        arrivals = rng.sample(posts, len(posts))
        delivered: set[str] = set()
        while arrivals:
            count = rng.randint(1, 3)
            for post in arrivals[:count]:
                pipeline.posts.put(post)
            arrivals = arrivals[count:]
            fresh = [
                record
                for record in pipeline.stream_records()
                if record["dynamodb"]["Keys"]["sk"]["S"].startswith("POST#")
                and record["dynamodb"]["SequenceNumber"] not in delivered
            ]
            delivered.update(record["dynamodb"]["SequenceNumber"] for record in fresh)
            for batch in deliveries(fresh, rng, keep_item_order=False):
                invoke(measure, batch)
        state_records = [r for r in pipeline.stream_records() if r["dynamodb"]["Keys"]["sk"]["S"].startswith("STATE#")]

        # When aggregate sees every version's change in stream order per item, redelivered, in any batches
        for batch in deliveries(state_records, rng, keep_item_order=True):
            invoke(aggregate, batch)

        # Then the states are exactly the pure waits, and the buckets (hourly and daily) their totals
        assert_states_and_buckets_are_exact(pipeline, waits, posts)


def assert_states_and_buckets_are_exact(
    pipeline: Pipeline, waits: dict[LaneKey, list[Wait]], posts: list[Post]
) -> None:
    # every customer's waits for every brand are exactly the pure ones, and no lane holds others
    conversations = {(post.channel, post.conversation_id) for post in posts}
    stored = stored_waits(pipeline.conversations, conversations)
    assert stored == waits
    # the hourly buckets are exactly the totals of those waits
    all_waits = [wait for conversation_waits in waits.values() for wait in conversation_waits]
    brands = [brand.id for brand in BRANDS]
    assert stored_snapshot(pipeline.buckets, brands) == expected_snapshot(all_waits)
    # and each daily bucket is exactly the sum of its day's hourly buckets
    daily = stored_snapshot(pipeline.buckets, brands, Granularity.DAY)
    assert daily == rolled_up_snapshot(stored_buckets(pipeline.buckets, brands))
    assert daily == expected_snapshot(all_waits, Granularity.DAY)
    # and the brand-wide hours and days are exactly the totals of every channel and priority together
    for granularity in (Granularity.HOUR, Granularity.DAY):
        brand_wide = stored_snapshot(pipeline.buckets, brands, granularity, brand_wide=True)
        assert brand_wide == expected_snapshot(all_waits, granularity, brand_wide=True), granularity
    # and the arrivals per 5-minute slot (surges) are exactly the waits' starts, each counted once
    assert_arrivals_are_the_wait_starts(pipeline.table_name, brands, all_waits)
