"""The X API v2 connector against a local server answering with the documented timeline payloads."""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.models.domain import AuthorRole
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import MAX_RATE_LIMIT_WAIT, PollStatus
from tests.support.ingesting import FakeApi, Harness, captured_logs, fixture, json_response, rate_limited

BEARER = "x-bearer-token-for-tests-0123456789"
MENTIONS = {"1860000000000000001", "1860000000000000003", "1860000000000000004", "1860000000000000005"}
BRAND_POSTS = {"1860000000000000002", "1860000000000000006"}


class FakeX:
    """GET /2/users/1001/{mentions,tweets}: newest first, since_id, pagination tokens, includes.users."""

    def __init__(self, api: FakeApi, page_size: int = 10) -> None:
        self.api = api
        self.page_size = page_size
        self.timelines = {"mentions": fixture("x", "mentions.json"), "tweets": fixture("x", "tweets.json")}
        # Tokens carry the generation that issued them; older generations are refused.
        self.generation = 0
        api.route(r"^/2/users/1001/(mentions|tweets)$", self.answer)

    def add(self, timeline: str, tweet: dict[str, Any]) -> None:
        self.timelines[timeline]["data"].append(tweet)

    def answer(self, request: Request) -> Response:
        assert request.headers.get("Authorization") == f"Bearer {BEARER}"
        body = self.timelines[request.path.rsplit("/", 1)[-1]]
        tweets = sorted(body["data"], key=lambda tweet: int(tweet["id"]), reverse=True)
        if "since_id" in request.args:
            tweets = [tweet for tweet in tweets if int(tweet["id"]) > int(request.args["since_id"])]
        token = request.args.get("pagination_token", f"{self.generation}-0")
        generation, start = (int(part) for part in token.split("-"))
        if generation != self.generation:
            error = {"title": "Invalid Request", "detail": "One or more parameters to your request was invalid."}
            return json_response({"errors": [{"parameters": {"pagination_token": [token]}}], **error}, status=400)
        page = tweets[start : start + self.page_size]
        meta: dict[str, Any] = {"result_count": len(page)}
        result: dict[str, Any] = {"meta": meta}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
            authors = {tweet["author_id"] for tweet in page}
            result["data"] = page
            result["includes"] = {"users": [user for user in body["includes"]["users"] if user["id"] in authors]}
        if start + self.page_size < len(tweets):
            meta["next_token"] = f"{self.generation}-{start + self.page_size}"
        reset = str(int(time.time()) + 900)
        return json_response(
            result, headers={"x-rate-limit-limit": "450", "x-rate-limit-remaining": "440", "x-rate-limit-reset": reset}
        )

    def requests_to(self, timeline: str) -> list[Request]:
        return [request for request in self.api.requests if request.path.endswith(f"/{timeline}")]


@pytest.fixture
def x(httpserver_ipv4: HTTPServer) -> FakeX:
    return FakeX(FakeApi(httpserver_ipv4))


@pytest.fixture
def harness(x: FakeX) -> Harness:
    source = Source(
        id="acme-x",
        kind=SourceKind.X,
        brand_id="acme",
        account_id="1001",
        account_handle="AcmeHelp",
        base_url=x.api.url,
        credentials_name="replyclock/acme-x",
    )
    return Harness(source=source, credentials={"bearer_token": BEARER})


def new_mention(tweet_id: str) -> dict[str, Any]:
    tweet: dict[str, Any] = copy.deepcopy(fixture("x", "mentions.json")["data"][2])
    tweet.update(
        id=tweet_id, conversation_id=tweet_id, edit_history_tweet_ids=[tweet_id], created_at="2026-11-20T11:30:00.000Z"
    )
    return tweet


def test_first_poll_stores_every_mention_and_brand_post(harness: Harness) -> None:
    # Given X answering both timelines of the brand's account
    # When the source is polled for the first time
    outcome = harness.poll()

    # Then every mention and every post of the brand is stored, and the cursor remembers the newest of each
    assert outcome.status is PollStatus.COMPLETED
    assert harness.posts.ids() == MENTIONS | BRAND_POSTS
    assert outcome.ingested == 6
    assert harness.state.cursor.value == {
        "mentions": {"watermark": "1860000000000000005"},
        "own": {"watermark": "1860000000000000006"},
    }


def test_first_poll_reaches_back_by_start_time_not_since_id(harness: Harness, x: FakeX) -> None:
    # Given a source never polled
    # When it is polled
    harness.poll()

    # Then X is asked for the look-back window, without a since_id
    first = x.requests_to("mentions")[0]
    assert first.args["start_time"] == "2026-11-19T12:00:00Z"
    assert "since_id" not in first.args
    assert x.requests_to("tweets")[0].args["exclude"] == "retweets"


def test_a_reply_mentioning_the_brand_becomes_a_customer_post_in_its_conversation(harness: Harness) -> None:
    # Given a customer's reply to the brand in the mentions timeline
    # When it is ingested
    harness.poll()

    # Then it carries its conversation root, parent, mentions and the author's reach
    post = harness.posts.get("1860000000000000004")
    assert post.author_role is AuthorRole.CUSTOMER
    assert post.brand_id is None
    assert post.author == "dana_k"
    assert post.conversation_id == "1860000000000000001"
    assert post.in_reply_to == "1860000000000000002"
    assert post.mentions == ("acmehelp",)
    assert post.author_reach == 120
    assert post.url == "https://x.com/dana_k/status/1860000000000000004"


def test_a_post_of_the_brands_account_is_a_brand_post(harness: Harness) -> None:
    # Given the brand's reply in its own timeline
    # When it is ingested
    harness.poll()

    # Then it is the configured brand speaking
    post = harness.posts.get("1860000000000000006")
    assert post.author_role is AuthorRole.BRAND
    assert post.brand_id == "acme"
    assert post.conversation_id == "1860000000000000003"


def test_incremental_poll_asks_only_for_posts_after_the_cursor(harness: Harness, x: FakeX) -> None:
    # Given a first poll done, then a new mention
    harness.poll()
    x.add("mentions", new_mention("1860000000000000007"))
    before = len(x.api.requests)

    # When the source is polled again
    outcome = harness.poll()

    # Then X is asked since the newest stored ids, and only the new mention is written
    again = x.api.requests[before:]
    assert [request.args["since_id"] for request in again] == ["1860000000000000005", "1860000000000000006"]
    assert outcome.ingested == 1
    assert harness.posts.attempts["1860000000000000007"] == 1
    assert harness.state.cursor.value["mentions"] == {"watermark": "1860000000000000007"}


def test_several_pages_are_walked_with_pagination_tokens(harness: Harness, x: FakeX) -> None:
    # Given X answering two posts per page
    x.page_size = 2

    # When the source is polled
    outcome = harness.poll()

    # Then both mention pages are read, the second by its token, and the cursor ends at the newest
    assert [request.args.get("pagination_token") for request in x.requests_to("mentions")] == [None, "0-2"]
    assert harness.posts.ids() == MENTIONS | BRAND_POSTS
    assert outcome.pages == 3
    assert harness.state.cursor.value["mentions"] == {"watermark": "1860000000000000005"}


def test_a_429_stops_the_poll_and_the_next_poll_resumes_without_loss_or_duplicates(harness: Harness, x: FakeX) -> None:
    # Given two posts per page, and X refusing the second mentions page with 429
    x.page_size = 2
    reset = int(time.time()) + 900
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    x.api.faults[2] = rate_limited(fixture("x", "rate_limited.json"), headers)

    # When the source is polled
    throttled = harness.poll()

    # Then the first page is kept, the cursor points at the refused page, and the poll reports the wait
    assert throttled.status is PollStatus.THROTTLED
    assert throttled.retry_after_seconds == pytest.approx(900, abs=5)
    assert harness.posts.ids() == {"1860000000000000005", "1860000000000000004"}
    assert harness.state.cursor.value["mentions"] == {
        "floor": "2026-11-19T12:00:00+00:00",
        "resume": "0-2",
        "pending": "1860000000000000005",
    }

    # When the next poll runs once the platform's wait is over
    harness.now += MAX_RATE_LIMIT_WAIT + timedelta(seconds=1)
    resumed = harness.poll()

    # Then it reads from the refused page on: every post once, none twice
    assert resumed.status is PollStatus.COMPLETED
    assert harness.posts.ids() == MENTIONS | BRAND_POSTS
    assert set(harness.posts.attempts.values()) == {1}
    assert throttled.ingested + resumed.ingested == 6


def test_a_malformed_post_is_rejected_and_the_rest_of_the_page_kept(harness: Harness, x: FakeX) -> None:
    # Given one mention without created_at among good ones
    del x.timelines["mentions"]["data"][1]["created_at"]

    # When the source is polled
    with captured_logs() as logs:
        outcome = harness.poll()

    # Then it is skipped, counted and logged with the field; the others are stored
    assert outcome.rejected == 1
    assert harness.posts.ids() == (MENTIONS | BRAND_POSTS) - {"1860000000000000004"}
    rejected = [line for line in logs if line["message"] == "rejected item"]
    assert len(rejected) == 1
    assert rejected[0]["field"] == "created_at"
    assert rejected[0]["item_id"] == "1860000000000000004"


def test_a_spent_time_budget_stops_between_pages_and_a_rerun_completes(harness: Harness, x: FakeX) -> None:
    # Given two posts per page and a budget that runs out after the first request
    x.page_size = 2

    # When the source is polled
    stopped = harness.poll(x.api.budget_after(1))

    # Then the poll stops after its first page, keeping what it read
    assert stopped.status is PollStatus.DEADLINE
    assert harness.posts.ids() == {"1860000000000000005", "1860000000000000004"}

    # When the next poll has time
    finished = harness.poll()

    # Then it completes from where the first stopped
    assert finished.status is PollStatus.COMPLETED
    assert harness.posts.ids() == MENTIONS | BRAND_POSTS
    assert set(harness.posts.attempts.values()) == {1}


def test_an_expired_pagination_token_restarts_the_walk_from_the_newest(harness: Harness, x: FakeX) -> None:
    # Given a poll cut short after its first page, and X no longer accepting the token it kept
    x.page_size = 2
    harness.poll(x.api.budget_after(1))
    x.generation += 1

    # When the next poll runs
    outcome = harness.poll()

    # Then it walks the timeline again from the newest post, storing what was missing, nothing twice
    assert outcome.status is PollStatus.COMPLETED
    assert harness.posts.ids() == MENTIONS | BRAND_POSTS
    assert harness.state.cursor.value["mentions"] == {"watermark": "1860000000000000005"}
