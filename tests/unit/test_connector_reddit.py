"""The Reddit connector against a local server answering with the documented listings."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors import reddit
from replyclock.models.domain import AuthorRole
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import MAX_RATE_LIMIT_WAIT, PollStatus
from tests.support.ingesting import FakeApi, Harness, captured_logs, fixture, json_response, rate_limited

CREDENTIALS = {
    "client_id": "acme-script-app",
    "client_secret": "reddit-client-secret-for-tests",
    "username": "AcmeHelp",
    "password": "reddit-password-for-tests",
}
AGENT = "python:replyclock:v0.1 (by /u/acmehelp)"
ALL = {"t1_m1", "t1_m2", "t1_b1"}


class FakeReddit:
    """The token endpoint, /message/mentions and /user/<name>/comments, paged with `after`."""

    def __init__(self, api: FakeApi, page_size: int = 10) -> None:
        self.api = api
        self.page_size = page_size
        self.token = fixture("reddit", "token.json")
        self.mentions: list[dict[str, Any]] = fixture("reddit", "mentions.json")["data"]["children"]
        self.comments: list[dict[str, Any]] = fixture("reddit", "comments.json")["data"]["children"]
        api.route(r"^/api/v1/access_token$", self.access_token, method="POST")
        api.route(r"^/message/mentions$", lambda request: self._listing(request, self.mentions))
        api.route(r"^/user/acmehelp/comments$", lambda request: self._listing(request, self.comments))
        # Replies to the brand's comments and posts (inbox listings polled after its own comments).
        self.comment_replies: list[dict[str, Any]] = []
        self.post_replies: list[dict[str, Any]] = []
        api.route(r"^/message/comments$", lambda request: self._listing(request, self.comment_replies))
        api.route(r"^/message/selfreply$", lambda request: self._listing(request, self.post_replies))

    def access_token(self, request: Request) -> Response:
        basic = base64.b64encode(b"acme-script-app:reddit-client-secret-for-tests").decode()
        assert request.headers["Authorization"] == f"Basic {basic}"
        assert request.headers["User-Agent"] == AGENT
        assert request.form.to_dict() == {
            "grant_type": "password",
            "username": "AcmeHelp",
            "password": "reddit-password-for-tests",
        }
        return json_response(self.token)

    def _listing(self, request: Request, children: list[dict[str, Any]]) -> Response:
        assert request.headers["Authorization"] == f"bearer {self.token['access_token']}"
        assert request.headers["User-Agent"] == AGENT
        names = [child["data"]["name"] for child in children]
        start = names.index(request.args["after"]) + 1 if "after" in request.args else 0
        page = children[start : start + self.page_size]
        after = page[-1]["data"]["name"] if page and start + self.page_size < len(children) else None
        body = {"kind": "Listing", "data": {"after": after, "before": None, "dist": len(page), "children": page}}
        headers = {"x-ratelimit-used": "3", "x-ratelimit-remaining": "597.0", "x-ratelimit-reset": "420"}
        return json_response(body, headers=headers)

    def token_requests(self) -> int:
        return sum(request.path == "/api/v1/access_token" for request in self.api.requests)


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    reddit.clear_tokens()
    yield
    reddit.clear_tokens()


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> FakeReddit:
    return FakeReddit(FakeApi(httpserver_ipv4))


@pytest.fixture
def harness(server: FakeReddit) -> Harness:
    source = Source(
        id="acme-reddit",
        kind=SourceKind.REDDIT,
        brand_id="acme",
        account_handle="AcmeHelp",
        base_url=server.api.url,
        auth_url=server.api.url,
        credentials_name="replyclock/acme-reddit",
    )
    return Harness(source=source, credentials=CREDENTIALS)


def new_mention(comment_id: str, created_utc: float) -> dict[str, Any]:
    child: dict[str, Any] = copy.deepcopy(fixture("reddit", "mentions.json")["data"]["children"][1])
    child["data"].update(id=comment_id, name=f"t1_{comment_id}", created_utc=created_utc, created=created_utc)
    return child


def test_first_poll_stores_mentions_and_the_brands_comments_within_the_look_back(harness: Harness) -> None:
    # Given two recent mentions, one a week old, and one comment of the brand
    # When the source is polled for the first time
    outcome = harness.poll()

    # Then the recent ones are stored, and the cursor holds the newest created_utc of each listing
    assert outcome.status is PollStatus.COMPLETED
    assert harness.posts.ids() == ALL
    assert harness.state.cursor.value == {
        "mentions": {"watermark": "1795167600.0"},
        "own": {"watermark": "1795166400.0"},
    }


def test_a_mention_reads_its_submission_from_the_context_link(harness: Harness) -> None:
    # Given an inbox mention, which carries a context link but no link_id
    # When it is ingested
    harness.poll()

    # Then its conversation is the submission and its parent the comment it answers
    post = harness.posts.get("t1_m2")
    assert post.author_role is AuthorRole.CUSTOMER
    assert post.conversation_id == "t3_def456"
    assert post.in_reply_to == "t1_x9"
    assert post.mentions == ("acmehelp",)
    assert post.url == "https://www.reddit.com/r/techsupport/comments/def456/app_crash/m2/?context=3"


def test_the_brands_comment_is_a_brand_post_in_the_submission(harness: Harness) -> None:
    # Given the brand's reply among its comments
    # When it is ingested
    harness.poll()

    # Then it is the brand speaking, replying to the mention, in the same submission
    post = harness.posts.get("t1_b1")
    assert post.author_role is AuthorRole.BRAND
    assert post.brand_id == "acme"
    assert post.conversation_id == "t3_abc123"
    assert post.in_reply_to == "t1_m1"
    assert post.mentions == ("dana_r",)


def test_incremental_poll_stops_at_the_watermark_and_reuses_the_token(harness: Harness, server: FakeReddit) -> None:
    # Given a first poll, then a new mention
    harness.poll()
    server.mentions.insert(0, new_mention("m3", 1795172400.0))

    # When the source is polled again
    outcome = harness.poll()

    # Then only the new mention is written, and the token of the first poll is reused
    assert outcome.ingested == 1
    assert harness.state.cursor.value["mentions"] == {"watermark": "1795172400.0"}
    assert server.token_requests() == 1


def test_a_mention_dated_far_ahead_of_our_clock_does_not_move_the_watermark(
    harness: Harness, server: FakeReddit
) -> None:
    # Given a first poll, then a mention created in 2099 (a broken clock somewhere)
    harness.poll()
    server.mentions.insert(0, new_mention("m9", 4070908800.0))
    harness.poll()

    # When a real mention arrives after it
    server.mentions.insert(0, new_mention("m3", 1795172400.0))
    outcome = harness.poll()

    # Then it is not mistaken for already read, and the watermark is the newest trusted time
    assert outcome.ingested == 1
    assert harness.state.cursor.value["mentions"] == {"watermark": "1795172400.0"}


def test_several_pages_are_walked_with_after(harness: Harness, server: FakeReddit) -> None:
    # Given one mention per page
    server.page_size = 1

    # When the source is polled
    harness.poll()

    # Then the pages are asked after the last fullname of the previous page, until the look-back is passed
    pages = [request for request in server.api.requests if request.path == "/message/mentions"]
    assert [request.args.get("after") for request in pages] == [None, "t1_m2", "t1_m1"]
    assert harness.posts.ids() == ALL


def test_a_revoked_token_is_renewed_once(harness: Harness, server: FakeReddit) -> None:
    # Given the first read refused with 401
    server.api.faults[2] = json_response({"message": "Unauthorized", "error": 401}, status=401)

    # When the source is polled
    outcome = harness.poll()

    # Then a new token is requested and the poll completes
    assert outcome.status is PollStatus.COMPLETED
    assert server.token_requests() == 2
    assert harness.posts.ids() == ALL


def test_a_429_stops_the_poll_and_the_next_poll_resumes_without_loss_or_duplicates(
    harness: Harness, server: FakeReddit
) -> None:
    # Given one mention per page, and the second page refused (requests: token, page 1, page 2)
    server.page_size = 1
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "120"}
    server.api.faults[3] = rate_limited(fixture("reddit", "rate_limited.json"), headers)

    # When the source is polled
    throttled = harness.poll()

    # Then page 1 is kept and the cursor points after it; Reddit's reset (seconds) is reported
    assert throttled.status is PollStatus.THROTTLED
    assert throttled.retry_after_seconds == pytest.approx(120, abs=5)
    assert harness.posts.ids() == {"t1_m2"}
    assert harness.state.cursor.value["mentions"]["resume"] == "t1_m2"

    # When the next poll runs once the platform's wait is over, it completes with every post stored once
    harness.now += MAX_RATE_LIMIT_WAIT + timedelta(seconds=1)
    resumed = harness.poll()
    assert resumed.status is PollStatus.COMPLETED
    assert harness.posts.ids() == ALL
    assert set(harness.posts.attempts.values()) == {1}


def test_a_malformed_comment_is_rejected_and_the_rest_kept(harness: Harness, server: FakeReddit) -> None:
    # Given a mention without parent_id
    del server.mentions[0]["data"]["parent_id"]

    # When the source is polled
    with captured_logs() as logs:
        outcome = harness.poll()

    # Then it is skipped and logged with its field
    assert outcome.rejected == 1
    assert harness.posts.ids() == ALL - {"t1_m2"}
    rejected = [line for line in logs if line["message"] == "rejected item"]
    assert [(line["item_id"], line["field"]) for line in rejected] == [("m2", "parent_id")]


def test_a_spent_time_budget_stops_between_pages_and_a_rerun_completes(harness: Harness, server: FakeReddit) -> None:
    # Given one mention per page and a budget spent by the token and page 1
    server.page_size = 1

    # When the source is polled
    stopped = harness.poll(server.api.budget_after(2))

    # Then it stops after page 1, and the next poll completes
    assert stopped.status is PollStatus.DEADLINE
    assert harness.posts.ids() == {"t1_m2"}
    finished = harness.poll()
    assert finished.status is PollStatus.COMPLETED
    assert harness.posts.ids() == ALL
    assert set(harness.posts.attempts.values()) == {1}


def stored_submission(child: dict[str, Any]) -> str:
    """The submission a listed comment belongs to: its link_id, or the one its context link names."""
    data = child["data"]
    return str(data.get("link_id") or "t3_" + str(data["context"]).split("/comments/")[1].split("/")[0])


def test_a_deleted_comment_is_a_tombstone_not_a_post(harness: Harness, server: FakeReddit) -> None:
    # Given a mention its author deleted: Reddit lists it with "[deleted]" as author and body
    server.mentions[0]["data"].update(author="[deleted]", body="[deleted]")

    # When the source is polled
    outcome = harness.poll()

    # Then it is not stored, and its deletion (in its submission) is handed to the store
    assert harness.posts.ids() == ALL - {"t1_m2"}
    [deletion] = harness.posts.deleted
    assert (deletion.channel, deletion.id) == ("reddit", "t1_m2")
    assert deletion.conversation_id == stored_submission(server.mentions[0])
    assert outcome.deleted == 0  # it was never stored


def test_a_comment_that_only_says_removed_is_still_a_post(harness: Harness, server: FakeReddit) -> None:
    server.mentions[0]["data"].update(body="[removed]")

    harness.poll()

    assert harness.posts.ids() == ALL and harness.posts.deleted == []
