"""Source configuration, cursors and leases in the table (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from replyclock.dal.sources import SourceStore
from replyclock.dal.table import ConditionFailed
from replyclock.models.sources import Source, SourceKind
from tests.support.ingesting import create_table

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def store(aws: None) -> SourceStore:
    return SourceStore(create_table())


def x_source(source_id: str = "acme-x") -> Source:
    return Source(
        id=source_id,
        kind=SourceKind.X,
        brand_id="acme",
        account_id="1001",
        account_handle="AcmeHelp",
        credentials_name="replyclock/acme-x",
    )


def test_a_source_configuration_is_stored_as_data(store: SourceStore) -> None:
    # Given two configured sources
    store.put(x_source())
    store.put(Source(id="backfill", kind=SourceKind.REPLAY, replay_uri="s3://exports/twcs.csv"))

    # When they are read back
    # Then they are the same configurations
    assert store.get("acme-x") == x_source()
    assert {source.id for source in store.all()} == {"acme-x", "backfill"}
    assert store.get("missing") is None


def test_a_source_without_a_cursor_starts_empty(store: SourceStore) -> None:
    # Given a source never polled
    # When its cursor is loaded
    cursor = store.load_cursor("acme-x")

    # Then it is empty, at version 0
    assert (cursor.value, cursor.version) == ({}, 0)


def test_a_cursor_is_saved_with_a_version(store: SourceStore) -> None:
    # Given a first and a second save
    first = store.save_cursor("acme-x", {"mentions": {"watermark": "5"}}, 0, NOW)
    second = store.save_cursor("acme-x", {"mentions": {"watermark": "9"}}, first, NOW)

    # When the cursor is loaded
    cursor = store.load_cursor("acme-x")

    # Then it is the last one saved
    assert (cursor.value, cursor.version) == ({"mentions": {"watermark": "9"}}, second)


def test_a_cursor_moved_by_another_poll_is_not_overwritten(store: SourceStore) -> None:
    # Given a cursor at version 2
    store.save_cursor("acme-x", {"n": 1}, 0, NOW)
    store.save_cursor("acme-x", {"n": 2}, 1, NOW)

    # When a poll that read version 1 saves
    # Then its write is refused
    with pytest.raises(ConditionFailed):
        store.save_cursor("acme-x", {"n": 99}, 1, NOW)
    assert store.load_cursor("acme-x").value == {"n": 2}


def test_only_one_poll_holds_the_lease(store: SourceStore) -> None:
    # Given a poll holding the lease
    assert store.acquire_lease("acme-x", "poll-1", NOW, 5 * MINUTE)

    # When another poll tries while it is held
    # Then it is refused, even a second before expiry
    assert not store.acquire_lease("acme-x", "poll-2", NOW + MINUTE, 5 * MINUTE)
    assert not store.acquire_lease("acme-x", "poll-2", NOW + 5 * MINUTE - timedelta(seconds=1), 5 * MINUTE)


def test_an_expired_lease_can_be_taken(store: SourceStore) -> None:
    # Given a lease whose holder crashed
    store.acquire_lease("acme-x", "poll-1", NOW, 5 * MINUTE)

    # When another poll comes after its expiry
    # Then it takes the lease
    assert store.acquire_lease("acme-x", "poll-2", NOW + 5 * MINUTE, 5 * MINUTE)


def test_a_released_lease_frees_the_source(store: SourceStore) -> None:
    # Given a poll that took and released the lease
    store.acquire_lease("acme-x", "poll-1", NOW, 5 * MINUTE)
    store.release_lease("acme-x", "poll-1")

    # When the next poll comes right away
    # Then it takes the lease
    assert store.acquire_lease("acme-x", "poll-2", NOW, 5 * MINUTE)


def test_a_lease_held_for_a_rate_limit_keeps_polls_out_until_it_ends(store: SourceStore) -> None:
    # Given a poll throttled by the platform, holding the lease for 10 minutes
    store.acquire_lease("acme-x", "poll-1", NOW, 5 * MINUTE)
    store.hold_lease("acme-x", "poll-1", NOW + 10 * MINUTE, "rate limit")

    # When later polls come before and after that
    # Then only the one after it gets the lease
    assert not store.acquire_lease("acme-x", "poll-2", NOW + 9 * MINUTE, 5 * MINUTE)
    assert store.acquire_lease("acme-x", "poll-3", NOW + 10 * MINUTE, 5 * MINUTE)


def test_a_poll_cannot_hold_a_lease_it_no_longer_holds(store: SourceStore) -> None:
    # Given a lease taken over by poll-2 after poll-1's expired
    store.acquire_lease("acme-x", "poll-1", NOW, MINUTE)
    store.acquire_lease("acme-x", "poll-2", NOW + MINUTE, MINUTE)

    # When the late poll-1 tries to hold it for an hour
    store.hold_lease("acme-x", "poll-1", NOW + 60 * MINUTE, "rate limit")

    # Then poll-2's lease ends when it would have
    assert store.acquire_lease("acme-x", "poll-3", NOW + 2 * MINUTE, 5 * MINUTE)


def test_a_poll_cannot_release_a_lease_it_no_longer_holds(store: SourceStore) -> None:
    # Given a lease taken over by poll-2 after poll-1's expired
    store.acquire_lease("acme-x", "poll-1", NOW, MINUTE)
    store.acquire_lease("acme-x", "poll-2", NOW + MINUTE, 5 * MINUTE)

    # When the late poll-1 releases
    store.release_lease("acme-x", "poll-1")

    # Then poll-2 still holds it
    assert not store.acquire_lease("acme-x", "poll-3", NOW + 2 * MINUTE, 5 * MINUTE)


def test_leases_of_different_sources_are_independent(store: SourceStore) -> None:
    # Given one source being polled
    store.acquire_lease("acme-x", "poll-1", NOW, 5 * MINUTE)

    # When another source is polled meanwhile
    # Then it gets its own lease
    assert store.acquire_lease("acme-reddit", "poll-2", NOW, 5 * MINUTE)
