"""GET /conversations and GET /conversations/{channel}/{id}: through the resolver with events/ files."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from replyclock.models.domain import Brand
from tests.support.api import ApiClient
from tests.support.builders import T0, brand, customer
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
WINDOW = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(days=2)).isoformat()}


def seven_conversations(pipeline: Pipeline) -> None:
    """c0..c6 start an hour apart; the even ones are answered within 10 minutes (met), the odd ones not."""
    pipeline.add_brands([ACME])
    posts = []
    for number in range(7):
        posts.append(customer(f"q{number}", number * 60, conversation=f"c{number}", author=f"user{number}"))
        if number % 2 == 0:
            posts.append(brand(f"a{number}", number * 60 + 10, reply_to=f"q{number}", conversation=f"c{number}"))
    pipeline.write(posts)
    pipeline.run()


def page(api: ApiClient, **query: str) -> dict[str, Any]:
    response = api.call("api_conversations.json", query={"brand": "acme", **WINDOW, **query})
    assert response.status == 200, response.body
    return response.json()  # type: ignore[no-any-return]


def all_pages(api: ApiClient, **query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: dict[str, str] = {}
    while True:
        body = page(api, **query, **cursor)
        pages.append([item["conversation_id"] for item in body["items"]])
        if body["next_cursor"] is None:
            return pages
        cursor = {"cursor": body["next_cursor"]}


def tampered(cursor: str, change: dict[str, Any]) -> str:
    document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for name, value in change.items():
        if name.startswith("key."):
            document["key"][name[4:]] = value
        else:
            document[name] = value
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def test_event_lists_conversations_newest_first(api: ApiClient, pipeline: Pipeline) -> None:
    seven_conversations(pipeline)

    response = api.call("api_conversations.json", query={"brand": "acme", "limit": "20", **WINDOW})

    assert response.status == 200, response.body
    body = response.json()
    assert [item["conversation_id"] for item in body["items"]] == [f"c{n}" for n in range(6, -1, -1)]
    first = body["items"][-1]
    assert (first["channel"], first["customer"], first["status"]) == ("x", "user0", "met")
    assert first["started_at"] == "2026-11-18T10:00:00Z"
    assert first["waits"][0]["policy_version"] == 1 and body["next_cursor"] is None


def test_pagination_round_trip_returns_every_conversation_once_in_order(api: ApiClient, pipeline: Pipeline) -> None:
    seven_conversations(pipeline)

    pages = all_pages(api, limit="3")

    assert pages == [["c6", "c5", "c4"], ["c3", "c2", "c1"], ["c0"]]


def test_pagination_with_a_status_filter_returns_only_matching_conversations(
    api: ApiClient, pipeline: Pipeline
) -> None:
    seven_conversations(pipeline)

    pages = all_pages(api, limit="2", status="pending")

    assert [conversation for items in pages for conversation in items] == ["c5", "c3", "c1"]


def test_channel_filter(api: ApiClient, pipeline: Pipeline) -> None:
    seven_conversations(pipeline)
    pipeline.write([customer("m1", 5, conversation="m1", channel="mastodon")])
    pipeline.run()

    body = page(api, channel="mastodon")

    assert [(item["channel"], item["conversation_id"]) for item in body["items"]] == [("mastodon", "m1")]


@pytest.mark.parametrize(
    "change",
    [
        {"key.gsi2pk": "BRAND#globex"},
        {"key.sk": "STATE#globex#user5"},
        {"key.gsi2sk": "2020-01-01T00:00:00.000000Z#x#c1"},
        {"key.pk": "SOURCES"},
        {"key.extra": "x"},
        {"v": 99},
        {"start": "2026-11-18T09:00:00"},
        {"end": "9999-01-01T00:00:00Z"},
    ],
)
def test_a_tampered_cursor_is_400(api: ApiClient, pipeline: Pipeline, change: dict[str, Any]) -> None:
    seven_conversations(pipeline)
    cursor = page(api, limit="3")["next_cursor"]

    response = api.call(
        "api_conversations.json", query={"brand": "acme", "limit": "3", "cursor": tampered(cursor, change)}
    )

    assert response.status == 400, response.body
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("cursor", ["not-a-cursor", "e30", "%%%", "a" * 5000, base64.b64encode(b"\xff\xfe").decode()])
def test_a_garbage_cursor_is_400(api: ApiClient, pipeline: Pipeline, cursor: str) -> None:
    pipeline.add_brands([ACME])

    response = api.call("api_conversations.json", query={"brand": "acme", "cursor": cursor})

    assert response.status == 400, response.body
    assert response.json()["field"] == "cursor"


def test_a_cursor_must_continue_the_same_query(api: ApiClient, pipeline: Pipeline) -> None:
    seven_conversations(pipeline)
    cursor = page(api, limit="3")["next_cursor"]

    other_status = api.call("api_conversations.json", query={"brand": "acme", "status": "met", "cursor": cursor})
    other_window = api.call(
        "api_conversations.json", query={"brand": "acme", "from": "2026-11-01T00:00:00Z", "cursor": cursor}
    )
    same_window = api.call("api_conversations.json", query={"brand": "acme", **WINDOW, "limit": "3", "cursor": cursor})

    assert other_status.status == 400 and other_status.json()["field"] == "cursor"
    assert other_window.status == 400 and other_window.json()["field"] == "from"
    assert same_window.status == 200


def test_a_cursor_keeps_its_window_when_the_clock_moves(api: ApiClient, pipeline: Pipeline) -> None:
    # Given a first page asked for with the default window
    seven_conversations(pipeline)
    api.now = T0 + timedelta(days=1)
    first = api.call("api_conversations.json", query={"brand": "acme", "limit": "3"}).json()

    # When the next page is asked for later
    api.now = T0 + timedelta(days=3)
    second = api.call("api_conversations.json", query={"brand": "acme", "limit": "3", "cursor": first["next_cursor"]})

    # Then it continues the first page's window
    assert second.status == 200, second.body
    assert [item["conversation_id"] for item in second.json()["items"]] == ["c3", "c2", "c1"]
    assert second.json()["from"] == first["from"]


def test_listing_an_unknown_brand_is_404(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_conversations.json", query={"brand": "nobody"})

    assert response.status == 404 and response.json()["field"] == "brand"


@pytest.mark.parametrize(
    ("query", "field"), [({"limit": "0"}, "limit"), ({"limit": "500"}, "limit"), ({"status": "lost"}, "status")]
)
def test_malformed_list_parameters_are_400(
    api: ApiClient, pipeline: Pipeline, query: dict[str, str], field: str
) -> None:
    pipeline.add_brands([ACME])

    response = api.call("api_conversations.json", query={"brand": "acme", **query})

    assert response.status == 400 and response.json()["field"] == field


def test_detail_event_returns_posts_and_waits_per_brand(api: ApiClient, pipeline: Pipeline) -> None:
    # Given conversation 1001 on x, answered by acme
    pipeline.add_brands([ACME])
    pipeline.write([customer("1001", 0, conversation="1001"), brand("1002", 20, reply_to="1001", conversation="1001")])
    pipeline.run()

    # When the event file asks for it
    response = api.call("api_conversation_detail.json")

    # Then its posts come in order, with acme's wait
    assert response.status == 200, response.body
    body = response.json()
    assert [post["id"] for post in body["posts"]] == ["1001", "1002"]
    assert body["posts"][1]["author_role"] == "brand" and body["posts_truncated"] is False
    [acme] = body["brands"]
    assert (acme["brand_id"], acme["customer"], acme["status"]) == ("acme", "alice", "met")
    assert acme["waits"][0]["calendar_seconds"] == 1200 and acme["waits"][0]["end_post_id"] == "1002"


def two_customers_in_one_conversation(pipeline: Pipeline) -> None:
    """Alice asks twice (answered after 10 and 20 minutes), bob once, answered with alice's second after 45."""
    pipeline.add_brands([ACME])
    pipeline.write(
        [
            customer("1", 0, conversation="t"),
            customer("2", 5, "@acme me too", reply_to="1", conversation="t", author="bob"),
            brand("3", 10, "@alice on it", reply_to="1", conversation="t"),
            customer("4", 30, "still broken", reply_to="3", conversation="t"),
            brand("5", 50, "@alice @bob fixed", reply_to="4", conversation="t"),
        ]
    )
    pipeline.run()


def waits_of(item: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    return [(w["kind"], w["start_post_id"], w["end_post_id"], w["calendar_seconds"]) for w in item["waits"]]


def test_each_customer_of_a_conversation_is_listed_with_every_one_of_their_waits(
    api: ApiClient, pipeline: Pipeline
) -> None:
    two_customers_in_one_conversation(pipeline)

    body = page(api)
    one_by_one = [page(api, limit="1")]
    while one_by_one[-1]["next_cursor"] is not None:
        one_by_one.append(page(api, limit="1", cursor=one_by_one[-1]["next_cursor"]))

    # Newest first wait first: bob (10:05), then alice (10:00) with her first and next responses
    assert [(item["conversation_id"], item["customer"], item["started_at"]) for item in body["items"]] == [
        ("t", "bob", "2026-11-18T10:05:00Z"),
        ("t", "alice", "2026-11-18T10:00:00Z"),
    ]
    bob, alice = body["items"]
    assert waits_of(bob) == [("first", "2", "5", 2700.0)]
    assert waits_of(alice) == [("first", "1", "3", 600.0), ("next", "4", "5", 1200.0)]
    # And a page boundary between two lanes of one conversation loses and repeats nothing
    assert [item for one in one_by_one for item in one["items"]] == body["items"]


def test_detail_lists_each_customer_of_each_brand_with_every_wait(api: ApiClient, pipeline: Pipeline) -> None:
    two_customers_in_one_conversation(pipeline)

    response = api.call("api_conversation_detail.json", path="/conversations/x/t")

    assert response.status == 200, response.body
    body = response.json()
    assert [post["id"] for post in body["posts"]] == ["1", "2", "3", "4", "5"]
    assert [(lane["brand_id"], lane["customer"], lane["status"]) for lane in body["brands"]] == [
        ("acme", "alice", "met"),
        ("acme", "bob", "met"),
    ]
    alice, bob = body["brands"]
    assert waits_of(alice) == [("first", "1", "3", 600.0), ("next", "4", "5", 1200.0)]
    assert waits_of(bob) == [("first", "2", "5", 2700.0)]


def test_detail_of_a_percent_encoded_conversation_id(api: ApiClient, pipeline: Pipeline) -> None:
    root = "at://did:plc:abc/app.bsky.feed.post/3k"
    pipeline.write([customer(root, 0, conversation=root, channel="bluesky")])

    response = api.call(
        "api_conversation_detail.json",
        path="/conversations/bluesky/at%3A%2F%2Fdid%3Aplc%3Aabc%2Fapp.bsky.feed.post%2F3k",
    )

    assert response.status == 200, response.body
    assert response.json()["conversation_id"] == root


def test_unknown_conversation_is_404(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_conversation_detail.json", path="/conversations/x/nope")

    assert response.status == 404
    assert response.json()["field"] == "conversation_id"


def test_malformed_channel_in_the_path_is_400(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_conversation_detail.json", path="/conversations/NOT_A_CHANNEL/1")

    assert response.status == 400
    assert response.json()["field"] == "channel"


def test_deleting_an_answer_through_the_api_reopens_the_wait(api: ApiClient, pipeline: Pipeline) -> None:
    # Given conversation 1001 answered by acme's post 1002
    pipeline.add_brands([ACME])
    pipeline.write([customer("1001", 0, conversation="1001"), brand("1002", 20, reply_to="1001", conversation="1001")])
    pipeline.run()

    # When an admin deletes the answer (the event file), and the stream is measured
    response = api.call("api_post_delete.json")
    pipeline.run()

    # Then it answers what it removed, and the thread shows the customer waiting again
    assert response.status == 200, response.body
    assert response.json() | {"deleted_at": None} == {
        "channel": "x",
        "conversation_id": "1001",
        "post_id": "1002",
        "deleted_at": None,
    }
    detail = api.call("api_conversation_detail.json").json()
    assert [post["id"] for post in detail["posts"]] == ["1001"]
    assert [wait["status"] for lane in detail["brands"] for wait in lane["waits"]] == ["pending"]


def test_deleting_a_post_that_is_not_there_is_404(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.write([customer("1001", 0, conversation="1001")])

    response = api.call("api_post_delete.json", path="/conversations/x/1001/posts/nope")

    assert response.status == 404 and response.json()["field"] == "post_id"
