"""Reconcile: any days' buckets rebuilt from the exact conversation states, exactly once beside the aggregate step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from devtools.localstack.lambda_runtime import FakeLambdaContext
from tests.support.builders import T0, customer
from tests.support.faults import Faults
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline
from tests.support.scenarios import BRANDS, assert_exact, conversations, park_deltas_then_move_their_lanes_on

DAYS = {
    "first_day": (T0 - timedelta(days=1)).date().isoformat(),
    "last_day": (T0 + timedelta(days=2)).date().isoformat(),
}


def reconcile(redrive: Any, brand_id: str) -> dict[str, int]:
    return redrive({"reconcile": {"brand": brand_id, **DAYS}}, FakeLambdaContext())  # type: ignore[no-any-return]


def test_a_storm_whose_lanes_changed_again_before_any_re_drive_is_reconciled_to_exact_buckets(
    pipeline: Pipeline, inject: Faults, redrive: Any
) -> None:
    # Given a storm that made aggregate park deltas, after which the same lanes changed again and were aggregated
    posts = park_deltas_then_move_their_lanes_on(pipeline, inject)

    # When both brands' buckets of those days are reconciled
    outcomes = [reconcile(redrive, brand_id) for brand_id in ("acme", "globex")]

    # Then every hourly and daily bucket equals the pure function of the posts
    assert_exact(pipeline, posts)
    assert sum(outcome["buckets_rewritten"] for outcome in outcomes) > 0
    assert all(outcome["states_read"] > 0 for outcome in outcomes)


def test_reconciling_exact_buckets_writes_nothing(pipeline: Pipeline, redrive: Any) -> None:
    pipeline.add_brands(BRANDS)
    posts = conversations(12, seed=8)
    pipeline.write(posts)
    pipeline.run()
    reconcile(redrive, "acme")  # moves guards to the versions read, once

    again = reconcile(redrive, "acme")

    assert again["buckets_rewritten"] == 0 and again["buckets_read"] > 0
    assert_exact(pipeline, posts)


def test_deltas_still_in_flight_when_reconciling_are_not_counted_twice(pipeline: Pipeline, redrive: Any) -> None:
    # Given posts measured, whose state changes have not reached the aggregate step yet
    pipeline.add_brands(BRANDS)
    posts = conversations(20, seed=11)
    pipeline.write(posts)
    held = []
    while fresh := pipeline.reader.poll():
        for shard_id, records in fresh.items():
            pipeline.consumers["MeasureFunction"].mapping.deliver(shard_id, records)
            held.append((shard_id, records))

    # When the buckets are reconciled first, and the held records are then aggregated (and redelivered)
    for brand_id in ("acme", "globex"):
        reconcile(redrive, brand_id)
    for _ in range(2):
        for shard_id, records in held:
            pipeline.consumers["AggregateFunction"].mapping.deliver(shard_id, records)

    # Then each delta counts once
    assert_exact(pipeline, posts)


def test_changes_after_a_reconcile_add_on_top_of_it(pipeline: Pipeline, redrive: Any) -> None:
    pipeline.add_brands(BRANDS)
    posts = conversations(10, seed=2)
    pipeline.write(posts)
    pipeline.run()
    reconcile(redrive, "acme")

    more = [customer(f"{n}x", 1250, "@acme still?", conversation=f"c{n}") for n in range(10)]
    pipeline.write(more)
    pipeline.run()

    assert_exact(pipeline, posts + more)


def test_the_event_file_is_a_valid_request(pipeline: Pipeline, redrive: Any) -> None:
    pipeline.add_brands(BRANDS)

    outcome = redrive(load_event("redrive_reconcile.json"), FakeLambdaContext())

    assert outcome["days"] == 3 and outcome["buckets_rewritten"] == 0


@pytest.mark.parametrize(
    "request_body",
    [
        {"reconcile": {"brand": "acme", "first_day": "2026-11-03", "last_day": "2026-11-01"}},
        {"reconcile": {"brand": "acme", "first_day": "2024-01-01", "last_day": "2026-11-01"}},
        {"reconcile": {"brand": "", "first_day": "2026-11-01", "last_day": "2026-11-01"}},
        {"reconcile": {"brand": "acme", "first_day": "someday", "last_day": "2026-11-01"}},
    ],
)
def test_a_bad_reconcile_request_is_refused_before_anything_is_read(
    pipeline: Pipeline, redrive: Any, request_body: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="reconcile"):
        redrive(request_body, FakeLambdaContext())
