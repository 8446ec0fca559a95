"""The demo dataset: several brands and channels, both clocks, unanswered mentions, and alerts within a minute."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtools.demo import DemoDataset, generate
from replyclock.connectors.replay import jsonl_entries
from replyclock.models.domain import Clock, Post, Wait, WaitKind
from replyclock.services.measuring import directory_from
from tests.support.expectations import LaneKey, expected_waits

# A Tuesday at 10:00 in London: the business-clock brand is open.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset() -> DemoDataset:
    return generate(now=NOW)


def lanes(dataset: DemoDataset) -> dict[LaneKey, list[Wait]]:
    return expected_waits(dataset.posts, directory_from(dataset.brands))


def waits_by_brand(dataset: DemoDataset) -> dict[str, list[Wait]]:
    waits: dict[str, list[Wait]] = defaultdict(list)
    for (_, _, brand_id, _), lane_waits in lanes(dataset).items():
        waits[brand_id].extend(lane_waits)
    return waits


def test_it_spans_several_brands_channels_and_both_clocks(dataset: DemoDataset) -> None:
    assert len(dataset.brands) >= 3
    assert len({post.channel for post in dataset.posts}) >= 4
    assert {brand.current_policy.clock for brand in dataset.brands} == {Clock.CALENDAR, Clock.BUSINESS}
    assert all(NOW - timedelta(hours=49) <= post.created_at <= NOW for post in dataset.posts)


def test_brands_answer_after_log_normal_delays_and_leave_some_mentions_unanswered(dataset: DemoDataset) -> None:
    for brand_id, waits in waits_by_brand(dataset).items():
        first = [wait for wait in waits if wait.kind is WaitKind.FIRST]
        answered = [wait.calendar_seconds for wait in first if wait.calendar_seconds is not None]
        assert len(answered) > 20, brand_id
        assert any(wait.is_open for wait in first), brand_id
        # Right-skewed, as response times are: the mean well above the median.
        assert statistics.mean(answered) > statistics.median(answered), brand_id
        assert any(wait.kind is WaitKind.NEXT for wait in waits), brand_id


def test_other_customers_join_some_threads_and_wait_on_their_own(dataset: DemoDataset) -> None:
    # Per brand: threads where several customers wait; in some the answer closed every one of their waits,
    # in others it closed one while another customer's wait stays open
    threads: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    for (channel, conversation_id, brand_id, _), lane_waits in lanes(dataset).items():
        threads[(brand_id, channel, conversation_id)].append(lane_waits[-1].is_open)
    for brand in dataset.brands:
        shared = [still_open for (brand_id, _, _), still_open in threads.items() if brand_id == brand.id]
        shared = [still_open for still_open in shared if len(still_open) > 1]
        assert len(shared) >= 3, brand.id
        assert any(not any(still_open) for still_open in shared), brand.id
        assert any(any(still_open) and not all(still_open) for still_open in shared), brand.id


def test_unanswered_mentions_turn_at_risk_and_breach_within_the_first_minute(dataset: DemoDataset) -> None:
    for brand_id, waits in waits_by_brand(dataset).items():
        open_waits = [wait for wait in waits if wait.is_open]
        due_soon = [wait for wait in open_waits if NOW < wait.due_at <= NOW + timedelta(minutes=1)]
        at_risk_soon = [wait for wait in open_waits if NOW < wait.at_risk_at <= NOW + timedelta(minutes=1)]
        assert len(due_soon) >= 3, brand_id
        assert len(at_risk_soon) >= 2, brand_id


def test_it_is_written_as_the_replay_connector_s_jsonl(dataset: DemoDataset, tmp_path: Path) -> None:
    entries = jsonl_entries(dataset.write_jsonl(tmp_path / "demo.jsonl").read_text())
    posts = [entry for entry in entries if isinstance(entry, Post)]
    assert len(posts) == len(entries)
    assert sorted(posts, key=lambda post: post.id) == sorted(dataset.posts, key=lambda post: post.id)


def test_the_same_seed_and_time_give_the_same_dataset() -> None:
    assert generate(now=NOW).posts == generate(now=NOW).posts
