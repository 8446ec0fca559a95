"""Exposure on the pure side: what the index entry carries, what the sweeper sums, the order it alerts in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from replyclock.dal.conversations import state_to_item
from replyclock.dal.exposure import BrandExposure, ChannelExposure, exposure_from_item, exposure_to_item
from replyclock.dal.open_waits import OpenWaitEntry, entry_from_item
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, ConversationState, Post
from replyclock.services.sweeping import OpenWaitGauge, brand_exposures, due_in_alert_order, open_wait_gauges
from tests.support.builders import T0, brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme")
NOW = T0 + timedelta(hours=2)


def entry(customer: str, exposure: int, *, due_minutes: float | None = 0, channel: str = "x") -> OpenWaitEntry:
    return OpenWaitEntry(
        brand_id="acme",
        channel=channel,
        conversation_id=f"c-{customer}",
        customer=customer,
        open_since=T0,
        next_alert_at=None if due_minutes is None else T0 + timedelta(minutes=due_minutes),
        exposure=exposure,
    )


def lane(posts: list[Post]) -> ConversationState:
    [waits] = compute_waits(posts, ACME, brand_directory([ACME]).brand_for_handle).values()
    return ConversationState(
        channel="x", conversation_id="c1", brand_id="acme", customer="alice", waits=[waits[-1]], wait_count=1
    )


def test_an_open_lane_projects_its_exposure_into_the_index_and_the_entry_reads_it() -> None:
    item = state_to_item(lane([customer("1", 0, reach=7_000)]))

    assert item["exposure"] == 7_000
    assert entry_from_item(item).exposure == 7_000


def test_a_lane_without_reach_or_answered_projects_no_exposure() -> None:
    unknown = state_to_item(lane([customer("1", 0)]))
    answered = state_to_item(lane([customer("1", 0, reach=7_000), brand("2", 5, reply_to="1")]))

    assert "exposure" not in unknown and entry_from_item(unknown).exposure == 0
    assert "exposure" not in answered


def test_gauges_sum_exposure_per_brand_and_channel() -> None:
    gauges = open_wait_gauges(
        [entry("a", 100), entry("b", 2_000), entry("c", 0), entry("d", 40, channel="bluesky")], NOW
    )

    assert gauges[("acme", "x")] == OpenWaitGauge(3, 7200.0, 2_100)
    assert gauges[("acme", "bluesky")] == OpenWaitGauge(1, 7200.0, 40)


def test_due_waits_are_alerted_most_exposed_first_then_earliest_due() -> None:
    entries = [
        entry("late-small", 10, due_minutes=5),
        entry("not-due", 1_000_000, due_minutes=500),
        entry("breached", 999_999, due_minutes=None),
        entry("big", 9_000, due_minutes=60),
        entry("early-small", 10, due_minutes=1),
        entry("unknown", 0, due_minutes=0),
    ]

    assert [e.customer for e in due_in_alert_order(entries, NOW)] == ["big", "early-small", "late-small", "unknown"]


def test_brand_exposures_give_every_known_brand_a_count_zero_included() -> None:
    gauges = {("acme", "x"): OpenWaitGauge(3, 60.0, 2_100), ("acme", "bluesky"): OpenWaitGauge(1, 5.0, 40)}
    now = datetime(2026, 11, 18, 12, tzinfo=UTC)

    [acme, globex] = brand_exposures(gauges, ["globex", "acme"], now)

    assert acme == BrandExposure(
        "acme", now, 4, 2_140, {"bluesky": ChannelExposure(1, 40), "x": ChannelExposure(3, 2_100)}
    )
    assert globex == BrandExposure("globex", now, 0, 0, {})


def test_an_exposure_item_reads_back_as_written() -> None:
    counted = BrandExposure("acme", NOW, 4, 2_140, {"x": ChannelExposure(4, 2_140)})

    assert exposure_from_item(exposure_to_item(counted)) == counted
