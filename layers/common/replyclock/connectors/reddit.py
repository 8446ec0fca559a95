"""Reddit: the brand's inbox (username mentions, replies to its comments and posts), and its own comments.

OAuth2 password grant for a "script" app (POST https://www.reddit.com/api/v1/access_token
with the app's id and secret as HTTP Basic auth); the bearer token is kept until shortly
before it expires. Reads GET /message/mentions, /message/comments, /message/selfreply and
GET /user/<name>/comments?sort=new on
oauth.reddit.com, newest first, paged with `after` (the last item's fullname). The
watermark is the newest `created_utc` read. Comment ids are fullnames (`t1_...`); the
conversation is the submission (`link_id`, `t3_...`; the inbox leaves it out, so it is
read from the `context` link), and `parent_id` is a comment or the submission itself.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from replyclock.connectors.base import (
    BoundedCache,
    Listing,
    ListingConnector,
    Rejected,
    WalkCursor,
    parse_payload,
    rejected_from,
)
from replyclock.connectors.http import HttpClient, HttpError, RateLimitHeaders, Response
from replyclock.models.domain import AuthorRole, Engagement, Post, PostDeletion
from replyclock.models.sources import Credentials, Source
from replyclock.redaction import register_secrets

CHANNEL = "reddit"
PAGE_SIZE = 100
RATE_LIMIT = RateLimitHeaders(remaining="x-ratelimit-remaining", reset="x-ratelimit-reset", reset_format="seconds")
# Tokens are renewed this long before Reddit says they expire.
TOKEN_MARGIN_SECONDS = 60
# Unix times past the last second of year 9999 (and Infinity, NaN) are no date.
_TIME_LIMIT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
_USER_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})")
_SUBMISSION_IN_LINK = re.compile(r"/comments/([a-z0-9]+)(?:/|$)")
# What Reddit shows in place of a comment its author deleted, or a moderator removed.
_TOMBSTONE_AUTHOR = "[deleted]"
_TOMBSTONE_BODIES = frozenset({"[deleted]", "[removed]"})
# (token host, client id, username) -> (access token, monotonic expiry)
_TOKENS: BoundedCache[tuple[str, str, str], tuple[str, float]] = BoundedCache(256)


class RedditComment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=r"^t1_[a-z0-9]+$")
    author: str = Field(min_length=1)
    body: str = ""
    created_utc: float = Field(gt=0, le=_TIME_LIMIT)
    parent_id: str = Field(pattern=r"^t[13]_[a-z0-9]+$")
    link_id: str = Field(pattern=r"^t3_[a-z0-9]+$")
    permalink: str | None = None
    context: str | None = None
    # Reddit's fuzzed score; inbox items carry it too.
    score: int | None = None
    # False, or when the author last edited it (Unix seconds).
    edited: bool | float = False
    # "moderator" or "admin" when the author spoke in that capacity.
    distinguished: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _submission_from_context(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("link_id"):
            match = _SUBMISSION_IN_LINK.search(str(data.get("context") or data.get("permalink") or ""))
            if match:
                return {**data, "link_id": f"t3_{match.group(1)}"}
        return data


class RedditListingData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    after: str | None = None
    children: list[Any]


class RedditListing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["Listing"]
    data: RedditListingData


class RedditToken(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    expires_in: int = Field(default=3600, gt=0)


def _created_utc(child: Any) -> float | None:
    data = child.get("data") if isinstance(child, dict) else None
    value = data.get("created_utc") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) and 0 < value <= _TIME_LIMIT else None


# Inbox listings of items addressed to the brand: username mentions, replies to its comments, replies to its posts.
INBOX_PATHS = {
    "mentions": "/message/mentions",
    "comment_replies": "/message/comments",
    "post_replies": "/message/selfreply",
}


def _edited_at(edited: bool | float) -> datetime | None:
    if isinstance(edited, bool) or not 0 < edited <= _TIME_LIMIT:
        return None
    return datetime.fromtimestamp(edited, tz=UTC)


class RedditConnector(ListingConnector):
    # New streams go last: each has its own cursor, and the first poll of one reaches back the look-back.
    streams = ("mentions", "own", "comment_replies", "post_replies")

    def __init__(self, source: Source, credentials: Credentials, http: HttpClient, now: Callable[[], datetime]) -> None:
        super().__init__(source, http, now)
        self._username = credentials.secret("username")
        self._password = credentials.secret("password")
        self._client_id = credentials.secret("client_id")
        basic = base64.b64encode(f"{self._client_id}:{credentials.secret('client_secret')}".encode()).decode()
        register_secrets([basic])
        self._basic = f"Basic {basic}"
        # Reddit asks for a descriptive agent naming the app and its owner.
        self._agent = f"python:replyclock:v0.1 (by /u/{self.handle})"

    def fetch(self, stream: str, cursor: WalkCursor) -> Listing:
        boundary = float(cursor.watermark) if cursor.watermark else None
        if boundary is None and cursor.floor:
            boundary = datetime.fromisoformat(cursor.floor).timestamp()
        path = INBOX_PATHS.get(stream) or f"/user/{self.handle}/comments"
        params: dict[str, str | int] = {"limit": PAGE_SIZE, "raw_json": 1}
        if stream == "own":
            params["sort"] = "new"
        if cursor.resume:
            params["after"] = cursor.resume
        listing = parse_payload(RedditListing, self._get(path, params).json(), f"Reddit {path}")
        posts: list[Post] = []
        rejected: list[Rejected] = []
        deleted: list[PostDeletion] = []
        newest: float | None = None
        reached = False
        ignored = 0
        for child in listing.data.children:
            created = _created_utc(child)
            if created is not None and self.trusted_position(datetime.fromtimestamp(created, UTC)) is None:
                created = None
            if boundary is not None and created is not None and created < boundary:
                reached = True
                continue
            if created is not None:
                newest = max(newest or created, created)
            if isinstance(child, dict) and child.get("kind") != "t1":
                ignored += 1
                continue  # private messages (t4) are not public conversation
            data = child.get("data") if isinstance(child, dict) else child
            try:
                comment = RedditComment.model_validate(data)
                if comment.author == _TOMBSTONE_AUTHOR and comment.body in _TOMBSTONE_BODIES:
                    deleted.append(PostDeletion(channel=CHANNEL, id=comment.name, conversation_id=comment.link_id))
                else:
                    posts.append(self.to_post(comment, addressed=stream in INBOX_PATHS))
            except ValidationError as error:
                rejected.append(rejected_from(error, data))
        return Listing(
            posts=posts,
            rejected=rejected,
            ignored=ignored,
            deleted=deleted,
            next_token=listing.data.after if listing.data.children else None,
            newest=repr(newest) if newest is not None else None,
            reached=reached,
        )

    def reread(self, stream: str, raw: Any) -> Post | None:
        comment = RedditComment.model_validate(raw)
        if comment.author == _TOMBSTONE_AUTHOR and comment.body in _TOMBSTONE_BODIES:
            return None
        return self.to_post(comment, addressed=stream in INBOX_PATHS)

    def to_post(self, comment: RedditComment, *, addressed: bool = False) -> Post:
        is_brand = comment.author.lower() == self.handle
        mentions = _USER_MENTION.findall(comment.body)
        link = comment.permalink or comment.context
        return Post(
            channel=CHANNEL,
            id=comment.name,
            author=comment.author,
            author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
            brand_id=self.brand_id if is_brand else None,
            created_at=datetime.fromtimestamp(comment.created_utc, tz=UTC),
            text=comment.body,
            url=f"https://www.reddit.com{link}" if link else None,
            in_reply_to=comment.parent_id,
            conversation_id=comment.link_id,
            # An inbox item (a username mention, a reply to the brand's comment or post) is addressed to the brand.
            mentions=(*mentions, self.handle) if addressed else tuple(mentions),
            # A moderator's or admin's distinguished comment speaks for the subreddit (the brand's label policy).
            labels=(f"distinguished:{comment.distinguished}",) if comment.distinguished and not is_brand else (),
            edited_at=_edited_at(comment.edited),
            engagement=Engagement(score=comment.score) if comment.score is not None else None,
        )

    def _get(self, path: str, params: dict[str, str | int]) -> Response:
        url = f"{self.source.api_url}{path}"
        try:
            return self.http.get(url, params=params, headers=self._headers())
        except HttpError as error:
            if error.status != 401:
                raise
        # The cached token was revoked or expired early: one fresh token, one retry.
        _TOKENS.pop(self._token_key)
        return self.http.get(url, params=params, headers=self._headers())

    @property
    def _token_key(self) -> tuple[str, str, str]:
        return (self.source.token_url, self._client_id, self._username)

    def _headers(self) -> dict[str, str]:
        cached = _TOKENS.get(self._token_key)
        if cached is None or cached[1] <= time.monotonic():
            response = self.http.post_form(
                f"{self.source.token_url}/api/v1/access_token",
                {"grant_type": "password", "username": self._username, "password": self._password},
                headers={"Authorization": self._basic, "User-Agent": self._agent},
            )
            token = parse_payload(RedditToken, response.json(), "Reddit access token")
            register_secrets([token.access_token])
            cached = (token.access_token, time.monotonic() + max(0, token.expires_in - TOKEN_MARGIN_SECONDS))
            _TOKENS.put(self._token_key, cached)
        return {"Authorization": f"bearer {cached[0]}", "User-Agent": self._agent}


def clear_tokens() -> None:
    _TOKENS.clear()
