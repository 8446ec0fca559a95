"""What each kind of Reddit item becomes (docs/connectors.md, "What each item becomes"), on inbox payloads shaped
as Reddit serves /message/mentions, /message/comments and /message/selfreply (t1 comments with `type`
comment_reply / post_reply, t4 messages) and /user/<name>/comments: score, edited, distinguished."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from replyclock.connectors import reddit
from replyclock.models.domain import AuthorRole, Engagement
from replyclock.models.sources import Source, SourceKind
from tests.support.ingesting import NOW, FakeApi, Harness, json_response

CREATED = NOW.timestamp() - 3600


def inbox_comment(name: str, kind: str, body: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "t1",
        "data": {
            "id": name,
            "name": f"t1_{name}",
            "type": kind,
            "subject": kind.replace("_", " "),
            "was_comment": True,
            "author": "lee_w",
            "body": body,
            "parent_id": "t1_b1",
            "context": f"/r/techsupport/comments/def456/app_crash/{name}/?context=3",
            "created_utc": CREATED,
            "score": 1,
            "distinguished": None,
            **fields,
        },
    }


def listing(children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"after": None, "before": None, "children": children}}


class FakeReddit:
    def __init__(self, api: FakeApi) -> None:
        self.listings: dict[str, list[dict[str, Any]]] = {
            "mentions": [],
            "comments": [],
            "selfreply": [],
            "own": [],
        }
        api.route(
            r"^/api/v1/access_token$",
            lambda request: json_response({"access_token": "token", "token_type": "bearer", "expires_in": 86400}),
            method="POST",
        )
        for name in ("mentions", "comments", "selfreply"):
            api.route(rf"^/message/{name}$", lambda request, name=name: json_response(listing(self.listings[name])))
        api.route(r"^/user/acmehelp/comments$", lambda request: json_response(listing(self.listings["own"])))


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    reddit.clear_tokens()
    yield
    reddit.clear_tokens()


@pytest.fixture
def api(httpserver_ipv4: HTTPServer) -> FakeApi:
    return FakeApi(httpserver_ipv4)


@pytest.fixture
def server(api: FakeApi) -> FakeReddit:
    return FakeReddit(api)


@pytest.fixture
def harness(api: FakeApi, server: FakeReddit) -> Harness:
    source = Source(
        id="acme-reddit",
        kind=SourceKind.REDDIT,
        brand_id="acme",
        account_handle="acmehelp",
        base_url=api.url,
        auth_url=api.url,
        credentials_name="replyclock/acme-reddit",
    )
    credentials = {"client_id": "app", "client_secret": "secret", "username": "AcmeHelp", "password": "pw"}
    return Harness(source=source, credentials=credentials)


def test_a_reply_to_the_brands_comment_is_read_from_the_inbox_and_addressed_to_it(
    harness: Harness, server: FakeReddit
) -> None:
    # Given a comment_reply in /message/comments that does not name the brand
    server.listings["comments"] = [inbox_comment("r1", "comment_reply", "that did not work")]

    # When the source is polled
    harness.poll()

    # Then it is a customer post in the submission, answering the brand's comment, addressed to the brand
    post = harness.posts.get("t1_r1")
    assert post.author_role is AuthorRole.CUSTOMER
    assert (post.conversation_id, post.in_reply_to) == ("t3_def456", "t1_b1")
    assert post.mentions == ("acmehelp",)


def test_a_reply_to_the_brands_post_is_read_from_the_inbox_and_addressed_to_it(
    harness: Harness, server: FakeReddit
) -> None:
    # Given a post_reply in /message/selfreply: a top-level comment on the brand's submission
    server.listings["selfreply"] = [inbox_comment("r2", "post_reply", "same here", parent_id="t3_def456")]

    # When the source is polled
    harness.poll()

    # Then it replies to the submission and is addressed to the brand
    post = harness.posts.get("t1_r2")
    assert post.in_reply_to == "t3_def456"
    assert post.mentions == ("acmehelp",)


def test_a_private_message_in_the_inbox_is_not_stored_and_is_counted(harness: Harness, server: FakeReddit) -> None:
    message = {
        "kind": "t4",
        "data": {"name": "t4_pm1", "author": "lee_w", "body": "hi", "created_utc": CREATED, "subject": "hello"},
    }
    server.listings["mentions"] = [message]

    outcome = harness.poll()

    assert harness.posts.posts == {}
    assert outcome.ignored == 1


def test_a_comment_keeps_its_score_and_edit_time(harness: Harness, server: FakeReddit) -> None:
    # Given a username mention with a score, edited after it was written
    server.listings["mentions"] = [
        inbox_comment("m1", "username_mention", "/u/acmehelp help", score=-3, edited=CREATED + 120)
    ]

    # When the source is polled
    harness.poll()

    # Then the score is its engagement and the edit time is kept
    post = harness.posts.get("t1_m1")
    assert post.engagement == Engagement(score=-3)
    assert post.edited_at is not None and post.edited_at.timestamp() == CREATED + 120


def test_an_unedited_comment_has_no_edit_time(harness: Harness, server: FakeReddit) -> None:
    server.listings["mentions"] = [inbox_comment("m2", "username_mention", "/u/acmehelp help", edited=False)]

    harness.poll()

    assert harness.posts.get("t1_m2").edited_at is None


def test_a_moderators_distinguished_comment_is_labelled(harness: Harness, server: FakeReddit) -> None:
    # Given a moderator's distinguished reply to the brand's comment
    server.listings["comments"] = [
        inbox_comment("d1", "comment_reply", "Locked: take it to modmail", distinguished="moderator")
    ]

    # When the source is polled
    outcome = harness.poll()

    # Then it carries the label the default label policy does not measure
    assert harness.posts.get("t1_d1").labels == ("distinguished:moderator",)
    assert outcome.labelled == 1


def test_a_deleted_reply_in_the_inbox_is_a_deletion(harness: Harness, server: FakeReddit) -> None:
    server.listings["comments"] = [inbox_comment("x1", "comment_reply", "[deleted]", author="[deleted]")]

    outcome = harness.poll()

    assert harness.posts.posts == {}
    assert [deletion.id for deletion in harness.posts.deleted] == ["t1_x1"]
    assert outcome.deleted == 0  # nothing was stored to delete


def test_the_inbox_listings_have_their_own_cursors(harness: Harness, server: FakeReddit) -> None:
    # Given one reply in each inbox listing
    server.listings["comments"] = [inbox_comment("c1", "comment_reply", "a")]
    server.listings["selfreply"] = [inbox_comment("s1", "post_reply", "b", created_utc=CREATED + 60)]

    # When the source is polled
    harness.poll()

    # Then each listing's watermark is its newest item
    cursor = harness.state.cursor.value
    assert cursor["comment_replies"] == {"watermark": repr(CREATED)}
    assert cursor["post_replies"] == {"watermark": repr(CREATED + 60)}
