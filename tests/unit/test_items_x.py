"""What each kind of X item becomes (docs/connectors.md, "What each item becomes"), on payloads shaped as
the X API v2 documents them: referenced_tweets, edit_history_tweet_ids, public_metrics, includes."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.models.domain import AuthorRole, Engagement
from replyclock.models.sources import Source, SourceKind
from tests.support.ingesting import FakeApi, Harness, json_response

BRAND_ID = "1001"


def tweet(tweet_id: str, text: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": tweet_id,
        "text": text,
        "author_id": "2001",
        "created_at": "2026-11-20T10:00:00.000Z",
        "conversation_id": tweet_id,
        "edit_history_tweet_ids": [tweet_id],
        "entities": {"mentions": [{"start": 0, "end": 9, "username": "AcmeHelp", "id": BRAND_ID}]},
        **fields,
    }


class FakeTimelines:
    """One page per timeline; GET /2/tweets?ids= answers from `lookup`."""

    def __init__(self, api: FakeApi) -> None:
        self.mentions: dict[str, Any] = {"data": [], "includes": {"users": [{"id": "2001", "username": "dana_k"}]}}
        self.lookup: dict[str, Any] = {}
        api.route(r"^/2/users/1001/mentions$", lambda request: self.page(self.mentions))
        api.route(r"^/2/users/1001/tweets$", lambda request: json_response({"meta": {"result_count": 0}}))
        api.route(r"^/2/tweets$", self.answer_lookup)

    def page(self, body: dict[str, Any]) -> Response:
        ids = [item["id"] for item in body["data"] if "id" in item]
        return json_response({**body, "meta": {"result_count": len(ids), "newest_id": max(ids, default=None)}})

    def answer_lookup(self, request: Request) -> Response:
        return json_response(self.lookup)


@pytest.fixture
def api(httpserver_ipv4: HTTPServer) -> FakeApi:
    return FakeApi(httpserver_ipv4)


@pytest.fixture
def x(api: FakeApi) -> FakeTimelines:
    return FakeTimelines(api)


@pytest.fixture
def harness(api: FakeApi, x: FakeTimelines) -> Harness:
    source = Source(
        id="acme-x",
        kind=SourceKind.X,
        brand_id="acme",
        account_id=BRAND_ID,
        account_handle="AcmeHelp",
        base_url=api.url,
        credentials_name="replyclock/acme-x",
    )
    return Harness(source=source, credentials={"bearer_token": "x-bearer"})


def test_a_mention_is_a_customer_post_with_its_engagement(harness: Harness, x: FakeTimelines) -> None:
    # Given a mention with public_metrics (impressions included)
    metrics = {"retweet_count": 3, "reply_count": 2, "like_count": 9, "quote_count": 1, "impression_count": 400}
    x.mentions["data"] = [tweet("1860000000000000011", "@AcmeHelp my order is late", public_metrics=metrics)]

    # When the source is polled
    harness.poll()

    # Then it is a customer post addressed to the brand, its counts kept
    post = harness.posts.get("1860000000000000011")
    assert post.author_role is AuthorRole.CUSTOMER
    assert post.mentions == ("acmehelp",)
    assert post.engagement == Engagement(replies=2, reposts=3, quotes=1, likes=9, impressions=400)


def test_a_repost_is_not_stored_and_is_counted_as_ignored(harness: Harness, x: FakeTimelines) -> None:
    # Given an "RT @AcmeHelp ..." repost of the brand's post in the mentions timeline
    repost = tweet(
        "1860000000000000012",
        "RT @AcmeHelp: we are back up",
        referenced_tweets=[{"type": "retweeted", "id": "1860000000000000002"}],
    )
    x.mentions["data"] = [repost]

    # When the source is polled
    outcome = harness.poll()

    # Then no customer post is stored for it
    assert harness.posts.ids() == set()
    assert outcome.ignored == 1
    assert outcome.rejected == 0


def test_a_quote_of_the_brands_post_is_addressed_to_the_brand(harness: Harness, x: FakeTimelines) -> None:
    # Given a quote of the brand's post that does not @mention the brand (the expansion names its author)
    quote = tweet(
        "1860000000000000013",
        "this is not what you promised",
        entities={},
        referenced_tweets=[{"type": "quoted", "id": "1860000000000000002"}],
    )
    x.mentions["data"] = [quote]
    brand_post = {"id": "1860000000000000002", "author_id": BRAND_ID, "text": "we are back up"}
    x.mentions["includes"]["tweets"] = [{**brand_post, "edit_history_tweet_ids": ["1860000000000000002"]}]

    # When the source is polled
    harness.poll()

    # Then the quote is addressed to the brand and names what it quotes
    post = harness.posts.get("1860000000000000013")
    assert post.mentions == ("acmehelp",)
    assert post.quote_of == "1860000000000000002"


def test_a_quote_of_someone_elses_post_is_not_addressed_to_the_brand(harness: Harness, x: FakeTimelines) -> None:
    # Given a quote of another account's post, without a mention
    quote = tweet(
        "1860000000000000014",
        "lol",
        entities={},
        referenced_tweets=[{"type": "quoted", "id": "1860000000000000099"}],
    )
    x.mentions["data"] = [quote]
    x.mentions["includes"]["tweets"] = [{"id": "1860000000000000099", "author_id": "3003", "text": "..."}]

    # When the source is polled
    harness.poll()

    # Then it mentions no one
    assert harness.posts.get("1860000000000000014").mentions == ()


def test_an_edit_updates_the_post_stored_under_its_first_id(harness: Harness, x: FakeTimelines) -> None:
    # Given a mention stored by a first poll
    x.mentions["data"] = [tweet("1860000000000000015", "@AcmeHelp my ordr is late")]
    harness.poll()

    # When its edited version arrives under a new id, with the edit history naming the first
    edited = tweet(
        "1860000000000000016",
        "@AcmeHelp my order is late",
        created_at="2026-11-20T10:05:00.000Z",
        conversation_id="1860000000000000015",
        edit_history_tweet_ids=["1860000000000000015", "1860000000000000016"],
    )
    x.mentions["data"] = [edited]
    outcome = harness.poll()

    # Then no second post is stored: the first one takes the new text and the edit time, and keeps its own time
    assert outcome.ingested == 0
    assert harness.posts.ids() == {"1860000000000000015"}
    post = harness.posts.get("1860000000000000015")
    assert post.text == "@AcmeHelp my order is late"
    assert post.edited_at is not None and post.edited_at.isoformat() == "2026-11-20T10:05:00+00:00"
    assert post.created_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert post.conversation_id == "1860000000000000015"


def test_a_reply_to_an_edited_post_names_the_posts_first_id(harness: Harness, x: FakeTimelines) -> None:
    # Given a reply to the second version of an edited post (the expansion shows its edit history)
    reply = tweet(
        "1860000000000000018",
        "@AcmeHelp still waiting",
        conversation_id="1860000000000000015",
        referenced_tweets=[{"type": "replied_to", "id": "1860000000000000016"}],
    )
    x.mentions["data"] = [reply]
    x.mentions["includes"]["tweets"] = [
        {"id": "1860000000000000016", "edit_history_tweet_ids": ["1860000000000000015", "1860000000000000016"]}
    ]

    # When the source is polled
    harness.poll()

    # Then its parent is the post's identity
    assert harness.posts.get("1860000000000000018").in_reply_to == "1860000000000000015"


def test_a_mention_missing_a_field_is_parked_and_stored_once_x_serves_it_whole(
    harness: Harness, x: FakeTimelines
) -> None:
    # Given a mention served without created_at next to a complete one
    incomplete = tweet("1860000000000000020", "@AcmeHelp hello?")
    del incomplete["created_at"]
    x.mentions["data"] = [incomplete, tweet("1860000000000000019", "@AcmeHelp hi")]

    # When the source is polled
    first = harness.poll()

    # Then it is rejected and parked with its payload, while the watermark moves past it
    assert first.rejected == 1
    assert harness.posts.ids() == {"1860000000000000019"}
    [parked] = harness.parking.items.values()
    assert parked.field == "created_at"
    assert parked.raw["tweet"]["id"] == "1860000000000000020"
    assert harness.state.cursor.value["mentions"] == {"watermark": "1860000000000000020"}

    # When X's lookup by id serves it whole, and the next poll runs
    x.lookup = {"data": [tweet("1860000000000000020", "@AcmeHelp hello?")], "includes": {"users": []}}
    second = harness.poll()

    # Then it is stored and no longer parked
    assert second.recovered == 1
    assert "1860000000000000020" in harness.posts.ids()
    assert harness.parking.items == {}


def test_a_parked_mention_x_still_serves_incomplete_stays_parked(harness: Harness, x: FakeTimelines) -> None:
    # Given a parked mention
    incomplete = tweet("1860000000000000021", "@AcmeHelp hello?")
    del incomplete["author_id"]
    x.mentions["data"] = [incomplete]
    harness.poll()

    # When the lookup serves it still incomplete
    x.lookup = {"data": [incomplete]}
    outcome = harness.poll()

    # Then it stays parked
    assert outcome.recovered == 0
    [parked] = harness.parking.items.values()
    assert parked.field == "author_id"
    assert harness.posts.ids() == set()


def test_a_parked_mention_x_says_is_gone_is_released(harness: Harness, x: FakeTimelines) -> None:
    # Given a parked mention
    incomplete = tweet("1860000000000000022", "@AcmeHelp hello?")
    del incomplete["created_at"]
    x.mentions["data"] = [incomplete]
    harness.poll()

    # When the lookup says it no longer exists (deleted)
    not_found = {
        "resource_id": "1860000000000000022",
        "title": "Not Found Error",
        "type": "https://api.x.com/2/problems/resource-not-found",
    }
    x.lookup = {"errors": [not_found]}
    harness.poll()

    # Then nothing is stored and it is no longer parked
    assert harness.posts.ids() == set()
    assert harness.parking.items == {}
