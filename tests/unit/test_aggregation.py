from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from replyclock.dal.aggregates import same_sums
from replyclock.dal.rollups import pack, unpack
from replyclock.logic.aggregation import COUNTER_NAMES, BucketKey, BucketTotals, hour_of, state_delta, totals_by_bucket
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, ConversationState, Post, Priority, Wait, WaitKind
from tests.support.builders import T0, brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme")
DIRECTORY = brand_directory([ACME])


def waits(*posts: Post) -> dict[str, list[Wait]]:
    return compute_waits(posts, ACME, DIRECTORY.brand_for_handle)


def state(*posts: Post, who: str = "alice") -> ConversationState:
    """The lane item of one customer: its latest wait and how many it has had."""
    lane = waits(*posts).get(who, [])
    return ConversationState(
        channel="x",
        conversation_id="c1",
        brand_id="acme",
        customer=who,
        waits=lane[-1:],
        wait_count=len(lane),
        first_started_at=lane[0].started_at if lane else None,
    )


FIRST_BUCKET = BucketKey("acme", hour_of(T0), WaitKind.FIRST, "x", Priority.NORMAL)


def test_a_new_open_wait_adds_one_open_wait_to_its_start_hour() -> None:
    delta = state_delta(None, state(customer("1", 0)))

    assert list(delta) == [FIRST_BUCKET]
    assert dict(delta[FIRST_BUCKET].counters) == {"waits": 1, "open": 1}
    assert delta[FIRST_BUCKET].calendar.count == 0


def test_answering_moves_the_wait_from_open_to_responded() -> None:
    delta = state_delta(state(customer("1", 0)), state(customer("1", 0), brand("2", 5)))

    counters = {name: value for name, value in delta[FIRST_BUCKET].counters.items() if value}
    assert counters == {"open": -1, "responded": 1, "met": 1}
    assert delta[FIRST_BUCKET].calendar.count == 1


def test_a_shorter_answer_replaces_the_longer_one_with_a_negative_delta() -> None:
    late = state(customer("1", 0), brand("3", 180))
    early = state(customer("1", 0), brand("2", 10), brand("3", 180))

    delta = state_delta(late, early)[FIRST_BUCKET]

    assert not any(delta.counters.values())
    bins, zero_count, total = delta.calendar.to_bins()
    assert total == 600.0 - 10800.0
    assert sorted(bins.values()) == [-1, 1] and zero_count == 0


def test_an_unchanged_state_has_no_delta() -> None:
    same = state(customer("1", 0), brand("2", 5))
    assert state_delta(same, same) == {}


def test_waits_of_different_kinds_go_to_different_buckets() -> None:
    lanes = waits(customer("1", 0), brand("2", 5), customer("3", 90, "again"), brand("4", 95))

    buckets = totals_by_bucket(lanes["alice"])

    assert {(key.kind, key.period) for key in buckets} == {
        (WaitKind.FIRST, "2026-11-18T10"),
        (WaitKind.NEXT, "2026-11-18T11"),
    }


def test_a_next_wait_replacing_the_first_in_the_lane_moves_the_lane_between_buckets() -> None:
    # The lane item holds only its latest wait; the first one is archived (seq 1) and stays counted there.
    answered = state(customer("1", 0), brand("2", 5))
    following = state(customer("1", 0), brand("2", 5), customer("3", 90, "again"))
    archived = answered.model_copy(update={"seq": 1})
    next_bucket = BucketKey("acme", "2026-11-18T11", WaitKind.NEXT, "x", Priority.NORMAL)

    lane_delta = state_delta(answered, following)

    assert (following.wait_count, following.first_started_at) == (2, T0)
    assert {
        key: {name: value for name, value in totals.counters.items() if value} for key, totals in lane_delta.items()
    } == {
        FIRST_BUCKET: {"waits": -1, "responded": -1, "met": -1},
        next_bucket: {"waits": 1, "open": 1},
    }
    assert dict(state_delta(None, archived)[FIRST_BUCKET].counters) == {"waits": 1, "responded": 1, "met": 1}


def test_each_customer_lane_counts_its_own_wait() -> None:
    posts = (customer("1", 0), customer("2", 1, "@acme me too", author="bob"), brand("3", 5, "On it", reply_to="2"))

    alice, bob = state(*posts), state(*posts, who="bob")
    delta = state_delta(None, alice)[FIRST_BUCKET]
    delta.merge(state_delta(None, bob)[FIRST_BUCKET])

    assert (alice.open_wait is not None, bob.open_wait is None) == (True, True)
    assert {name: value for name, value in delta.counters.items() if value} == {
        "waits": 2,
        "open": 1,
        "responded": 1,
        "met": 1,
    }
    assert delta.calendar.count == 1


@given(
    counters=st.lists(st.integers(-5, 10**9), min_size=len(COUNTER_NAMES), max_size=len(COUNTER_NAMES)),
    calendar=st.lists(st.floats(0, 10**8, allow_nan=False), max_size=40),
    business=st.lists(st.floats(0, 10**8, allow_nan=False), max_size=40),
)
def test_packed_totals_unpack_to_the_same_sums(
    counters: list[int], calendar: list[float], business: list[float]
) -> None:
    totals = BucketTotals(
        calendar=LatencyHistogram.from_values(calendar), business=LatencyHistogram.from_values(business)
    )
    totals.counters.update(dict(zip(COUNTER_NAMES, counters, strict=True)))

    assert same_sums(unpack(pack(totals)), totals)


def test_a_histogram_with_a_negative_count_packs_and_unpacks_unchanged() -> None:
    totals = BucketTotals(calendar=LatencyHistogram.from_values([60.0, 3600.0]))
    totals.merge(BucketTotals(calendar=LatencyHistogram.from_values([60.0, 60.0]).negated()))

    assert same_sums(unpack(pack(totals)), totals)


def test_a_packed_histogram_is_smaller_than_one_attribute_per_bin() -> None:
    generator = random.Random(4)
    latencies = [generator.lognormvariate(7.5, 1.3) for _ in range(20_000)]
    totals = BucketTotals(calendar=LatencyHistogram.from_values(latencies))

    packed = len(pack(totals).encode())
    # As DynamoDB sizes an attribute per bin: its name, and a number of ceil(digits / 2) + 1 bytes.
    per_bin = sum(
        len(f"c{index}") + math.ceil(len(str(count)) / 2) + 1 for index, count in totals.calendar.to_bins()[0].items()
    )

    assert packed < per_bin / 1.5
