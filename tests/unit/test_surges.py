"""Surges on the pure side: slots and their exact deltas, the baseline, the Poisson thresholds, opening once and
closing with hysteresis, and counting arrivals exactly once whatever the stream redelivers.

Expected values are computed here from the definitions (Poisson sums written out, counts by hand), never with the
code under test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.dal.aggregates import GUARD_PREFIX
from replyclock.dal.surges import SlotShard, StoredSlot
from replyclock.dal.table import ConditionFailed
from replyclock.logic.surges import (
    SLOT,
    OpenSurge,
    SlotKey,
    SurgePolicy,
    SurgeReading,
    assess,
    baseline_per_slot,
    decide,
    poisson_tail,
    slot_delta,
    slot_label,
    slot_start,
    surprising_count,
)
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, ConversationState, Post
from replyclock.services.aggregating import StateChange
from replyclock.services.surging import count_arrivals
from tests.support.builders import T0, brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme")
POLICY = SurgePolicy()
NOW = T0 + timedelta(hours=3, minutes=2)  # 13:02, two minutes into the slot 13:00


def lane(posts: list[Post], version: int = 1, customer_name: str = "alice") -> ConversationState:
    waits = compute_waits(posts, ACME, brand_directory([ACME]).brand_for_handle).get(customer_name, [])
    return ConversationState(
        channel="x",
        conversation_id="c1",
        brand_id="acme",
        customer=customer_name,
        version=version,
        waits=waits[-1:],
        wait_count=len(waits),
    )


def reading(counts: Mapping[int, int], seasonal: tuple[int, ...] = (), now: datetime = NOW) -> SurgeReading:
    """Counts by slots back from now's slot (0 = the current slot, 1 = the one before, ...)."""
    current = slot_start(now)
    return SurgeReading(now, {current - SLOT * back: count for back, count in counts.items()}, seasonal)


def poisson_at_least(count: int, rate: float) -> float:
    return 1.0 - sum(math.exp(-rate) * rate**k / math.factorial(k) for k in range(count))


# Slots


def test_a_moment_falls_in_the_five_minute_slot_that_holds_it() -> None:
    moment = datetime(2026, 11, 18, 10, 9, 59, 999_999, tzinfo=UTC)

    assert slot_start(moment) == datetime(2026, 11, 18, 10, 5, tzinfo=UTC)
    assert slot_label(moment) == "2026-11-18T10:05"
    assert slot_label(datetime(2026, 11, 18, 10, 10, tzinfo=UTC)) == "2026-11-18T10:10"


def test_a_new_wait_adds_one_arrival_to_the_slot_of_its_start() -> None:
    opened = lane([customer("1", 7)])

    assert slot_delta(None, opened) == {SlotKey("acme", "x", "2026-11-18T10:05"): 1}


def test_an_answer_changes_no_slot() -> None:
    waiting = lane([customer("1", 7)])
    answered = lane([customer("1", 7), brand("2", 30, reply_to="1")], version=2)

    assert slot_delta(waiting, answered) == {}


def test_an_earlier_post_arriving_late_moves_the_arrival_to_its_own_slot() -> None:
    # The mention of 10:07 was measured first; the customer's earlier post of 10:02 arrives later.
    first_seen = lane([customer("2", 7)])
    complete = lane([customer("1", 2), customer("2", 7)], version=2)

    assert slot_delta(first_seen, complete) == {
        SlotKey("acme", "x", "2026-11-18T10:05"): -1,
        SlotKey("acme", "x", "2026-11-18T10:00"): 1,
    }


# Poisson thresholds


def test_the_poisson_tail_is_the_probability_of_at_least_that_many() -> None:
    for count, rate in [(0, 2.0), (1, 0.3), (2, 0.75), (5, 0.75), (12, 4.0), (30, 25.0)]:
        assert math.isclose(poisson_tail(count, rate), poisson_at_least(count, rate), rel_tol=1e-9, abs_tol=1e-15)


def test_the_surprising_count_is_the_smallest_that_rare() -> None:
    for rate, tail in [(0.25, 1e-4), (0.75, 1e-4), (3.0, 1e-4), (10.0, 0.05), (40.0, 1e-4)]:
        expected = next(k for k in range(1, 1000) if poisson_at_least(k, rate) <= tail)

        assert surprising_count(rate, tail) == expected


# Baseline


def test_the_baseline_is_the_largest_of_seasonal_recent_and_floor() -> None:
    # Same hour of week over four weeks: 96 arrivals in all, 96 / (4 * 12) = 2 a slot.
    assert baseline_per_slot(reading({}, seasonal=(30, 30, 36, 0))) == 2.0
    # The hour before the 15-minute window: slots 3..14 back hold 36 arrivals, 3 a slot.
    assert baseline_per_slot(reading({back: 3 for back in range(3, 15)}, seasonal=(30, 30, 36, 0))) == 3.0
    # A quiet brand: the floor.
    assert baseline_per_slot(reading({5: 1})) == POLICY.floor_per_slot


def test_the_window_being_judged_is_not_part_of_its_own_baseline() -> None:
    assert baseline_per_slot(reading({0: 40, 1: 40, 2: 40})) == POLICY.floor_per_slot


# Opening and closing


def test_five_mentions_in_five_minutes_are_a_surge_for_a_quiet_brand() -> None:
    assessment = assess(reading({0: 5}))

    assert assessment.surging
    assert (assessment.window_slots, assessment.arrivals) == (1, 5)
    assert assessment.ratio == 5 / POLICY.floor_per_slot


def test_four_mentions_are_not_even_for_a_silent_brand() -> None:
    assert not assess(reading({0: 4})).surging


def test_a_busy_brand_at_its_usual_rate_is_no_surge() -> None:
    usual = {back: 15 for back in range(0, 15)}
    assert not assess(reading(usual)).surging
    # Yet its usual rate doubled over 15 minutes is.
    assert assess(reading({**usual, 0: 30, 1: 30, 2: 30})).surging


def test_a_surge_opens_once_then_stays_open_while_the_rate_is_high() -> None:
    start = reading({0: 8})
    decision = decide(None, start)
    assert decision.opens and not decision.closes

    episode = OpenSurge(slot_start(NOW), decision.assessment.baseline_per_slot)
    later = reading({0: 9, 1: 9, 2: 9, 3: 8}, now=NOW + 3 * SLOT)
    still = decide(episode, later)
    assert not still.opens and not still.closes


def test_it_closes_when_complete_slots_return_to_the_baseline_frozen_at_opening() -> None:
    episode = OpenSurge(slot_start(NOW), POLICY.floor_per_slot)
    # Four slots on: the three complete slots after the opening hold 1 arrival (0.75 expected): calm.
    after = reading({4: 8, 3: 1, 2: 0, 1: 0, 0: 0}, now=NOW + 4 * SLOT)

    assert decide(episode, after).closes


def test_closing_has_hysteresis_a_rate_too_low_to_open_keeps_it_open() -> None:
    episode = OpenSurge(slot_start(NOW), POLICY.floor_per_slot)
    # Three complete slots with 4 arrivals: not enough to open (min 5), too many to call calm at 0.75 expected.
    lingering = reading({4: 8, 3: 2, 2: 1, 1: 1, 0: 0}, now=NOW + 4 * SLOT)

    assert not decide(None, reading({0: 4})).opens
    assert poisson_at_least(4, 0.75) < POLICY.close_tail
    assert not decide(episode, lingering).closes


def test_an_episode_lasts_at_least_a_window_of_complete_slots() -> None:
    episode = OpenSurge(slot_start(NOW), POLICY.floor_per_slot)

    assert not decide(episode, reading({1: 6, 0: 0}, now=NOW + SLOT)).closes


# Counting arrivals exactly once


@dataclass
class MemorySlots:
    """SurgeStore's slot half in memory: a full write conditioned on the revision read, as DynamoDB does it."""

    items: dict[SlotShard, StoredSlot] = field(default_factory=dict)

    def read_slots(self, keys: Iterable[SlotShard]) -> dict[SlotShard, StoredSlot]:
        return {key: self.items.get(key, StoredSlot()) for key in keys}

    def write_slot(
        self, key: SlotShard, read: StoredSlot, added: int, guards_written: Mapping[str, str], now: datetime
    ) -> None:
        current = self.items.get(key, StoredSlot())
        if current.revision != read.revision:
            raise ConditionFailed("written meanwhile")
        self.items[key] = StoredSlot(read.count + added, {**read.guards, **guards_written}, read.revision + 1)


def lane_history(starts: list[int]) -> list[ConversationState]:
    """One lane recomputed as its customer's posts arrive in the given order (minutes after T0)."""
    history: list[ConversationState] = []
    seen: list[Post] = []
    for version, minute in enumerate(starts, start=1):
        seen.append(customer(f"p{minute}", minute, conversation="c1"))
        history.append(lane(sorted(seen, key=lambda post: post.created_at), version=version))
    return history


def changes_of(history: list[ConversationState], source: str = "CONV#x#c1|STATE#acme#alice") -> list[StateChange]:
    return [
        StateChange(f"{index:021d}", source, state.version, history[index - 1] if index else None, state)
        for index, state in enumerate(history)
    ]


@settings(max_examples=60, deadline=None)
@given(
    starts=st.lists(st.integers(min_value=0, max_value=59), min_size=1, max_size=6, unique=True),
    data=st.data(),
)
def test_redelivered_batches_count_each_arrival_once(starts: list[int], data: st.DataObject) -> None:
    # A lane whose posts arrive out of order; its state changes are delivered in order (one shard), in batches
    # that a stream may retry: any batch may come again, whole, after later ones were applied.
    changes = changes_of(lane_history(starts))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(changes)), max_size=len(changes))) | {len(changes)})
    batches = [changes[start:end] for start, end in zip([0, *cuts[:-1]], cuts, strict=True)]
    redelivered = data.draw(st.lists(st.sampled_from(batches), max_size=4))
    store = MemorySlots()

    for batch in [*batches, *redelivered]:
        assert count_arrivals(store, batch, T0) == set()  # type: ignore[arg-type]

    earliest = min(starts)  # the lane's one wait starts at its earliest post
    expected = {SlotKey("acme", "x", slot_label(T0 + timedelta(minutes=earliest))): 1}
    assert {part.key: slot.count for part, slot in store.items.items() if slot.count} == expected
    assert all(name.startswith(GUARD_PREFIX) for slot in store.items.values() for name in slot.guards)


def test_a_slot_older_than_anything_the_sweeper_reads_is_not_written() -> None:
    # A backfill measured 30 days after its posts: the seasonal baseline reads four weeks back, no further.
    store = MemorySlots()
    [change] = changes_of(lane_history([7]))

    assert count_arrivals(store, [change], T0 + timedelta(days=30)) == set()  # type: ignore[arg-type]
    assert store.items == {}
    assert count_arrivals(store, [change], T0 + timedelta(days=28)) == set()  # type: ignore[arg-type]
    assert {part.key: slot.count for part, slot in store.items.items()} == {SlotKey("acme", "x", "2026-11-18T10:05"): 1}
