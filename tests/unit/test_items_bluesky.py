"""What each kind of Bluesky item becomes (docs/connectors.md, "What each item becomes"), on payloads shaped as
the app.bsky lexicons document them: notification labels and reasonSubject, app.bsky.embed.record, post views'
counts, feed reposts (reasonRepost), and app.bsky.actor.getProfiles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors import bluesky
from replyclock.models.domain import AuthorRole, Engagement
from replyclock.models.sources import Source, SourceKind
from tests.support.ingesting import FakeApi, Harness, json_response

BRAND_DID = "did:plc:acmehelp4q2n7xz3k5m6w8ab"
BRAND_POST = f"at://{BRAND_DID}/app.bsky.feed.post/3lbrtqb2abc22"
DANA = {"did": "did:plc:dana7v3k2m4x6z8q1w5e9r0t", "handle": "dana.bsky.social", "labels": []}


def notification(rkey: str, reason: str, record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "uri": f"at://{DANA['did']}/app.bsky.feed.post/{rkey}",
        "cid": f"bafy{rkey}",
        "author": DANA,
        "reason": reason,
        "record": {"$type": "app.bsky.feed.post", "createdAt": "2026-11-20T10:00:00.000Z", **record},
        "isRead": False,
        "indexedAt": "2026-11-20T10:00:01.000Z",
        "labels": [],
        **fields,
    }


def spam_label(uri: str, **fields: Any) -> dict[str, Any]:
    return {
        "src": "did:plc:ar7c4by46qjdydhdevvrndac",
        "uri": uri,
        "val": "spam",
        "cts": "2026-11-20T10:00:05Z",
        **fields,
    }


class FakeBluesky:
    def __init__(self, api: FakeApi) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.feed: list[dict[str, Any]] = []
        self.followers: dict[str, int] = {}
        self.profile_requests: list[list[str]] = []
        api.route(
            r"^/xrpc/com\.atproto\.server\.createSession$",
            lambda request: json_response({"accessJwt": "jwt", "did": BRAND_DID, "handle": "acmehelp.bsky.social"}),
            method="POST",
        )
        api.route(
            r"^/xrpc/app\.bsky\.notification\.listNotifications$",
            lambda request: json_response({"notifications": self.notifications}),
        )
        api.route(r"^/xrpc/app\.bsky\.feed\.getAuthorFeed$", lambda request: json_response({"feed": self.feed}))
        api.route(r"^/xrpc/app\.bsky\.actor\.getProfiles$", self.profiles)

    def profiles(self, request: Request) -> Response:
        actors = request.args.getlist("actors")
        self.profile_requests.append(actors)
        found = [
            {"did": f"did:plc:{actor}", "handle": actor, "followersCount": self.followers[actor]}
            for actor in actors
            if actor in self.followers
        ]
        return json_response({"profiles": found})


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    bluesky.clear_sessions()
    yield
    bluesky.clear_sessions()


@pytest.fixture
def api(httpserver_ipv4: HTTPServer) -> FakeApi:
    return FakeApi(httpserver_ipv4)


@pytest.fixture
def server(api: FakeApi) -> FakeBluesky:
    return FakeBluesky(api)


@pytest.fixture
def harness(api: FakeApi, server: FakeBluesky) -> Harness:
    source = Source(
        id="acme-bluesky",
        kind=SourceKind.BLUESKY,
        brand_id="acme",
        account_id=BRAND_DID,
        account_handle="acmehelp.bsky.social",
        base_url=api.url,
        credentials_name="replyclock/acme-bluesky",
    )
    return Harness(source=source, credentials={"identifier": "acmehelp.bsky.social", "app_password": "app-pw"})


def test_a_mention_is_a_customer_post_with_its_authors_followers(harness: Harness, server: FakeBluesky) -> None:
    # Given a mention notification, and the author's profile giving a follower count
    server.notifications = [notification("m1", "mention", {"text": "@acmehelp.bsky.social hello"})]
    server.followers = {"dana.bsky.social": 4200}

    # When the source is polled
    harness.poll()

    # Then it is a customer post addressed to the brand, with the author's followers as reach (one batched lookup)
    [post] = harness.posts.posts.values()
    assert post.author_role is AuthorRole.CUSTOMER
    assert "acmehelp.bsky.social" in post.mentions
    assert post.author_reach == 4200
    assert server.profile_requests == [["dana.bsky.social"]]


def test_a_reply_is_placed_under_its_root(harness: Harness, server: FakeBluesky) -> None:
    # Given a reply notification to the brand's post
    reply = {"root": {"uri": BRAND_POST, "cid": "c1"}, "parent": {"uri": BRAND_POST, "cid": "c1"}}
    server.notifications = [notification("r1", "reply", {"text": "still broken", "reply": reply})]

    # When the source is polled
    harness.poll()

    # Then it answers the brand's post, in the brand post's thread
    [post] = harness.posts.posts.values()
    assert post.in_reply_to == BRAND_POST
    assert post.conversation_id == BRAND_POST


def test_a_quote_of_the_brands_post_names_it_and_is_addressed_to_the_brand(
    harness: Harness, server: FakeBluesky
) -> None:
    # Given a quote notification: the record embeds the brand's post, reasonSubject names it
    embed = {"$type": "app.bsky.embed.record", "record": {"uri": BRAND_POST, "cid": "c1"}}
    server.notifications = [
        notification("q1", "quote", {"text": "this is not ok", "embed": embed}, reasonSubject=BRAND_POST)
    ]

    # When the source is polled
    harness.poll()

    # Then the post quotes the brand's post and is addressed to the brand
    [post] = harness.posts.posts.values()
    assert post.quote_of == BRAND_POST
    assert "acmehelp.bsky.social" in post.mentions


def test_a_quote_with_media_names_the_quoted_post(harness: Harness, server: FakeBluesky) -> None:
    # Given a quote whose embed is app.bsky.embed.recordWithMedia
    embed = {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {"$type": "app.bsky.embed.record", "record": {"uri": BRAND_POST, "cid": "c1"}},
        "media": {"$type": "app.bsky.embed.images", "images": []},
    }
    server.notifications = [notification("q2", "quote", {"text": "look", "embed": embed})]

    # When the source is polled
    harness.poll()

    # Then the quoted post is the embedded record's
    [post] = harness.posts.posts.values()
    assert post.quote_of == BRAND_POST


def test_a_spam_labelled_mention_is_stored_with_its_label_and_counted(harness: Harness, server: FakeBluesky) -> None:
    # Given a mention the moderation labeler marked spam
    spam = notification("s1", "mention", {"text": "@acmehelp.bsky.social free crypto"})
    spam["labels"] = [spam_label(spam["uri"])]
    server.notifications = [spam]

    # When the source is polled
    outcome = harness.poll()

    # Then it is stored, carrying the label, and counted as labelled
    [post] = harness.posts.posts.values()
    assert post.labels == ("spam",)
    assert outcome.labelled == 1


def test_a_negated_label_is_not_kept(harness: Harness, server: FakeBluesky) -> None:
    # Given a mention whose spam label the labeler retracted (neg: true)
    item = notification("n1", "mention", {"text": "@acmehelp.bsky.social hi"})
    item["labels"] = [spam_label(item["uri"], neg=True)]
    server.notifications = [item]

    # When the source is polled
    harness.poll()

    # Then the post carries no label
    [post] = harness.posts.posts.values()
    assert post.labels == ()


def test_an_account_label_applies_to_its_posts(harness: Harness, server: FakeBluesky) -> None:
    # Given a mention by an account labelled spam
    author = {**DANA, "labels": [spam_label(DANA["did"])]}
    server.notifications = [notification("a1", "mention", {"text": "@acmehelp.bsky.social hi"}, author=author)]

    # When the source is polled
    harness.poll()

    # Then the post carries the account's label
    [post] = harness.posts.posts.values()
    assert post.labels == ("spam",)


def test_a_repost_in_the_brands_feed_is_not_stored(harness: Harness, server: FakeBluesky) -> None:
    # Given the brand's feed holding a repost of a customer's post (reasonRepost)
    view = {
        "uri": f"at://{DANA['did']}/app.bsky.feed.post/p9",
        "cid": "c9",
        "author": DANA,
        "record": {"$type": "app.bsky.feed.post", "text": "love it", "createdAt": "2026-11-20T09:00:00Z"},
        "indexedAt": "2026-11-20T09:00:00Z",
    }
    reason = {"$type": "app.bsky.feed.defs#reasonRepost", "by": {"did": BRAND_DID}, "indexedAt": "2026-11-20T10:00:00Z"}
    server.feed = [{"post": view, "reason": reason}]

    # When the source is polled
    outcome = harness.poll()

    # Then nothing is stored, and the repost is counted as ignored
    assert harness.posts.posts == {}
    assert outcome.ignored == 1


def test_the_brands_post_keeps_its_counts(harness: Harness, server: FakeBluesky) -> None:
    # Given the brand's own post view with its counts
    view = {
        "uri": BRAND_POST,
        "cid": "c1",
        "author": {"did": BRAND_DID, "handle": "acmehelp.bsky.social"},
        "record": {"$type": "app.bsky.feed.post", "text": "we are back", "createdAt": "2026-11-20T09:00:00Z"},
        "indexedAt": "2026-11-20T09:00:00Z",
        "replyCount": 4,
        "repostCount": 7,
        "likeCount": 30,
        "quoteCount": 2,
    }
    server.feed = [{"post": view}]

    # When the source is polled
    harness.poll()

    # Then its engagement is kept
    [post] = harness.posts.posts.values()
    assert post.author_role is AuthorRole.BRAND
    assert post.engagement == Engagement(replies=4, reposts=7, quotes=2, likes=30)
