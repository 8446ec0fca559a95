"""Faults injected into ingest polls: each ends with every served post stored once and a consistent cursor.

Every network connector polls a local server (127.0.0.1) serving generated pages in its platform's
shape, through services/dispatching.poll_one on moto. Faults: the invocation running out of time
between pages, the runtime killing it in the middle of a page's writes (its lease left behind), a
network answering 500, then 429, then garbage, and DynamoDB throttling post or cursor writes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError
from pytest_httpserver import HTTPServer
from werkzeug import Response

from benchmarks.ingest import FEEDS, Feed, reset_connector_caches
from replyclock.connectors.base import Connector
from replyclock.connectors.http import Deadline, MalformedResponse
from replyclock.dal.sources import SourceStore, lease_key
from replyclock.dal.table import Throttled, get_resource, get_table
from replyclock.models.sources import Source, SourceKind
from replyclock.services.dispatching import poll_one
from replyclock.services.ingesting import SAFETY_MARGIN_MS, PollContext, PollOutcome, PollStatus
from tests.support.ingesting import NOW, FakeApi, create_table

# Mentions and the brand's replies; several pages of each stream on every platform.
ITEMS = 300
LAMBDA_MAXIMUM_MS = 900_000


class Killed(BaseException):
    """The Lambda runtime ending an invocation: no `except`, and nothing after it reaches DynamoDB."""


@pytest.fixture
def table(aws: None) -> Iterator[str]:
    reset_connector_caches()
    yield create_table()
    reset_connector_caches()


@pytest.fixture(params=list(FEEDS))
def feed(request: pytest.FixtureRequest, httpserver_ipv4: HTTPServer, table: str) -> Feed:
    feed = FEEDS[request.param].generate(ITEMS).install(FakeApi(httpserver_ipv4))
    SourceStore(table).put(feed.source())
    return feed


@pytest.fixture
def dynamodb_calls() -> Iterator[Callable[[Callable[..., None]], None]]:
    """Installs a hook on every DynamoDB call of the table's client, from inside botocore."""
    events = get_resource().meta.client.meta.events
    installed: list[Callable[..., None]] = []

    def install(hook: Callable[..., None]) -> None:
        events.register("before-call.dynamodb", hook)
        installed.append(hook)

    yield install
    for hook in installed:
        events.unregister("before-call.dynamodb", hook)


def written(model: Any, params: dict[str, Any]) -> str | None:
    """What a PutItem writes: "post", "cursor" or "lease" (None for other calls)."""
    if model.name != "PutItem":
        return None
    item = json.loads(params["body"])["Item"]
    return "post" if item["pk"]["S"].startswith("CONV#") else str(item["sk"]["S"]).lower()


class KillAt:
    """Kills the invocation (raises Killed) at its n-th post write, and on every DynamoDB call after it."""

    def __init__(self, post_write: int) -> None:
        self.post_write = post_write
        self.post_writes = 0
        self.dead = False

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.dead and written(model, params) == "post":
            self.post_writes += 1
            self.dead = self.post_writes == self.post_write
        if self.dead:
            raise Killed()


class ThrottleWrites:
    """ProvisionedThroughputExceededException on `count` writes of one kind from the `first` on, from botocore."""

    def __init__(self, kind: str, first: int, count: int) -> None:
        self.kind = kind
        self.first = first
        self.count = count
        self.writes = 0
        self.injected = 0

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if written(model, params) != self.kind:
            return
        self.writes += 1
        if self.first <= self.writes < self.first + self.count:
            self.injected += 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}, "PutItem"
            )


def invoke(
    feed: Feed, table: str, remaining_ms: Callable[[], int] = lambda: LAMBDA_MAXIMUM_MS, at: datetime = NOW
) -> PollOutcome:
    """One scheduled invocation of the ingest function for the feed's source."""

    def build(source: Source, *, deadline: Deadline, now: Callable[[], datetime]) -> Connector:
        return feed.connector(deadline, now)

    return poll_one(
        feed.source().id,
        PollContext(
            table_name=table,
            remaining_ms=remaining_ms,
            owner=f"invocation-{at}",
            now=lambda: at,
            build=build,
        ),
    )


def stored_post_ids(table: str) -> Counter[str]:
    scan: dict[str, Any] = {"FilterExpression": Attr("item_type").eq("post"), "ProjectionExpression": "id"}
    ids: Counter[str] = Counter()
    while True:
        page = get_table(table).scan(**scan)
        ids.update(str(item["id"]) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return ids
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def cursor(feed: Feed, table: str) -> dict[str, Any]:
    return SourceStore(table).load_cursor(feed.source().id).value


def covered_by_cursor(feed: Feed, table: str) -> set[str]:
    """The posts a poll starting from the stored cursor would not read again (page tokens are offsets)."""
    covered: set[str] = set()
    for stream, items in feed.items.items():
        position = cursor(feed, table).get(stream, {})
        end = int(position["resume"]) if "resume" in position else len(items) if "watermark" in position else 0
        covered |= {post_id for item in items[:end] if (post_id := feed.post_id(item))}
    return covered


def assert_cursor_behind_stored_posts(feed: Feed, table: str) -> None:
    assert covered_by_cursor(feed, table) <= set(stored_post_ids(table)), "the cursor passed unwritten posts"


def assert_nothing_lost_or_doubled(feed: Feed, table: str) -> None:
    stored = stored_post_ids(table)
    assert set(stored) == feed.post_ids()
    assert set(stored.values()) == {1}
    # The walks are finished: each stream's cursor is its newest item, and the lease is given back.
    assert cursor(feed, table) == {stream: {"watermark": feed.watermark(stream)} for stream in feed.items}
    assert "Item" not in get_table(table).get_item(Key=lease_key(feed.source().id))


def page_requests(feed: Feed) -> int:
    # Session and token requests are POSTs; pages are GETs (Bluesky's profile lookups for reach are not pages).
    return sum(request.method == "GET" and "getProfiles" not in request.path for request in feed.api.requests)


def test_a_poll_out_of_time_between_pages_stops_cleanly_and_the_next_completes(feed: Feed, table: str) -> None:
    # Given an invocation whose remaining time falls to the safety margin once two pages were read
    def remaining_ms() -> int:
        return LAMBDA_MAXIMUM_MS if page_requests(feed) < 2 else SAFETY_MARGIN_MS

    # When the source is polled
    stopped = invoke(feed, table, remaining_ms)

    # Then the poll stops after those pages, keeping their posts and a cursor in the middle of the walk
    assert stopped.status is PollStatus.DEADLINE
    assert stopped.pages == 2
    assert "resume" in cursor(feed, table)["mentions"]
    assert len(stored_post_ids(table)) == stopped.ingested
    assert_cursor_behind_stored_posts(feed, table)

    # When the next scheduled invocation has time
    finished = invoke(feed, table)

    # Then it completes from where the first stopped: every post once, none counted new twice
    assert finished.status is PollStatus.COMPLETED
    assert stopped.ingested + finished.ingested == len(feed.post_ids())
    assert_nothing_lost_or_doubled(feed, table)


def test_an_invocation_killed_in_the_middle_of_a_page_is_resumed_once_its_lease_expires(
    feed: Feed, table: str, dynamodb_calls: Callable[[Callable[..., None]], None]
) -> None:
    # Given the runtime killing the invocation at its 130th post write (no page holds 130 posts)
    killer = KillAt(130)
    dynamodb_calls(killer)

    # When the source is polled
    with pytest.raises(Killed):
        invoke(feed, table)
    killer.dead = False

    # Then 129 posts are stored, and the cursor is not past any post the killed page did not write
    assert sum(stored_post_ids(table).values()) == 129
    assert_cursor_behind_stored_posts(feed, table)

    # When the next invocation comes while the dead one's lease lasts
    busy = invoke(feed, table, at=NOW + timedelta(minutes=5))

    # Then it leaves the source alone
    assert busy.status is PollStatus.BUSY

    # When one comes after the lease expired (the invocation's 15 minutes plus the margin)
    finished = invoke(feed, table, at=NOW + timedelta(minutes=17))

    # Then it re-reads the killed page and completes: the page's written posts are not stored twice
    assert finished.status is PollStatus.COMPLETED
    assert finished.ingested == len(feed.post_ids()) - 129
    assert_nothing_lost_or_doubled(feed, table)


def test_a_network_answering_500_then_429_then_garbage_loses_and_doubles_nothing(feed: Feed, table: str) -> None:
    # Given the API answering the third page request 500, its retry 429, and the request after that garbage
    # Bluesky and Reddit sign in first (a POST); the session or token is kept for the later polls.
    third = 3 + (1 if feed.kind in (SourceKind.BLUESKY, SourceKind.REDDIT) else 0)
    feed.api.faults = {
        third: Response("upstream failed", status=500),
        third + 1: Response('{"title": "Too Many Requests"}', status=429, headers={"Retry-After": "30"}),
        third + 2: Response('{"data": [{"id": "18', status=200, content_type="application/json"),
    }

    # When the source is polled three times, the second once the 429's Retry-After (30 s) is over
    throttled = invoke(feed, table)
    assert_cursor_behind_stored_posts(feed, table)
    with pytest.raises(MalformedResponse):
        invoke(feed, table, at=NOW + timedelta(seconds=31))
    assert_cursor_behind_stored_posts(feed, table)
    finished = invoke(feed, table, at=NOW + timedelta(seconds=32))

    # Then the 500 was retried, the 429 stopped the first poll, the garbage failed the second, the third completed
    answered = [request for request in feed.api.requests if request.method == "GET"]
    pages = [(request.path, request.args.get(feed.token_param)) for request in answered]
    assert pages[2] == pages[3] == pages[4] != pages[1]
    assert throttled.status is PollStatus.THROTTLED and throttled.retry_after_seconds == 30
    assert throttled.pages == 2
    assert finished.status is PollStatus.COMPLETED
    assert throttled.ingested + finished.ingested == len(feed.post_ids())
    assert_nothing_lost_or_doubled(feed, table)


@pytest.mark.parametrize("write", ["post", "cursor"])
def test_dynamodb_throttling_a_polls_writes_fails_it_and_the_next_polls_complete(
    feed: Feed, table: str, write: str, dynamodb_calls: Callable[[Callable[..., None]], None]
) -> None:
    # Given DynamoDB throttling three writes in a row (after the SDK's retries): from the 130th post or 2nd cursor
    throttle = ThrottleWrites(write, first=130 if write == "post" else 2, count=3)
    dynamodb_calls(throttle)

    # When the schedule polls the source until a poll completes
    outcomes: list[PollOutcome | Throttled] = []
    while len(outcomes) < 6 and not (outcomes and isinstance(outcomes[-1], PollOutcome)):
        try:
            outcomes.append(invoke(feed, table))
        except Throttled as error:
            outcomes.append(error)
            assert_cursor_behind_stored_posts(feed, table)

    # Then each throttled write failed one poll (typed), and the poll after them completed
    assert throttle.injected == 3
    assert [type(outcome) for outcome in outcomes] == [Throttled, Throttled, Throttled, PollOutcome]
    last = outcomes[-1]
    assert isinstance(last, PollOutcome) and last.status is PollStatus.COMPLETED
    assert_nothing_lost_or_doubled(feed, table)
