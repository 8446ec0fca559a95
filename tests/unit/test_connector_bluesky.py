"""The Bluesky connector against a local server answering with the documented lexicon shapes."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors import bluesky
from replyclock.models.domain import AuthorRole
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import MAX_RATE_LIMIT_WAIT, PollStatus
from tests.support.ingesting import FakeApi, Harness, captured_logs, fixture, json_response, rate_limited

BRAND_DID = "did:plc:acmehelp4q2n7xz3k5m6w8ab"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
P1 = "at://did:plc:dana7v3k2m4x6z8q1w5e9r0t/app.bsky.feed.post/3lbrtpa2abc21"
P2 = f"at://{BRAND_DID}/app.bsky.feed.post/3lbrtqb2abc22"
P3 = "at://did:plc:dana7v3k2m4x6z8q1w5e9r0t/app.bsky.feed.post/3lbrtrc2abc23"
P4 = "at://did:plc:lee2b4n6m8q0w2e4r6t8y0u1/app.bsky.feed.post/3lbrtsd2abc24"
P5 = "at://did:plc:lee2b4n6m8q0w2e4r6t8y0u1/app.bsky.feed.post/3lbrtzz2abc29"
ALL = {P1, P2, P3, P4}


class FakeBluesky:
    """createSession, listNotifications and getAuthorFeed, newest first with offset cursors."""

    def __init__(self, api: FakeApi, page_size: int = 10) -> None:
        self.api = api
        self.page_size = page_size
        self.session = fixture("bluesky", "session.json")
        self.notifications: list[dict[str, Any]] = fixture("bluesky", "notifications.json")["notifications"]
        self.feed: list[dict[str, Any]] = fixture("bluesky", "author_feed.json")["feed"]
        api.route(r"^/xrpc/com\.atproto\.server\.createSession$", self.create_session, method="POST")
        api.route(r"^/xrpc/app\.bsky\.notification\.listNotifications$", self.list_notifications)
        api.route(r"^/xrpc/app\.bsky\.feed\.getAuthorFeed$", self.author_feed)
        api.route(r"^/xrpc/app\.bsky\.actor\.getProfiles$", self.profiles)
        # handle -> followersCount that app.bsky.actor.getProfiles answers
        self.followers: dict[str, int] = {}

    def profiles(self, request: Request) -> Response:
        actors = request.args.getlist("actors")
        assert 1 <= len(actors) <= 25
        found = [
            {"did": f"did:plc:{actor.split('.')[0]}", "handle": actor, "followersCount": self.followers[actor]}
            for actor in actors
            if actor in self.followers
        ]
        return json_response({"profiles": found}, headers=self._limits())

    def create_session(self, request: Request) -> Response:
        assert request.get_json() == {"identifier": "acmehelp.bsky.social", "password": APP_PASSWORD}
        return json_response(self.session)

    def list_notifications(self, request: Request) -> Response:
        assert request.args.getlist("reasons") == ["mention", "reply", "quote"]
        return json_response(self._page(request, self.notifications, "notifications"), headers=self._limits())

    def author_feed(self, request: Request) -> Response:
        assert request.args["actor"] == BRAND_DID
        assert request.args["filter"] == "posts_with_replies"
        return json_response(self._page(request, self.feed, "feed"), headers=self._limits())

    def _page(self, request: Request, items: list[dict[str, Any]], name: str) -> dict[str, Any]:
        assert request.headers.get("Authorization") == f"Bearer {self.session['accessJwt']}"
        start = int(request.args.get("cursor", "0"))
        body: dict[str, Any] = {name: items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            body["cursor"] = str(start + self.page_size)
        return body

    def _limits(self) -> dict[str, str]:
        reset = str(int(time.time()) + 300)
        return {"ratelimit-limit": "3000", "ratelimit-remaining": "2990", "ratelimit-reset": reset}

    def session_requests(self) -> int:
        return sum(request.path.endswith("createSession") for request in self.api.requests)


@pytest.fixture(autouse=True)
def fresh_sessions() -> Iterator[None]:
    bluesky.clear_sessions()
    yield
    bluesky.clear_sessions()


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> FakeBluesky:
    return FakeBluesky(FakeApi(httpserver_ipv4))


@pytest.fixture
def harness(server: FakeBluesky) -> Harness:
    source = Source(
        id="acme-bluesky",
        kind=SourceKind.BLUESKY,
        brand_id="acme",
        account_id=BRAND_DID,
        account_handle="acmehelp.bsky.social",
        base_url=server.api.url,
        credentials_name="replyclock/acme-bluesky",
    )
    return Harness(source=source, credentials={"identifier": "acmehelp.bsky.social", "app_password": APP_PASSWORD})


def new_mention(uri: str, indexed_at: str) -> dict[str, Any]:
    notification: dict[str, Any] = copy.deepcopy(fixture("bluesky", "notifications.json")["notifications"][3])
    notification.update(uri=uri, indexedAt=indexed_at)
    notification["record"]["createdAt"] = indexed_at
    return notification


def test_first_poll_stores_posts_addressed_to_the_brand_and_its_own(harness: Harness) -> None:
    # Given a mention, a reply, a quote, a like, the brand's reply and a repost
    # When the source is polled for the first time
    outcome = harness.poll()

    # Then the posts are stored (not the like, not the repost), and the cursor holds the newest indexedAt
    assert outcome.status is PollStatus.COMPLETED
    assert harness.posts.ids() == ALL
    assert harness.state.cursor.value == {
        "mentions": {"watermark": "2026-11-20T10:00:00+00:00"},
        "own": {"watermark": "2026-11-20T09:35:00+00:00"},
    }


def test_a_reply_takes_its_root_and_parent_from_the_record(harness: Harness) -> None:
    # Given a customer's reply to the brand's reply
    # When it is ingested
    harness.poll()

    # Then its conversation is the thread's root and its parent the brand's post
    post = harness.posts.get(P3)
    assert post.conversation_id == P1
    assert post.in_reply_to == P2
    assert post.author == "dana.bsky.social"
    assert post.mentions == ("acmehelp.bsky.social",)
    assert post.url == "https://bsky.app/profile/dana.bsky.social/post/3lbrtrc2abc23"


def test_post_time_is_the_earlier_of_created_and_indexed(harness: Harness) -> None:
    # Given a quote whose createdAt is 30 minutes after Bluesky indexed it
    # When it is ingested
    harness.poll()

    # Then its time is when it was indexed
    assert harness.posts.get(P4).created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_the_brands_reply_is_a_brand_post_with_facet_mentions(harness: Harness) -> None:
    # Given the brand's reply in its author feed, mentioning the customer with a facet
    # When it is ingested
    harness.poll()

    # Then it is the brand speaking, in the customer's thread
    post = harness.posts.get(P2)
    assert post.author_role is AuthorRole.BRAND
    assert post.brand_id == "acme"
    assert post.conversation_id == P1
    assert post.mentions == ("dana.bsky.social",)


def test_incremental_poll_stops_at_the_watermark_and_reuses_the_session(harness: Harness, server: FakeBluesky) -> None:
    # Given a first poll, then a new mention
    harness.poll()
    server.notifications.insert(0, new_mention(P5, "2026-11-20T11:00:00.000Z"))

    # When the source is polled again
    outcome = harness.poll()

    # Then only the new post is written, the watermark moves, and no new session was created
    assert outcome.ingested == 1
    assert harness.posts.get(P5).conversation_id == P5
    assert harness.state.cursor.value["mentions"] == {"watermark": "2026-11-20T11:00:00+00:00"}
    assert server.session_requests() == 1


def test_a_mention_dated_far_ahead_of_our_clock_does_not_move_the_watermark(
    harness: Harness, server: FakeBluesky
) -> None:
    # Given a first poll that meets a notification indexed in 2099 (a broken clock somewhere)
    harness.poll()
    server.notifications.insert(0, new_mention(P5, "2099-01-01T00:00:00.000Z"))
    harness.poll()

    # When a real mention arrives after it
    p6 = P5.replace("3lbrtzz2abc29", "3lbrtzz2abc30")
    server.notifications.insert(0, new_mention(p6, "2026-11-20T11:00:00.000Z"))
    outcome = harness.poll()

    # Then it is not mistaken for already read, and the watermark is the newest trusted time
    assert outcome.ingested == 1
    assert p6 in harness.posts.ids()
    assert harness.state.cursor.value["mentions"] == {"watermark": "2026-11-20T11:00:00+00:00"}


def test_several_pages_are_walked_with_the_cursor(harness: Harness, server: FakeBluesky) -> None:
    # Given two notifications per page
    server.page_size = 2

    # When the source is polled
    harness.poll()

    # Then the second page is asked with the first page's cursor
    pages = [request for request in server.api.requests if request.path.endswith("listNotifications")]
    assert [request.args.get("cursor") for request in pages] == [None, "2"]
    assert harness.posts.ids() == ALL


def test_an_expired_session_is_renewed_once(harness: Harness, server: FakeBluesky) -> None:
    # Given the server rejecting the first read because the token expired
    server.api.faults[2] = json_response({"error": "ExpiredToken", "message": "Token has expired"}, status=400)

    # When the source is polled
    outcome = harness.poll()

    # Then a new session is created and the poll completes
    assert outcome.status is PollStatus.COMPLETED
    assert server.session_requests() == 2
    assert harness.posts.ids() == ALL


def test_a_429_stops_the_poll_and_the_next_poll_resumes_without_loss_or_duplicates(
    harness: Harness, server: FakeBluesky
) -> None:
    # Given two notifications per page, and the second page refused (requests: session, page 1, its authors' profiles,
    # page 2)
    server.page_size = 2
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(int(time.time()) + 300)}
    server.api.faults[4] = rate_limited(fixture("bluesky", "rate_limited.json"), headers)

    # When the source is polled
    throttled = harness.poll()

    # Then page 1 is kept, the cursor points at page 2
    assert throttled.status is PollStatus.THROTTLED
    assert harness.posts.ids() == {P4}
    assert harness.state.cursor.value["mentions"]["resume"] == "2"

    # When the next poll runs once the platform's wait is over, it completes with every post stored once
    harness.now += MAX_RATE_LIMIT_WAIT + timedelta(seconds=1)
    resumed = harness.poll()
    assert resumed.status is PollStatus.COMPLETED
    assert harness.posts.ids() == ALL
    assert set(harness.posts.attempts.values()) == {1}


def test_a_malformed_notification_is_rejected_and_the_rest_kept(harness: Harness, server: FakeBluesky) -> None:
    # Given a reply notification whose record has no createdAt
    del server.notifications[2]["record"]["createdAt"]

    # When the source is polled
    with captured_logs() as logs:
        outcome = harness.poll()

    # Then it is skipped and logged with its field
    assert outcome.rejected == 1
    assert harness.posts.ids() == ALL - {P3}
    rejected = [line for line in logs if line["message"] == "rejected item"]
    assert [(line["item_id"], line["field"]) for line in rejected] == [(P3, "record.createdAt")]


def test_a_spent_time_budget_stops_between_pages_and_a_rerun_completes(harness: Harness, server: FakeBluesky) -> None:
    # Given two notifications per page and a budget spent by the session, page 1 and its authors' profiles
    server.page_size = 2

    # When the source is polled
    stopped = harness.poll(server.api.budget_after(3))

    # Then it stops after page 1, and the next poll completes
    assert stopped.status is PollStatus.DEADLINE
    assert harness.posts.ids() == {P4}
    finished = harness.poll()
    assert finished.status is PollStatus.COMPLETED
    assert harness.posts.ids() == ALL
    assert set(harness.posts.attempts.values()) == {1}
