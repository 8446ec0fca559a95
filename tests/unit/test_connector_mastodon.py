"""The Mastodon connector against a local server answering with the documented entities."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors import mastodon
from replyclock.models.domain import AuthorRole
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import MAX_RATE_LIMIT_WAIT, PollStatus
from tests.support.ingesting import FakeApi, Harness, captured_logs, fixture, json_response, rate_limited

TOKEN = "mastodon-access-token-for-tests"
BRAND_ACCOUNT = "108000000000000001"
S1, S2, S3, S4 = (f"10900000000000000{n}" for n in range(1, 5))


class FakeMastodon:
    """Notifications and account statuses newest first, since_id/max_id, Link headers, status contexts."""

    def __init__(self, api: FakeApi, page_size: int = 10) -> None:
        self.api = api
        self.page_size = page_size
        self.notifications: list[dict[str, Any]] = fixture("mastodon", "notifications.json")
        self.statuses: list[dict[str, Any]] = fixture("mastodon", "statuses.json")
        self.contexts = {status: fixture("mastodon", f"context_{status}.json") for status in (S3, S4)}
        api.route(r"^/api/v1/notifications$", self.list_notifications)
        api.route(rf"^/api/v1/accounts/{BRAND_ACCOUNT}/statuses$", self.list_statuses)
        api.route(r"^/api/v1/statuses/\d+/context$", self.context)

    def list_notifications(self, request: Request) -> Response:
        assert request.args.getlist("types[]") == ["mention", "quote"]
        return self._page(request, self.notifications)

    def list_statuses(self, request: Request) -> Response:
        assert request.args["exclude_reblogs"] == "true"
        return self._page(request, self.statuses)

    def context(self, request: Request) -> Response:
        status_id = request.path.split("/")[-2]
        if status_id not in self.contexts:
            return json_response({"error": "Record not found"}, status=404)
        return json_response(self.contexts[status_id])

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        assert request.headers.get("Authorization") == f"Bearer {TOKEN}"
        ordered = sorted(items, key=lambda item: int(item["id"]), reverse=True)
        if "since_id" in request.args:
            ordered = [item for item in ordered if int(item["id"]) > int(request.args["since_id"])]
        if "max_id" in request.args:
            ordered = [item for item in ordered if int(item["id"]) < int(request.args["max_id"])]
        page = ordered[: self.page_size]
        headers = {"X-RateLimit-Remaining": "290", "X-RateLimit-Reset": "2026-11-20T12:05:00Z"}
        if len(page) == self.page_size:
            base = f"{self.api.url}{request.path}"
            headers["Link"] = (
                f'<{base}?max_id={page[-1]["id"]}>; rel="next", <{base}?min_id={page[0]["id"]}>; rel="prev"'
            )
        return json_response(page, headers=headers)

    def context_requests(self) -> list[str]:
        return [request.path for request in self.api.requests if request.path.endswith("/context")]


@pytest.fixture(autouse=True)
def fresh_root_cache() -> Iterator[None]:
    mastodon.clear_root_cache()
    yield
    mastodon.clear_root_cache()


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> FakeMastodon:
    return FakeMastodon(FakeApi(httpserver_ipv4))


@pytest.fixture
def harness(server: FakeMastodon) -> Harness:
    source = Source(
        id="acme-mastodon",
        kind=SourceKind.MASTODON,
        brand_id="acme",
        account_id=BRAND_ACCOUNT,
        account_handle="acmehelp",
        base_url=server.api.url,
        credentials_name="/replyclock/acme-mastodon",
    )
    return Harness(source=source, credentials={"access_token": TOKEN})


def new_mention(notification_id: str, status_id: str, reply_to: str) -> dict[str, Any]:
    notification: dict[str, Any] = copy.deepcopy(fixture("mastodon", "notifications.json")[1])
    notification["id"] = notification_id
    notification["status"].update(
        id=status_id,
        uri=f"https://other.example/users/dana/statuses/{status_id}",
        url=f"https://other.example/@dana/{status_id}",
        in_reply_to_id=reply_to,
        created_at="2026-11-20T11:00:00.000Z",
    )
    return notification


def test_first_poll_stores_mentions_and_brand_statuses_with_a_cursor(harness: Harness) -> None:
    # Given a server with three mention notifications and one status of the brand
    # When the source is polled for the first time
    outcome = harness.poll()

    # Then the four statuses are stored, and the cursor holds the newest notification and status ids
    assert outcome.status is PollStatus.COMPLETED
    assert harness.posts.ids() == {S1, S2, S3, S4}
    assert harness.state.cursor.value == {"mentions": {"watermark": "5004"}, "own": {"watermark": S2}}


def test_a_mention_becomes_a_customer_post_with_plain_text(harness: Harness) -> None:
    # Given a mention whose content is HTML
    # When it is ingested
    harness.poll()

    # Then it is a customer post with its text, mentions (acct), reach and URL
    post = harness.posts.get(S1)
    assert post.author_role is AuthorRole.CUSTOMER
    assert post.author == "dana@other.example"
    assert post.text == "@acmehelp my parcel is lost & nobody answers"
    assert post.mentions == ("acmehelp",)
    assert post.author_reach == 130
    assert post.conversation_id == S1
    assert post.url == f"https://social.example/@dana/{S1}"


def test_a_reply_to_an_unknown_parent_gets_its_root_from_the_status_context(harness: Harness) -> None:
    # Given a mention replying deep in a thread the connector has not seen
    # When it is ingested
    harness.poll()

    # Then its root is the oldest ancestor of its context, and its parent stays its parent
    post = harness.posts.get(S4)
    assert post.conversation_id == "108999999999999990"
    assert post.in_reply_to == "108999999999999999"
    assert harness.posts.get(S3).conversation_id == S1


def test_roots_are_cached_so_known_threads_need_no_context_request(harness: Harness, server: FakeMastodon) -> None:
    # Given a first poll that resolved the threads of S3 and S4
    harness.poll()
    assert sorted(server.context_requests()) == [f"/api/v1/statuses/{S3}/context", f"/api/v1/statuses/{S4}/context"]

    # When a new mention replies to a status already seen, and the source is polled again
    server.notifications.append(new_mention("5006", "109000000000000006", reply_to=S3))
    harness.poll()

    # Then its root comes from the cache, without another context request
    assert harness.posts.get("109000000000000006").conversation_id == S1
    assert len(server.context_requests()) == 2


def test_the_brands_own_status_is_a_brand_post(harness: Harness) -> None:
    # Given the brand's reply among its statuses
    # When it is ingested
    harness.poll()

    # Then it is the brand speaking, in the thread of the status it answers
    post = harness.posts.get(S2)
    assert post.author_role is AuthorRole.BRAND
    assert post.brand_id == "acme"
    assert post.conversation_id == S1


def test_incremental_poll_asks_only_after_the_newest_ids(harness: Harness, server: FakeMastodon) -> None:
    # Given a first poll, then a new mention
    harness.poll()
    server.notifications.append(new_mention("5007", "109000000000000007", reply_to=S1))
    before = len(server.api.requests)

    # When the source is polled again
    outcome = harness.poll()

    # Then both lists are asked since their watermark, and only the new status is written
    again = server.api.requests[before:]
    assert [request.args.get("since_id") for request in again] == ["5004", S2]
    assert outcome.ingested == 1
    assert harness.state.cursor.value["mentions"] == {"watermark": "5007"}


def test_several_pages_follow_the_link_header(harness: Harness, server: FakeMastodon) -> None:
    # Given a server answering two notifications per page
    server.page_size = 2

    # When the source is polled
    harness.poll()

    # Then the second page is asked with the max_id from the Link header
    pages = [request for request in server.api.requests if request.path == "/api/v1/notifications"]
    assert [request.args.get("max_id") for request in pages] == [None, "5003"]
    assert harness.posts.ids() == {S1, S2, S3, S4}


def test_a_429_stops_the_poll_and_the_next_poll_resumes_without_loss_or_duplicates(
    harness: Harness, server: FakeMastodon
) -> None:
    # Given two notifications per page, and the second page refused with 429
    # (requests: page 1, the contexts of S3 and S4, then page 2)
    server.page_size = 2
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2099-01-01T00:00:00.000Z"}
    server.api.faults[4] = rate_limited(fixture("mastodon", "rate_limited.json"), headers)

    # When the source is polled
    throttled = harness.poll()

    # Then page 1 is kept and the cursor resumes at page 2
    assert throttled.status is PollStatus.THROTTLED
    assert harness.posts.ids() == {S3, S4}
    assert harness.state.cursor.value["mentions"]["resume"] == "5003"

    # When the next poll runs once the platform's wait is over
    harness.now += MAX_RATE_LIMIT_WAIT + timedelta(seconds=1)
    resumed = harness.poll()

    # Then everything is stored once
    assert resumed.status is PollStatus.COMPLETED
    assert harness.posts.ids() == {S1, S2, S3, S4}
    assert set(harness.posts.attempts.values()) == {1}


def test_a_malformed_notification_is_rejected_and_the_rest_kept(harness: Harness, server: FakeMastodon) -> None:
    # Given a notification whose status has no created_at
    del server.notifications[1]["status"]["created_at"]

    # When the source is polled
    with captured_logs() as logs:
        outcome = harness.poll()

    # Then that one is skipped and logged with its field; the others are stored
    assert outcome.rejected == 1
    assert harness.posts.ids() == {S1, S2, S4}
    rejected = [line for line in logs if line["message"] == "rejected item"]
    assert [(line["item_id"], line["field"]) for line in rejected] == [("5003", "status.created_at")]


def test_a_spent_time_budget_stops_between_pages_and_a_rerun_completes(harness: Harness, server: FakeMastodon) -> None:
    # Given two notifications per page and a budget spent by page 1 and its two context lookups
    server.page_size = 2

    # When the source is polled
    stopped = harness.poll(server.api.budget_after(3))

    # Then it stops after page 1
    assert stopped.status is PollStatus.DEADLINE
    assert harness.posts.ids() == {S3, S4}

    # When the next poll has time, it completes
    finished = harness.poll()
    assert finished.status is PollStatus.COMPLETED
    assert harness.posts.ids() == {S1, S2, S3, S4}
    assert set(harness.posts.attempts.values()) == {1}
