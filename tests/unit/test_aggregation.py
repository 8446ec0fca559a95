from __future__ import annotations

from replyclock.logic.aggregation import BucketKey, hour_of, state_delta, totals_by_bucket
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, ConversationState, Priority, WaitKind
from tests.support.builders import T0, brand, customer

ACME = Brand(id="acme", name="Acme")


def state(*posts: object) -> ConversationState:
    return ConversationState(channel="x", conversation_id="c1", brand_id="acme", waits=compute_waits(posts, ACME))  # type: ignore[arg-type]


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
    waits = compute_waits([customer("1", 0), brand("2", 5), customer("3", 90, "again"), brand("4", 95)], ACME)

    buckets = totals_by_bucket(waits)

    assert {(key.kind, key.period) for key in buckets} == {
        (WaitKind.FIRST, "2026-11-18T10"),
        (WaitKind.NEXT, "2026-11-18T11"),
    }
