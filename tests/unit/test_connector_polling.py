"""The ingest service's poll loop, with scripted connectors and in-memory stores (no AWS, no network)."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from replyclock.connectors.base import Cursor, Page
from replyclock.connectors.http import Deadline, Throttled
from replyclock.dal.table import ConditionFailed, StoreError
from replyclock.models.domain import Post
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import PollStatus, poll_source
from tests.support.builders import customer
from tests.support.ingesting import NOW, MemoryPosts, MemorySourceState

SOURCE = Source(id="scripted", kind=SourceKind.REPLAY, replay_uri="s3://exports/a.jsonl")


class Scripted:
    """A connector handing out fixed pages (or raising an error in place of one)."""

    def __init__(self, pages: Iterable[Page | Exception]) -> None:
        self._pages = list(pages)
        self.started_from: Cursor | None = None

    def pages(self, cursor: Cursor) -> Generator[Page]:
        self.started_from = cursor
        for page in self._pages:
            if isinstance(page, Exception):
                raise page
            yield page


class FailingPosts(MemoryPosts):
    """Writes fail from the n-th call on."""

    def __init__(self, failing_call: int) -> None:
        super().__init__()
        self._failing_call = failing_call
        self._calls = 0

    def put_many(self, posts: Iterable[Post]) -> int:
        self._calls += 1
        if self._calls >= self._failing_call:
            raise StoreError("ProvisionedThroughputExceededException")
        return super().put_many(posts)


TWO_HOURS_AGO = NOW - timedelta(hours=2)


def page(*post_ids: str, offset: int, minute: float = 0) -> Page:
    posts = tuple(customer(post_id, minute, start=TWO_HOURS_AGO) for post_id in post_ids)
    return Page(posts=posts, cursor={"offset": offset})


def poll(connector: Scripted, state: MemorySourceState, posts: MemoryPosts | None = None, at: datetime = NOW) -> Any:
    return poll_source(
        SOURCE,
        connector,
        state=state,
        posts=posts or MemoryPosts(),
        deadline=Deadline.unlimited(),
        now=lambda: at,
        owner="test",
        lease_duration=timedelta(minutes=5),
    )


@pytest.fixture
def state() -> MemorySourceState:
    return MemorySourceState()


def test_the_cursor_moves_only_after_the_pages_posts_are_written(state: MemorySourceState) -> None:
    # Given a store that fails while writing the second page
    connector = Scripted([page("1", "2", offset=2), page("3", offset=3)])

    # When the source is polled
    with pytest.raises(StoreError):
        poll(connector, state, FailingPosts(failing_call=2))

    # Then the cursor stops after the first page, and the lease is given back
    assert state.cursor.value == {"offset": 2}
    assert state.lease is None


def test_the_next_poll_starts_from_the_stored_cursor(state: MemorySourceState) -> None:
    # Given a cursor stored by an earlier poll
    poll(Scripted([page("1", offset=1)]), state)
    connector = Scripted([])

    # When the source is polled again
    poll(connector, state)

    # Then the connector is handed that cursor
    assert connector.started_from == {"offset": 1}


def test_a_poll_finds_the_source_busy_while_another_holds_its_lease(state: MemorySourceState) -> None:
    # Given another poll holding the lease
    state.acquire_lease(SOURCE.id, "other", NOW, timedelta(minutes=5))
    connector = Scripted([page("1", offset=1)])

    # When the source is polled
    outcome = poll(connector, state)

    # Then it reads nothing
    assert outcome.status is PollStatus.BUSY
    assert connector.started_from is None


def test_a_throttled_poll_keeps_what_it_wrote_and_its_cursor(state: MemorySourceState) -> None:
    # Given the source throttling after one page
    connector = Scripted([page("1", offset=1), Throttled("429", retry_after=42.0)])

    # When the source is polled
    outcome = poll(connector, state)

    # Then the poll ends early but cleanly, holding the source for as long as the platform asked
    assert outcome.status is PollStatus.THROTTLED
    assert outcome.retry_after_seconds == 42.0
    assert state.cursor.value == {"offset": 1}
    assert state.lease == ("test", NOW + timedelta(seconds=42))


def test_no_poll_asks_a_platform_again_before_its_retry_after_is_over(state: MemorySourceState) -> None:
    # Given a poll throttled with Retry-After: 42
    poll(Scripted([page("1", offset=1), Throttled("429", retry_after=42.0)]), state)

    # When the schedule polls again 30 s later, then 43 s later
    early_connector = Scripted([page("2", offset=2)])
    early = poll(early_connector, state, at=NOW + timedelta(seconds=30))
    late = poll(Scripted([page("2", offset=2)]), state, at=NOW + timedelta(seconds=43))

    # Then the early poll did not touch the platform, and the late one went on from the cursor
    assert early.status is PollStatus.BUSY
    assert early_connector.started_from is None
    assert late.status is PollStatus.COMPLETED
    assert state.cursor.value == {"offset": 2}


def test_an_absurd_retry_after_holds_the_source_fifteen_minutes_at_most(state: MemorySourceState) -> None:
    poll(Scripted([Throttled("429", retry_after=10**9)]), state)

    assert state.lease == ("test", NOW + timedelta(minutes=15))


def test_an_unchanged_cursor_is_not_written_again(state: MemorySourceState) -> None:
    # Given a poll that stored a cursor
    poll(Scripted([page("1", offset=1)]), state)

    # When the next poll finds nothing new
    poll(Scripted([Page(posts=(), cursor={"offset": 1})]), state)

    # Then the cursor was written once
    assert state.saves == [{"offset": 1}]


def test_a_poll_that_lost_its_lease_stops_at_the_cursor_conflict(
    state: MemorySourceState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store refusing the cursor because another poll moved it
    def refuse(*args: Any) -> int:
        raise ConditionFailed("ConditionalCheckFailedException")

    monkeypatch.setattr(state, "save_cursor", refuse)

    # When the source is polled
    outcome = poll(Scripted([page("1", offset=1), page("2", offset=2)]), state)

    # Then it stops without reading further
    assert outcome.status is PollStatus.LEASE_LOST
    assert outcome.pages == 1


def test_ingest_lag_is_now_minus_the_newest_post(state: MemorySourceState, capsys: pytest.CaptureFixture[str]) -> None:
    # Given posts whose newest is 90 minutes before now
    connector = Scripted([page("1", offset=1, minute=0), page("2", offset=2, minute=30)])

    # When the source is polled
    poll(connector, state)

    # Then the lag metric says 90 minutes
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = next(document for document in documents if "IngestLagSeconds" in document)
    assert metrics["IngestLagSeconds"] == [90 * 60.0]
    assert metrics["IngestedPosts"] == [2.0]
