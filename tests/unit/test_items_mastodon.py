"""What each kind of Mastodon item becomes (docs/connectors.md, "What each item becomes"), on payloads shaped as
Mastodon documents its Notification and Status entities: visibility, spoiler_text, edited_at, reblog, the 4.5
quote (Quote / ShallowQuote) and the "quote" notification type, and the counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from replyclock.connectors import mastodon
from replyclock.models.domain import AuthorRole, Brand, DirectMentions, Engagement
from replyclock.models.sources import Source, SourceKind
from tests.support.ingesting import FakeApi, Harness, json_response

BRAND_ACCOUNT = "108000000000000001"
BRAND = {"id": BRAND_ACCOUNT, "username": "acme", "acct": "acme", "followers_count": 900}
DANA = {"id": "108000000000000002", "username": "dana", "acct": "dana@example.social", "followers_count": 35}


def status(status_id: str, content: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": status_id,
        "uri": f"https://example.social/users/dana/statuses/{status_id}",
        "url": f"https://example.social/@dana/{status_id}",
        "created_at": "2026-11-20T10:00:00.000Z",
        "in_reply_to_id": None,
        "account": DANA,
        "content": content,
        "visibility": "public",
        "spoiler_text": "",
        "edited_at": None,
        "reblog": None,
        "mentions": [{"id": BRAND_ACCOUNT, "username": "acme", "acct": "acme", "url": "https://m.example/@acme"}],
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        **fields,
    }


def notification(notification_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": notification_id,
        "type": kind,
        "created_at": body["created_at"],
        "account": body["account"],
        "status": body,
    }


class FakeMastodon:
    def __init__(self, api: FakeApi) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        api.route(r"^/api/v1/notifications$", lambda request: json_response(self.notifications))
        api.route(rf"^/api/v1/accounts/{BRAND_ACCOUNT}/statuses$", lambda request: json_response(self.statuses))


@pytest.fixture(autouse=True)
def fresh_root_cache() -> Iterator[None]:
    mastodon.clear_root_cache()
    yield
    mastodon.clear_root_cache()


@pytest.fixture
def api(httpserver_ipv4: HTTPServer) -> FakeApi:
    return FakeApi(httpserver_ipv4)


@pytest.fixture
def server(api: FakeApi) -> FakeMastodon:
    return FakeMastodon(api)


@pytest.fixture
def harness(api: FakeApi, server: FakeMastodon) -> Harness:
    source = Source(
        id="acme-mastodon",
        kind=SourceKind.MASTODON,
        brand_id="acme",
        account_id=BRAND_ACCOUNT,
        account_handle="acme",
        base_url=api.url,
        credentials_name="replyclock/acme-mastodon",
    )
    return Harness(source=source, credentials={"access_token": "token"})


def test_a_public_mention_is_a_customer_post_with_its_counts(harness: Harness, server: FakeMastodon) -> None:
    # Given a public mention with counts
    body = status("109000000000000011", "<p>@acme hello</p>", replies_count=1, reblogs_count=2, favourites_count=5)
    server.notifications = [notification("500", "mention", body)]

    # When the source is polled
    harness.poll()

    # Then it is a public customer post with its engagement and its author's followers
    post = harness.posts.get("109000000000000011")
    assert post.author_role is AuthorRole.CUSTOMER
    assert (post.channel, post.private) == ("mastodon", False)
    assert post.engagement == Engagement(replies=1, reposts=2, likes=5)
    assert post.author_reach == 35


def test_a_direct_mention_is_stored_on_the_direct_channel_by_default(harness: Harness, server: FakeMastodon) -> None:
    # Given a direct (private mention) status
    body = status("109000000000000012", "<p>@acme my card number is...</p>", visibility="direct")
    server.notifications = [notification("501", "mention", body)]

    # When the source is polled for a brand with the default setting
    harness.poll()

    # Then it is measured on mastodon-dm, apart from the public mentions
    [post] = harness.posts.posts.values()
    assert (post.channel, post.private) == ("mastodon-dm", True)


def test_a_brand_that_flags_direct_mentions_keeps_them_on_the_public_channel(
    harness: Harness, server: FakeMastodon
) -> None:
    # Given a brand that keeps direct mentions flagged on the public channel, and a followers-only mention
    harness.brand = Brand(id="acme", name="Acme", direct_mentions=DirectMentions.FLAG)
    body = status("109000000000000013", "<p>@acme hi</p>", visibility="private")
    server.notifications = [notification("502", "mention", body)]

    # When the source is polled
    harness.poll()

    # Then it is on the public channel, flagged private
    [post] = harness.posts.posts.values()
    assert (post.channel, post.private) == ("mastodon", True)


def test_a_content_warning_is_part_of_the_text(harness: Harness, server: FakeMastodon) -> None:
    body = status("109000000000000014", "<p>@acme you charged me twice</p>", spoiler_text="billing rant")
    server.notifications = [notification("503", "mention", body)]

    harness.poll()

    assert harness.posts.get("109000000000000014").text == "billing rant\n@acme you charged me twice"


def test_an_edit_updates_the_stored_status(harness: Harness, server: FakeMastodon) -> None:
    # Given a mention stored by a first poll
    server.notifications = [notification("504", "mention", status("109000000000000015", "<p>@acme helo</p>"))]
    harness.poll()

    # When the same status is read again, edited
    edited = status("109000000000000015", "<p>@acme hello</p>", edited_at="2026-11-20T10:03:00.000Z")
    server.notifications = [notification("504", "mention", edited)]
    outcome = harness.poll()

    # Then it is the same post, with the new text and its edit time
    assert outcome.ingested == 0
    post = harness.posts.get("109000000000000015")
    assert post.text == "@acme hello"
    assert post.edited_at is not None and post.edited_at.isoformat() == "2026-11-20T10:03:00+00:00"


def test_a_quote_notification_is_addressed_to_the_brand(harness: Harness, server: FakeMastodon) -> None:
    # Given a 4.5 "quote" notification: a status quoting the brand's status, without mentioning it
    quoted = {"id": "109000000000000001", "account": BRAND, "content": "<p>we are back</p>"}
    body = status(
        "109000000000000016",
        "<p>no you are not</p>",
        mentions=[],
        quote={"state": "accepted", "quoted_status": quoted},
    )
    server.notifications = [notification("505", "quote", body)]

    # When the source is polled
    harness.poll()

    # Then it quotes the brand's status and is addressed to the brand
    post = harness.posts.get("109000000000000016")
    assert post.quote_of == "109000000000000001"
    assert post.mentions == ("acme",)


def test_a_shallow_quote_names_the_quoted_status(harness: Harness, server: FakeMastodon) -> None:
    body = status(
        "109000000000000017",
        "<p>@acme see this</p>",
        quote={"state": "accepted", "quoted_status_id": "109000000000000009"},
    )
    server.notifications = [notification("506", "mention", body)]

    harness.poll()

    assert harness.posts.get("109000000000000017").quote_of == "109000000000000009"


def test_a_boost_is_not_stored(harness: Harness, server: FakeMastodon) -> None:
    # Given the brand's statuses holding a boost of a customer's status
    boost = status("109000000000000018", "", account=BRAND, reblog=status("109000000000000010", "<p>nice</p>"))
    server.statuses = [boost]

    # When the source is polled
    outcome = harness.poll()

    # Then nothing is stored, and it is counted as ignored
    assert harness.posts.posts == {}
    assert outcome.ignored == 1
