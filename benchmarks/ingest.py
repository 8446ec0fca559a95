"""Ingest throughput per connector: posts per second parsed (in-memory stores) and parsed + written (moto).

Each network connector polls a local server on 127.0.0.1 answering generated items in its
platform's documented shape (that of tests/fixtures/<platform>/), newest first, in pages of
the size the connector asks for (at most 100). The replays read generated twcs CSV and JSONL
files. Both go through the real connector and services/ingesting.poll_source.

The feeds here are also what the ingest fuzz and fault tests serve.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from moto import mock_aws
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors import bluesky, mastodon, reddit
from replyclock.connectors.base import Connector
from replyclock.connectors.http import Deadline
from replyclock.dal import table
from replyclock.dal.posts import PostStore
from replyclock.dal.sources import SourceStore
from replyclock.models.sources import Credentials, Source, SourceKind
from replyclock.services.ingesting import PollOutcome, PollStatus, PostWriter, SourceState, build_connector, poll_source
from tests.support.ingesting import (
    NOW,
    FakeApi,
    MemoryPosts,
    MemorySourceState,
    create_table,
    fast_http_options,
    fixture,
    time_budget,
)

POSTS = 2_000
# Items of a first poll fall inside its look-back (24 hours by default).
WINDOW = timedelta(hours=20)
# A mention out of this many gets the brand's reply in its own timeline.
REPLY_EVERY = 4

# --- feeds: a platform's API answering generated items -----------------------------------------------------

Item = Any  # a raw item as the platform sends it; tests put garbage in its place


@functools.cache
def _fixture(platform: str, name: str) -> Any:
    """A fixture payload, read once: its parts are templates for generated items (never mutated)."""
    return fixture(platform, name)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _numeric(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 20 else None


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


def _moments(count: int) -> list[datetime]:
    """Oldest first, spread over the window before NOW."""
    return [NOW - WINDOW + WINDOW * (n + 1) / (count + 1) for n in range(count)]


class Feed(ABC):
    """A platform's API on a FakeApi: two newest-first lists (mentions, the brand's own posts), in pages.

    Page tokens are offsets. A page can be replaced by any response (`replaced`), for fuzz and fault tests.
    """

    kind: ClassVar[SourceKind]
    credentials: ClassVar[dict[str, str]]
    token_param: ClassVar[str]
    limit_param: ClassVar[str] = "limit"
    # Whether the server filters by `since_id` (X, Mastodon); the others leave the watermark to the client.
    filters_since: ClassVar[bool] = False

    def __init__(self, mentions: Sequence[Item], own: Sequence[Item], max_page: int = 100) -> None:
        self.items: dict[str, list[Item]] = {"mentions": list(mentions), "own": list(own)}
        self.max_page = max_page
        self.replaced: dict[tuple[str, int], Response] = {}
        self._api: FakeApi | None = None

    @classmethod
    @abstractmethod
    def generate(cls, count: int) -> Feed:
        """`count` posts: mentions of the brand, and the brand's replies to some of them."""

    @abstractmethod
    def install(self, api: FakeApi) -> Feed: ...

    @abstractmethod
    def source(self) -> Source: ...

    @abstractmethod
    def post_id(self, item: Item) -> str | None:
        """The id of the post an item becomes (None for items that are no post)."""

    @abstractmethod
    def watermark(self, stream: str) -> str | None:
        """The watermark a completed walk of the stream stores."""

    @property
    def api(self) -> FakeApi:
        assert self._api is not None, "install the feed first"
        return self._api

    def post_ids(self) -> set[str]:
        return {post_id for items in self.items.values() for item in items if (post_id := self.post_id(item))}

    def connector(self, deadline: Deadline, now: Callable[[], datetime] = lambda: NOW) -> Connector:
        return build_connector(
            self.source(),
            deadline=deadline,
            now=now,
            credentials_for=lambda name: Credentials.model_validate({"values": self.credentials}),
            http_options=fast_http_options(),
        )

    def page(self, stream: str, request: Request) -> tuple[list[Item], str | None] | Response:
        """The items of the requested page and the token of the next, or the response replacing the page."""
        items = self.items[stream]
        since = _numeric(request.args.get("since_id")) if self.filters_since else None
        if since is not None:
            # Items without a readable id (garbage, in tests) are always served.
            items = [item for item in items if (_numeric(_get(item, "id")) or since + 1) > since]
        size = min(int(request.args.get(self.limit_param, self.max_page)), self.max_page)
        token = request.args.get(self.token_param, "0")
        if not token.isdigit():
            return _json({"error": "InvalidRequest", "message": f"unknown {self.token_param}"}, status=400)
        offset = int(token)
        replaced = self.replaced.get((stream, offset // size))
        if replaced is not None:
            return replaced
        following = offset + size
        return items[offset:following], str(following) if following < len(items) else None


def _get(item: Item, *path: str) -> Any:
    for name in path:
        if not isinstance(item, dict):
            return None
        item = item.get(name)
    return item


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # UTF-8 as the platforms send it (escaped, an emoji takes 12 bytes).
    body = json.dumps(body, ensure_ascii=False)
    return Response(body, status=status, headers=headers, content_type="application/json; charset=utf-8")


class XFeed(Feed):
    """GET /2/users/:id/{mentions,tweets}: `data`, `includes.users`, `meta` with newest_id and next_token."""

    kind = SourceKind.X
    credentials = {"bearer_token": "x-bearer-token-for-benchmarks"}
    token_param = "pagination_token"
    limit_param = "max_results"
    filters_since = True
    account = "1001"

    @classmethod
    def generate(cls, count: int) -> XFeed:
        mentions: list[dict[str, Any]] = []
        own: list[dict[str, Any]] = []
        for n, moment in enumerate(_moments(count)):
            tweet_id = str(1_870_000_000_000_000_000 + n)
            if n % REPLY_EVERY == 1 and mentions:
                asked = mentions[-1]
                text = f"@user{asked['author_id']} on it"
                own.append(x_tweet(tweet_id, cls.account, text, moment, replying_to=asked))
            else:
                mentions.append(x_tweet(tweet_id, str(2000 + n % 700), f"@AcmeHelp order {n} is late", moment))
        return cls(mentions[::-1], own[::-1])

    def install(self, api: FakeApi) -> XFeed:
        self._api = api
        api.route(rf"^/2/users/{self.account}/(mentions|tweets)$", self.timeline)
        return self

    def source(self) -> Source:
        return Source(
            id="acme-x",
            kind=SourceKind.X,
            brand_id="acme",
            account_id=self.account,
            account_handle="AcmeHelp",
            base_url=self.api.url,
            credentials_name="replyclock/acme-x",
        )

    def timeline(self, request: Request) -> Response:
        page = self.page("mentions" if request.path.endswith("/mentions") else "own", request)
        if isinstance(page, Response):
            return page
        items, next_token = page
        meta: dict[str, Any] = {"result_count": len(items)}
        body: dict[str, Any] = {"meta": meta}
        if items:
            ids = [item_id for item in items if (item_id := _numeric(_get(item, "id"))) is not None]
            if ids:
                meta.update(newest_id=str(max(ids)), oldest_id=str(min(ids)))
            authors = sorted({value for value in (_get(item, "author_id") for item in items) if isinstance(value, str)})
            body["data"] = items
            body["includes"] = {"users": [self.user(author) for author in authors]}
        if next_token:
            meta["next_token"] = next_token
        reset = str(int(time.time()) + 900)
        limits = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449", "x-rate-limit-reset": reset}
        return _json(body, headers=limits)

    def user(self, user_id: str) -> dict[str, Any]:
        username = "AcmeHelp" if user_id == self.account else f"user{user_id}"
        metrics = {"followers_count": len(user_id) * 37, "following_count": 10, "tweet_count": 100}
        return {"id": user_id, "name": username.title(), "username": username, "public_metrics": metrics}

    def post_id(self, item: Item) -> str | None:
        return _get(item, "id")  # type: ignore[no-any-return]

    def watermark(self, stream: str) -> str | None:
        ids = [_numeric(_get(item, "id")) for item in self.items[stream]]
        return str(max(i for i in ids if i is not None)) if any(ids) else None


def x_tweet(
    tweet_id: str, author_id: str, text: str, at: datetime, replying_to: dict[str, Any] | None = None
) -> dict[str, Any]:
    first = text.split(" ", 1)[0]
    mentions = [{"start": 0, "end": len(first), "username": first[1:], "id": "1001"}] if first.startswith("@") else []
    tweet: dict[str, Any] = {
        "id": tweet_id,
        "text": text,
        "author_id": author_id,
        "created_at": _iso(at),
        "conversation_id": replying_to["conversation_id"] if replying_to else tweet_id,
        "edit_history_tweet_ids": [tweet_id],
        "entities": {"mentions": mentions},
        "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 1, "quote_count": 0},
    }
    if replying_to:
        tweet["referenced_tweets"] = [{"type": "replied_to", "id": replying_to["id"]}]
        tweet["in_reply_to_user_id"] = replying_to["author_id"]
    return tweet


class MastodonFeed(Feed):
    """GET /api/v1/notifications (mentions) and /api/v1/accounts/:id/statuses; Link headers, since_id."""

    kind = SourceKind.MASTODON
    credentials = {"access_token": "mastodon-access-token-for-benchmarks"}
    token_param = "max_id"
    filters_since = True
    account = "108000000000000001"

    @classmethod
    def generate(cls, count: int) -> MastodonFeed:
        brand = mastodon_account(cls.account, "acmehelp", 25_000)
        mentions: list[dict[str, Any]] = []
        own: list[dict[str, Any]] = []
        for n, moment in enumerate(_moments(count)):
            status_id = str(110_000_000_000_000_000 + n)
            if n % REPLY_EVERY == 1 and mentions:
                asked = mentions[-1]["status"]
                text = f"@{asked['account']['acct']} sorry! Which order?"
                own.append(mastodon_status(status_id, brand, text, moment, replying_to=asked))
            else:
                customer = mastodon_account(str(108_000_000_000_100_000 + n % 700), f"user{n % 700}@other.example", n)
                status = mastodon_status(status_id, customer, f"@acmehelp order {n} is late", moment, mentioning=brand)
                mentions.append(mastodon_notification(str(600_000 + n), status))
        return cls(mentions[::-1], own[::-1])

    def install(self, api: FakeApi) -> MastodonFeed:
        self._api = api
        api.route(r"^/api/v1/notifications$", lambda request: self.listing("mentions", request))
        api.route(rf"^/api/v1/accounts/{self.account}/statuses$", lambda request: self.listing("own", request))
        # Roots come from the parent, known from the mentions; an unknown one stands as its own root.
        api.route(r"^/api/v1/statuses/\d+/context$", lambda request: _json({"error": "Record not found"}, 404))
        return self

    def source(self) -> Source:
        return Source(
            id="acme-mastodon",
            kind=SourceKind.MASTODON,
            brand_id="acme",
            account_id=self.account,
            account_handle="acmehelp",
            base_url=self.api.url,
            credentials_name="/replyclock/acme-mastodon",
        )

    def listing(self, stream: str, request: Request) -> Response:
        page = self.page(stream, request)
        if isinstance(page, Response):
            return page
        items, next_token = page
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299", "X-RateLimit-Reset": _iso(NOW)}
        if next_token:
            base = f"{self.api.url}{request.path}"
            headers["Link"] = f'<{base}?max_id={next_token}>; rel="next", <{base}?min_id=0>; rel="prev"'
        return _json(items, headers=headers)

    def post_id(self, item: Item) -> str | None:
        return _get(item, "status", "id") or _get(item, "id")  # type: ignore[no-any-return]

    def watermark(self, stream: str) -> str | None:
        ids = [_numeric(_get(item, "id")) for item in self.items[stream]]
        return str(max(i for i in ids if i is not None)) if any(ids) else None


def mastodon_account(account_id: str, acct: str, followers: int) -> dict[str, Any]:
    username = acct.split("@")[0]
    return {
        **_fixture("mastodon", "notifications.json")[0]["account"],
        "id": account_id,
        "username": username,
        "acct": acct,
        "display_name": username.title(),
        "url": f"https://social.example/@{acct}",
        "followers_count": followers,
    }


def mastodon_status(
    status_id: str,
    account: dict[str, Any],
    text: str,
    at: datetime,
    replying_to: dict[str, Any] | None = None,
    mentioning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    mentioned = mentioning or (replying_to or {}).get("account")
    return {
        **_fixture("mastodon", "statuses.json")[0],
        "id": status_id,
        "created_at": _iso(at),
        "in_reply_to_id": replying_to["id"] if replying_to else None,
        "in_reply_to_account_id": replying_to["account"]["id"] if replying_to else None,
        "uri": f"https://social.example/users/{account['username']}/statuses/{status_id}",
        "url": f"https://social.example/@{account['username']}/{status_id}",
        "content": f"<p>{text}</p>",
        "account": account,
        "mentions": [
            {
                "id": mentioned["id"],
                "username": mentioned["username"],
                "url": mentioned["url"],
                "acct": mentioned["acct"],
            }
        ]
        if mentioned
        else [],
    }


def mastodon_notification(notification_id: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": notification_id,
        "type": "mention",
        "created_at": status["created_at"],
        "account": status["account"],
        "status": status,
    }


class BlueskyFeed(Feed):
    """createSession, listNotifications and getAuthorFeed with opaque cursors (offsets here)."""

    kind = SourceKind.BLUESKY
    credentials = {"identifier": "acmehelp.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"}
    token_param = "cursor"
    did = "did:plc:acmehelp4q2n7xz3k5m6w8ab"
    handle = "acmehelp.bsky.social"

    @classmethod
    def generate(cls, count: int) -> BlueskyFeed:
        mentions: list[dict[str, Any]] = []
        own: list[dict[str, Any]] = []
        brand = bluesky_author(cls.did, cls.handle)
        for n, moment in enumerate(_moments(count)):
            if n % REPLY_EVERY == 1 and mentions:
                asked = mentions[-1]
                text = f"@{asked['author']['handle']} sorry! Which order?"
                reply = bluesky_post(f"at://{cls.did}/app.bsky.feed.post/3l{n:011d}", brand, text, moment, asked)
                own.append({"post": reply})
            else:
                author = bluesky_author(f"did:plc:user{n % 700:020d}", f"user{n % 700}.bsky.social")
                text = f"@{cls.handle} order {n} is late"
                post = bluesky_post(f"at://{author['did']}/app.bsky.feed.post/3l{n:011d}", author, text, moment)
                post["record"]["facets"] = [bluesky_mention(0, len(cls.handle) + 1, cls.did)]
                mentions.append(bluesky_notification(post, "mention"))
        return cls(mentions[::-1], own[::-1])

    def install(self, api: FakeApi) -> BlueskyFeed:
        self._api = api
        session = fixture("bluesky", "session.json")
        api.route(r"^/xrpc/com\.atproto\.server\.createSession$", lambda request: _json(session), method="POST")
        api.route(r"^/xrpc/app\.bsky\.notification\.listNotifications$", lambda r: self.listing("mentions", r))
        api.route(r"^/xrpc/app\.bsky\.feed\.getAuthorFeed$", lambda request: self.listing("own", request))
        return self

    def source(self) -> Source:
        return Source(
            id="acme-bluesky",
            kind=SourceKind.BLUESKY,
            brand_id="acme",
            account_id=self.did,
            account_handle=self.handle,
            base_url=self.api.url,
            credentials_name="replyclock/acme-bluesky",
        )

    def listing(self, stream: str, request: Request) -> Response:
        page = self.page(stream, request)
        if isinstance(page, Response):
            return page
        items, next_token = page
        body: dict[str, Any] = {"notifications" if stream == "mentions" else "feed": items}
        if next_token:
            body["cursor"] = next_token
        reset = str(int(time.time()) + 300)
        return _json(body, headers={"ratelimit-limit": "3000", "ratelimit-remaining": "2999", "ratelimit-reset": reset})

    def post_id(self, item: Item) -> str | None:
        return _get(item, "post", "uri") or _get(item, "uri")  # type: ignore[no-any-return]

    def watermark(self, stream: str) -> str | None:
        moments = [_get(item, "post", "indexedAt") or _get(item, "indexedAt") for item in self.items[stream]]
        parsed = [datetime.fromisoformat(moment) for moment in moments if isinstance(moment, str)]
        return max(parsed).isoformat() if parsed else None


def bluesky_author(did: str, handle: str) -> dict[str, Any]:
    return {
        **_fixture("bluesky", "notifications.json")["notifications"][0]["author"],
        "did": did,
        "handle": handle,
        "displayName": handle.split(".")[0].title(),
    }


def bluesky_mention(start: int, end: int, did: str) -> dict[str, Any]:
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
    }


def bluesky_post(
    uri: str, author: dict[str, Any], text: str, at: datetime, replying_to: dict[str, Any] | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "createdAt": _iso(at), "langs": ["en"]}
    if replying_to:
        parent = {"uri": replying_to["uri"], "cid": replying_to["cid"]}
        root = replying_to["record"].get("reply", {}).get("root", parent)
        record["reply"] = {"root": root, "parent": parent}
    return {
        "uri": uri,
        "cid": f"bafyrei{uri.rsplit('/', 1)[-1]}",
        "author": author,
        "record": record,
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 0,
        "quoteCount": 0,
        "indexedAt": _iso(at),
        "labels": [],
    }


def bluesky_notification(post: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "uri": post["uri"],
        "cid": post["cid"],
        "author": post["author"],
        "reason": reason,
        "record": post["record"],
        "isRead": False,
        "indexedAt": post["indexedAt"],
        "labels": [],
    }


class RedditFeed(Feed):
    """The token endpoint, /message/mentions and /user/<name>/comments as Listings paged with `after`."""

    kind = SourceKind.REDDIT
    credentials = {
        "client_id": "acme-script-app",
        "client_secret": "reddit-client-secret-for-benchmarks",
        "username": "AcmeHelp",
        "password": "reddit-password-for-benchmarks",
    }
    token_param = "after"

    @classmethod
    def generate(cls, count: int) -> RedditFeed:
        mentions: list[dict[str, Any]] = []
        own: list[dict[str, Any]] = []
        for n, moment in enumerate(_moments(count)):
            if n % REPLY_EVERY == 1 and mentions:
                asked = mentions[-1]["data"]
                own.append(reddit_comment(n, "AcmeHelp", f"Sorry u/{asked['author']}! DM us?", moment, asked))
            else:
                mentions.append(reddit_comment(n, f"user_{n % 700}", f"u/AcmeHelp order {n} is late", moment))
        return cls(mentions[::-1], own[::-1])

    def install(self, api: FakeApi) -> RedditFeed:
        self._api = api
        token = fixture("reddit", "token.json")
        api.route(r"^/api/v1/access_token$", lambda request: _json(token), method="POST")
        api.route(r"^/message/mentions$", lambda request: self.listing("mentions", request))
        api.route(r"^/user/acmehelp/comments$", lambda request: self.listing("own", request))
        # Replies to the brand's comments and posts (issue 13): none in this feed.
        empty = {"kind": "Listing", "data": {"after": None, "before": None, "children": []}}
        api.route(r"^/message/(comments|selfreply)$", lambda request: _json(empty))
        return self

    def source(self) -> Source:
        return Source(
            id="acme-reddit",
            kind=SourceKind.REDDIT,
            brand_id="acme",
            account_handle="AcmeHelp",
            base_url=self.api.url,
            auth_url=self.api.url,
            credentials_name="replyclock/acme-reddit",
        )

    def listing(self, stream: str, request: Request) -> Response:
        page = self.page(stream, request)
        if isinstance(page, Response):
            return page
        items, after = page
        data = {"after": after, "dist": len(items), "modhash": None, "geo_filter": "", "before": None}
        headers = {"x-ratelimit-used": "1", "x-ratelimit-remaining": "599.0", "x-ratelimit-reset": "420"}
        return _json({"kind": "Listing", "data": {**data, "children": items}}, headers=headers)

    def post_id(self, item: Item) -> str | None:
        return _get(item, "data", "name")  # type: ignore[no-any-return]

    def watermark(self, stream: str) -> str | None:
        times = [_get(item, "data", "created_utc") for item in self.items[stream]]
        numbers = [float(moment) for moment in times if isinstance(moment, int | float)]
        return repr(max(numbers)) if numbers else None


def reddit_comment(
    number: int, author: str, body: str, at: datetime, replying_to: dict[str, Any] | None = None
) -> dict[str, Any]:
    comment_id = _base36(1_000_000 + number)
    submission = replying_to["parent_id"][3:] if replying_to else _base36(50_000_000 + number)
    data: dict[str, Any] = {
        "subreddit": "acme",
        "id": comment_id,
        "name": f"t1_{comment_id}",
        "author": author,
        "author_fullname": f"t2_{author.lower()}",
        "body": body,
        "score": 1,
        "created": at.timestamp(),
        "created_utc": at.timestamp(),
        "distinguished": None,
    }
    if replying_to:
        data.update(
            parent_id=replying_to["name"],
            link_id=f"t3_{submission}",
            permalink=f"/r/acme/comments/{submission}/order/{comment_id}/",
        )
    else:
        data.update(
            parent_id=f"t3_{submission}",
            type="username_mention",
            subject="username mention",
            context=f"/r/acme/comments/{submission}/order/{comment_id}/?context=3",
            new=True,
        )
    return {"kind": "t1", "data": data}


FEEDS: dict[str, type[Feed]] = {"x": XFeed, "mastodon": MastodonFeed, "bluesky": BlueskyFeed, "reddit": RedditFeed}


def reset_connector_caches() -> None:
    """Sessions, tokens and conversation roots are kept across warm invocations; each run starts cold."""
    mastodon.clear_root_cache()
    bluesky.clear_sessions()
    reddit.clear_tokens()


# --- exports to replay -----------------------------------------------------------------------------------------


def twcs_export(count: int) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(
        ["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]
    )
    asked = ""
    for n, moment in enumerate(_moments(count)):
        tweet_id = str(100_000 + n)
        when = moment.strftime("%a %b %d %H:%M:%S +0000 %Y")
        if n % REPLY_EVERY == 1 and asked:
            writer.writerow([tweet_id, "AcmeHelp", "False", when, f"@{asked} sorry, DM us", "", asked])
        else:
            asked = tweet_id
            writer.writerow([tweet_id, str(2000 + n % 700), "True", when, f"@AcmeHelp order {n}\nis late", "", ""])
    return out.getvalue()


def jsonl_export(count: int) -> str:
    lines = []
    asked: dict[str, Any] | None = None
    for n, moment in enumerate(_moments(count)):
        post: dict[str, Any] = {"channel": "x", "id": str(200_000 + n), "created_at": moment.isoformat()}
        if n % REPLY_EVERY == 1 and asked:
            post.update(author="AcmeHelp", author_role="brand", brand_id="acme", text="sorry, DM us")
            post.update(in_reply_to=asked["id"], conversation_id=asked["id"], mentions=[asked["author"]])
        else:
            post.update(author=f"user{n % 700}", author_role="customer", text=f"@AcmeHelp order {n} is late")
            post.update(conversation_id=post["id"], mentions=["AcmeHelp"])
            asked = post
        lines.append(json.dumps(post))
    return "\n".join(lines) + "\n"


# --- the benchmark ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    source: Source
    connect: Callable[[Deadline], Connector]
    posts: int
    # Requests answered by the local server so far (None for replays, which read a file).
    requests: Callable[[], int | None] = lambda: None


@contextmanager
def quiet() -> Iterator[None]:
    """No log lines, no EMF metric documents: the output is the table."""
    metrics_disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        if metrics_disabled is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED")
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = metrics_disabled


@contextmanager
def local_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def poll(target: Target, state: SourceState, posts: PostWriter) -> tuple[PollOutcome, float]:
    reset_connector_caches()
    # A real budget: a poll gone wrong stops instead of hanging the benchmark.
    deadline = time_budget(60.0)
    started = time.perf_counter()
    outcome = poll_source(
        target.source,
        target.connect(deadline),
        state=state,
        posts=posts,
        deadline=deadline,
        now=lambda: NOW,
        owner="benchmark",
        lease_duration=timedelta(minutes=5),
    )
    seconds = time.perf_counter() - started
    if outcome.status is not PollStatus.COMPLETED or outcome.ingested != target.posts or outcome.rejected:
        raise RuntimeError(f"{target.name}: the poll did not store every post once: {outcome.as_dict()}")
    return outcome, seconds


def measure(target: Target, repeats: int = 3) -> dict[str, Any]:
    parse_seconds = []
    for _ in range(repeats):
        before = target.requests()
        outcome, seconds = poll(target, MemorySourceState(), MemoryPosts())
        parse_seconds.append(seconds)
        after = target.requests()
        requests = after - before if after is not None and before is not None else None
    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()
    with mock_aws():
        table_name = create_table()
        _, write_seconds = poll(target, SourceStore(table_name), PostStore(table_name))
    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()
    return {
        "connector": target.name,
        "posts": target.posts,
        "pages": outcome.pages,
        "requests": requests,
        "parse_seconds": min(parse_seconds),
        "parse_and_write_seconds": write_seconds,
        "parsed_per_second": target.posts / min(parse_seconds),
        "parsed_and_written_per_second": target.posts / write_seconds,
    }


def network_target(name: str, server: HTTPServer, posts: int) -> Target:
    server.clear()
    api = FakeApi(server)
    feed = FEEDS[name].generate(posts).install(api)
    return Target(name, feed.source(), feed.connector, posts, requests=lambda: len(api.requests))


def replay_target(name: str, path: Path, text: str, posts: int) -> Target:
    path.write_text(text)
    source = Source(id=f"backfill-{path.suffix[1:]}", kind=SourceKind.REPLAY, replay_uri=str(path))

    def connect(deadline: Deadline) -> Connector:
        return build_connector(source, deadline=deadline, now=lambda: NOW)

    return Target(name, source, connect, posts)


def run(posts: int = POSTS) -> dict[str, Any]:
    os.environ.setdefault("TABLE_NAME", "replyclock-bench")
    rows = []
    with quiet(), local_server() as server, tempfile.TemporaryDirectory() as directory:
        for name in FEEDS:
            rows.append(measure(network_target(name, server, posts)))
        rows.append(measure(replay_target("replay twcs", Path(directory) / "export.csv", twcs_export(posts), posts)))
        rows.append(
            measure(replay_target("replay jsonl", Path(directory) / "export.jsonl", jsonl_export(posts), posts))
        )
    return {"posts_per_connector": posts, "connectors": rows}


def main(argv: list[str]) -> None:
    started = time.perf_counter()
    result = run()
    print(f"{'connector':<14}{'posts':>7}{'pages':>7}{'requests':>10}{'parsed/s':>11}{'parsed+written/s':>18}")
    for row in result["connectors"]:
        print(
            f"{row['connector']:<14}{row['posts']:>7}{row['pages']:>7}{row['requests'] or '-':>10}"
            f"{row['parsed_per_second']:>11,.0f}{row['parsed_and_written_per_second']:>18,.0f}"
        )
    print(
        f"posts/s through the real connector and ingest service: in-memory stores (parsed), moto DynamoDB "
        f"(parsed+written); local server on 127.0.0.1; {time.perf_counter() - started:.0f}s"
    )
