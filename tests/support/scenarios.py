"""Shared scenarios of the fault, re-drive and reconcile tests: two brands' conversations, exactness, a storm."""

from __future__ import annotations

import dataclasses
import random

import pytest

from replyclock.logic.aggregation import Granularity
from replyclock.models.domain import Brand, Post
from tests.support.builders import brand, customer
from tests.support.expectations import (
    assert_arrivals_are_the_wait_starts,
    brand_directory,
    expected_snapshot,
    expected_waits,
    stored_snapshot,
    stored_waits,
)
from tests.support.faults import FaultInjector, Faults
from tests.support.pipeline import Pipeline

THROTTLED = "ProvisionedThroughputExceededException"
BRANDS = [Brand(id="acme", name="Acme"), Brand(id="globex", name="Globex")]


def conversations(count: int, seed: int = 3) -> list[Post]:
    rng = random.Random(seed)
    posts: list[Post] = []
    for n in range(count):
        who = rng.choice(["acme", "globex"])
        posts.append(customer(f"{n}q", rng.randint(0, 600), f"@{who} help", conversation=f"c{n}"))
        if rng.random() < 0.8:
            posts.append(brand(f"{n}a", rng.randint(601, 900), brand_id=who, conversation=f"c{n}"))
        if rng.random() < 0.4:
            posts.append(customer(f"{n}r", rng.randint(901, 1200), "again", conversation=f"c{n}"))
        if rng.random() < 0.3:
            # A second customer in the thread: a lane of their own, which acme's answers to alice do not close.
            posts.append(customer(f"{n}b", rng.randint(0, 1200), f"@{who} me too", conversation=f"c{n}", author="bob"))
    return posts


def assert_exact(pipeline: Pipeline, posts: list[Post], *, arrivals: bool = True) -> None:
    waits = expected_waits(posts, brand_directory(BRANDS))
    stored = stored_waits(pipeline.conversations, {(post.channel, post.conversation_id) for post in posts})
    assert sorted(stored) == sorted(waits)
    for lane, expected in waits.items():
        assert stored[lane] == expected, lane
    every_wait = [wait for conversation_waits in waits.values() for wait in conversation_waits]
    for granularity in (Granularity.HOUR, Granularity.DAY):
        for brand_wide in (False, True):
            stored = stored_snapshot(pipeline.buckets, ["acme", "globex"], granularity, brand_wide=brand_wide)
            expected = expected_snapshot(every_wait, granularity, brand_wide=brand_wide)
            assert stored == expected, (granularity, brand_wide)
    if arrivals:
        assert_arrivals_are_the_wait_starts(pipeline.table_name, ["acme", "globex"], every_wait)


def give_up_after(pipeline: Pipeline, attempts: int) -> None:
    for consumer in pipeline.consumers.values():
        consumer.mapping.mapping = dataclasses.replace(consumer.mapping.mapping, maximum_retry_attempts=attempts)


def park_deltas_then_move_their_lanes_on(pipeline: Pipeline, inject: Faults) -> list[Post]:
    """A storm makes aggregate park bucket deltas; the same lanes then change again and are aggregated.

    Re-applying the parked records alone would now be skipped by the guards the later changes moved.
    Returns every post written.
    """
    pipeline.add_brands(BRANDS)
    first = conversations(30)
    pipeline.write(first)
    give_up_after(pipeline, 1)
    storm = inject(FaultInjector({"UpdateItem"}, every=1, error=THROTTLED, limit=10_000))
    pipeline.run()
    storm.limit = 0
    later = [brand(f"{n}late", 1300 + n, brand_id="acme", conversation=f"c{n}") for n in range(30)]
    pipeline.write(later)
    pipeline.run()
    with pytest.raises(AssertionError):
        assert_exact(pipeline, first + later)
    return first + later
