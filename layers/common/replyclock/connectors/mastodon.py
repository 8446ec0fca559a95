"""Mastodon: mention notifications of the brand's account, and the account's own statuses.

GET /api/v1/notifications?types[]=mention and GET /api/v1/accounts/:id/statuses with the
account's access token. Ids are strings (numeric); `since_id` is the watermark and the
`Link` header's rel="next" URL gives the `max_id` of the next (older) page. A status only
names its parent (`in_reply_to_id`); the root comes from the parent when we know it, else
from GET /api/v1/statuses/:id/context (its oldest ancestor), cached across polls.
Ids are those of the brand's server, so one Mastodon channel is one server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from replyclock.connectors.base import (
    BoundedCache,
    Listing,
    ListingConnector,
    Rejected,
    WalkCursor,
    parse_payload,
    rejected_from,
)
from replyclock.connectors.http import (
    HttpClient,
    HttpError,
    MalformedResponse,
    RateLimitHeaders,
    link_targets,
    query_value,
)
from replyclock.models.domain import AuthorRole, Engagement, Post
from replyclock.models.sources import Credentials, Source

CHANNEL = "mastodon"
PAGE_SIZE = 40
RATE_LIMIT = RateLimitHeaders(remaining="x-ratelimit-remaining", reset="x-ratelimit-reset", reset_format="iso")
_STATUS_ID = r"^\d{1,20}$"
# Notifications that are statuses addressed to the account: mentions, and (Mastodon 4.5) quotes of its statuses.
POST_TYPES = ("mention", "quote")
# Followers-only and direct statuses are seen only by those they name (or the author's followers).
PRIVATE_VISIBILITIES = frozenset({"private", "direct"})
# (server, status id) -> conversation root; statuses never move between threads, so entries never go stale.
_ROOTS: BoundedCache[tuple[str, str], str] = BoundedCache(50_000)
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.IGNORECASE)
# No "<" inside a tag: with "<[^>]+>", a megabyte of "<" and no ">" takes minutes (each "<" scans to the end).
_TAG = re.compile(r"<[^<>]+>")


class MastodonAccount(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    acct: str = Field(min_length=1)
    followers_count: int | None = Field(default=None, ge=0)


class MastodonMention(BaseModel):
    model_config = ConfigDict(extra="ignore")

    acct: str = Field(min_length=1)


class MastodonQuotedStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    account: MastodonAccount | None = None


class MastodonQuote(BaseModel):
    """Mastodon 4.5 Quote (quoted_status) or ShallowQuote (quoted_status_id); only an accepted one shows the post."""

    model_config = ConfigDict(extra="ignore")

    state: str = ""
    quoted_status: MastodonQuotedStatus | None = None
    quoted_status_id: str | None = None

    @property
    def quoted_id(self) -> str | None:
        return self.quoted_status.id if self.quoted_status else self.quoted_status_id


class MastodonStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_STATUS_ID)
    uri: str
    url: str | None = None
    created_at: AwareDatetime
    in_reply_to_id: str | None = Field(default=None, pattern=_STATUS_ID)
    account: MastodonAccount
    content: str = ""
    mentions: list[MastodonMention] = Field(default_factory=list)
    visibility: str = "public"
    spoiler_text: str = ""
    edited_at: AwareDatetime | None = None
    # A boost: someone else's status, shared.
    reblog: dict[str, Any] | None = None
    quote: MastodonQuote | None = None
    replies_count: int | None = Field(default=None, ge=0)
    reblogs_count: int | None = Field(default=None, ge=0)
    favourites_count: int | None = Field(default=None, ge=0)
    quotes_count: int | None = Field(default=None, ge=0)


class MastodonNotification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_STATUS_ID)
    type: str
    created_at: AwareDatetime
    status: MastodonStatus | None = None


class MastodonAncestor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    in_reply_to_id: str | None = None


class MastodonContext(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ancestors: list[MastodonAncestor] = Field(default_factory=list)


def html_to_text(content: str) -> str:
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", content))).strip()


def _numeric_key(status_id: str) -> tuple[int, str]:
    return (len(status_id), status_id)


class MastodonConnector(ListingConnector):
    streams = ("mentions", "own")

    def __init__(self, source: Source, credentials: Credentials, http: HttpClient, now: Callable[[], datetime]) -> None:
        super().__init__(source, http, now)
        self._headers = {"Authorization": f"Bearer {credentials.secret('access_token')}"}

    def fetch(self, stream: str, cursor: WalkCursor) -> Listing:
        params: dict[str, str | int | list[str]] = {"limit": PAGE_SIZE}
        if stream == "mentions":
            url = f"{self.source.api_url}/api/v1/notifications"
            params["types[]"] = list(POST_TYPES)
        else:
            url = f"{self.source.api_url}/api/v1/accounts/{self.source.account_id}/statuses"
            params["exclude_reblogs"] = "true"
        if cursor.watermark:
            params["since_id"] = cursor.watermark
        if cursor.resume:
            params["max_id"] = cursor.resume
        response = self.http.get(url, params=params, headers=self._headers)
        items = response.json()
        if not isinstance(items, list):
            raise MalformedResponse(f"Mastodon {stream}: expected a JSON array")
        floor = datetime.fromisoformat(cursor.floor) if cursor.floor and not cursor.watermark else None
        statuses: list[MastodonStatus] = []
        rejected: list[Rejected] = []
        marks: list[str] = []
        reached = False
        ignored = 0
        for raw in items:
            try:
                mark, status, created_at = self._read_item(stream, raw)
            except ValidationError as error:
                rejected.append(rejected_from(error, raw))
                if isinstance(raw, dict) and str(raw.get("id", "")).isdigit():
                    marks.append(str(raw["id"]))
                continue
            if floor is not None and created_at < floor:
                reached = True
                continue
            marks.append(mark)
            if status is not None and status.reblog is None:
                statuses.append(status)
            else:
                ignored += 1
        next_url = link_targets(response.header("link")).get("next")
        posts = self._to_posts(statuses, rejected, addressed=stream == "mentions")
        return Listing(
            posts=posts,
            rejected=rejected,
            ignored=ignored,
            next_token=query_value(next_url, "max_id") if items and next_url else None,
            newest=max(marks, key=_numeric_key, default=None),
            reached=reached,
        )

    def _read_item(self, stream: str, raw: Any) -> tuple[str, MastodonStatus | None, datetime]:
        if stream == "mentions":
            notification = MastodonNotification.model_validate(raw)
            status = notification.status if notification.type in POST_TYPES else None
            return notification.id, status, notification.created_at
        status = MastodonStatus.model_validate(raw)
        return status.id, status, status.created_at

    def reread(self, stream: str, raw: Any) -> Post | None:
        _, status, _ = self._read_item(stream, raw)
        if status is None or status.reblog is not None:
            return None
        return self.to_post(status, self._root_of(status), addressed=stream == "mentions")

    def _to_posts(self, statuses: list[MastodonStatus], rejected: list[Rejected], *, addressed: bool) -> list[Post]:
        posts: list[Post] = []
        # Oldest first, so a parent on the same page is resolved before its replies.
        for status in sorted(statuses, key=lambda s: _numeric_key(s.id)):
            root = self._root_of(status)
            try:
                posts.append(self.to_post(status, root, addressed=addressed))
            except ValidationError as error:
                raw = status.model_dump(mode="json", by_alias=True)
                if addressed:  # parked as the notification it came in, so it is read again the same way
                    raw = {"id": status.id, "type": "mention", "created_at": raw["created_at"], "status": raw}
                rejected.append(rejected_from(error, {"id": status.id}, raw))
        return posts

    def _root_of(self, status: MastodonStatus) -> str:
        server = self.source.api_url
        parent = status.in_reply_to_id
        root = status.id if parent is None else _ROOTS.get((server, parent)) or self._root_from_context(status, parent)
        _ROOTS.put((server, status.id), root)
        return root

    def _root_from_context(self, status: MastodonStatus, parent: str) -> str:
        url = f"{self.source.api_url}/api/v1/statuses/{status.id}/context"
        try:
            response = self.http.get(url, headers=self._headers)
        except HttpError as error:
            if error.status in (403, 404):
                # The thread is gone or private: the parent stands as the root.
                return parent
            raise
        ancestors = parse_payload(MastodonContext, response.json(), "Mastodon status context").ancestors
        if not ancestors:
            return parent
        top = ancestors[0]
        # The oldest visible ancestor may itself reply to something deleted or hidden; that one is the root.
        root = top.in_reply_to_id or top.id
        for ancestor in ancestors:
            _ROOTS.put((self.source.api_url, ancestor.id), root)
        return root

    def to_post(self, status: MastodonStatus, root: str, *, addressed: bool = False) -> Post:
        is_brand = status.account.id == self.source.account_id
        mentions = [mention.acct for mention in status.mentions]
        quoted = status.quote.quoted_status if status.quote and status.quote.state == "accepted" else None
        if not is_brand and quoted is not None and quoted.account and quoted.account.id == self.source.account_id:
            mentions.append(self.handle)  # a quote of the brand's status is addressed to the brand
        elif not is_brand and addressed and status.quote is not None and self.handle not in mentions:
            # A quote notification: the quoted status is the brand's (the server says so by notifying it).
            mentions.append(self.handle)
        # A content warning is part of what the customer wrote.
        text = html_to_text(status.content)
        if status.spoiler_text.strip():
            text = f"{status.spoiler_text.strip()}\n{text}"
        return Post(
            channel=CHANNEL,
            id=status.id,
            author=status.account.acct,
            author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
            brand_id=self.brand_id if is_brand else None,
            created_at=status.created_at,
            text=text,
            url=status.url or status.uri,
            in_reply_to=status.in_reply_to_id,
            conversation_id=root,
            mentions=tuple(mentions),
            author_reach=status.account.followers_count,
            quote_of=status.quote.quoted_id if status.quote else None,
            private=status.visibility in PRIVATE_VISIBILITIES,
            edited_at=status.edited_at,
            engagement=Engagement(
                replies=status.replies_count,
                reposts=status.reblogs_count,
                likes=status.favourites_count,
                quotes=status.quotes_count,
            ),
        )


def clear_root_cache() -> None:
    _ROOTS.clear()
