"""Bluesky (AT Protocol): notifications addressed to the brand, and the brand's author feed.

Session: com.atproto.server.createSession with the handle and an app password; the access
token is kept for an hour across warm invocations (createSession is rate limited hard).
Reads: app.bsky.notification.listNotifications (reasons mention, reply, quote) and
app.bsky.feed.getAuthorFeed (filter posts_with_replies). Both page newest first with an
opaque `cursor`; the watermark is the newest `indexedAt` read, and a walk stops at the
first item indexed before it. Post ids are at:// URIs; the root is `record.reply.root`.
"""

from __future__ import annotations

import time
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
    DeadlineExceeded,
    HttpClient,
    HttpError,
    MalformedResponse,
    RateLimitHeaders,
    Response,
)
from replyclock.models.domain import AuthorRole, Engagement, Post
from replyclock.models.sources import Credentials, Source
from replyclock.observability import logger
from replyclock.redaction import register_secrets

CHANNEL = "bluesky"
PAGE_SIZE = 50
RATE_LIMIT = RateLimitHeaders(remaining="ratelimit-remaining", reset="ratelimit-reset", reset_format="epoch")
# Notifications that are posts addressed to the account; likes, follows and reposts are not.
POST_REASONS = ("mention", "reply", "quote")
SESSION_SECONDS = 3600
_MENTION_FEATURE = "app.bsky.richtext.facet#mention"
_AT_URI = r"^at://\S+$"
# app.bsky.actor.getProfiles takes at most 25 actors.
PROFILES_PER_REQUEST = 25
FOLLOWERS_SECONDS = 3600
# handle -> (followers, monotonic expiry), across warm invocations
_FOLLOWERS: BoundedCache[str, tuple[int, float]] = BoundedCache(20_000)
# (server, identifier) -> (access token, monotonic expiry)
_SESSIONS: BoundedCache[tuple[str, str], tuple[str, float]] = BoundedCache(256)


class BskyRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uri: str = Field(pattern=_AT_URI)


class BskyReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    root: BskyRef
    parent: BskyRef


class BskyByteSlice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    byteStart: int = Field(ge=0)
    byteEnd: int = Field(ge=0)


class BskyFeature(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str = Field(alias="$type")
    did: str | None = None


class BskyFacet(BaseModel):
    model_config = ConfigDict(extra="ignore")

    index: BskyByteSlice
    features: list[BskyFeature] = Field(default_factory=list)


class BskyEmbed(BaseModel):
    """app.bsky.embed.record (a quote: record is a strongRef) or recordWithMedia (record.record is)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str = Field(default="", alias="$type")
    record: dict[str, Any] | None = None

    @property
    def quoted_uri(self) -> str | None:
        ref: dict[str, Any] = self.record or {}
        if self.type.startswith("app.bsky.embed.recordWithMedia"):
            inner = ref.get("record")
            ref = inner if isinstance(inner, dict) else {}
        elif not self.type.startswith("app.bsky.embed.record"):
            return None
        uri = ref.get("uri")
        return uri if isinstance(uri, str) and uri.startswith("at://") else None


class BskyPostRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = ""
    createdAt: AwareDatetime
    reply: BskyReply | None = None
    facets: list[BskyFacet] = Field(default_factory=list)
    embed: BskyEmbed | None = None


class BskyLabel(BaseModel):
    """com.atproto.label.defs#label: `val` set by labeler `src`; `neg` retracts it."""

    model_config = ConfigDict(extra="ignore")

    val: str = Field(min_length=1, max_length=128)
    neg: bool = False


def label_values(*groups: list[BskyLabel]) -> tuple[str, ...]:
    return tuple(label.val for labels in groups for label in labels if not label.neg)


class BskyAuthor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    did: str
    handle: str = Field(min_length=1)
    # Only detailed profile views carry it (app.bsky.actor.getProfiles); notifications and feeds do not.
    followersCount: int | None = Field(default=None, ge=0)
    labels: list[BskyLabel] = Field(default_factory=list)


class BskyPostNotification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uri: str = Field(pattern=_AT_URI)
    author: BskyAuthor
    reason: str
    # For a reply or quote: the brand's post it answers or quotes.
    reasonSubject: str | None = None
    record: BskyPostRecord
    indexedAt: AwareDatetime
    labels: list[BskyLabel] = Field(default_factory=list)


class BskyPostView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uri: str = Field(pattern=_AT_URI)
    author: BskyAuthor
    record: BskyPostRecord
    indexedAt: AwareDatetime
    labels: list[BskyLabel] = Field(default_factory=list)
    replyCount: int | None = Field(default=None, ge=0)
    repostCount: int | None = Field(default=None, ge=0)
    likeCount: int | None = Field(default=None, ge=0)
    quoteCount: int | None = Field(default=None, ge=0)


class BskyProfiles(BaseModel):
    model_config = ConfigDict(extra="ignore")

    profiles: list[Any] = Field(default_factory=list)


class BskyFeedItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    post: BskyPostView
    # Set on reposts, which are someone else's post.
    reason: dict[str, Any] | None = None


class BskyNotificationsPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    notifications: list[Any]
    cursor: str | None = None


class BskyFeedPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feed: list[Any]
    cursor: str | None = None


class BskySession(BaseModel):
    model_config = ConfigDict(extra="ignore")

    accessJwt: str = Field(min_length=1)


def _indexed_at(raw: Any) -> datetime | None:
    """Where an item sits in its newest-first list, read leniently so a rejected item still counts.

    A notification's or post's indexedAt; for a repost in a feed, when it was reposted (its feed position).
    """
    if not isinstance(raw, dict):
        return None
    container = next((raw[key] for key in ("reason", "post") if isinstance(raw.get(key), dict)), raw)
    value = container.get("indexedAt")
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def mentioned_handles(record: BskyPostRecord, own_did: str, own_handle: str) -> list[str]:
    """Handles of the mention facets (byte ranges of the UTF-8 text); the brand's DID maps to its handle."""
    encoded = record.text.encode()
    handles = []
    for facet in record.facets:
        for feature in facet.features:
            if feature.type != _MENTION_FEATURE:
                continue
            if feature.did == own_did:
                handles.append(own_handle)
                continue
            text = encoded[facet.index.byteStart : facet.index.byteEnd].decode(errors="ignore").strip()
            if text.startswith("@") and len(text) > 1:
                handles.append(text[1:])
    return handles


class BlueskyConnector(ListingConnector):
    streams = ("mentions", "own")

    def __init__(self, source: Source, credentials: Credentials, http: HttpClient, now: Callable[[], datetime]) -> None:
        super().__init__(source, http, now)
        self._identifier = credentials.secret("identifier")
        self._password = credentials.secret("app_password")

    def fetch(self, stream: str, cursor: WalkCursor) -> Listing:
        boundary_text = cursor.watermark or cursor.floor
        boundary = datetime.fromisoformat(boundary_text) if boundary_text else None
        params: dict[str, str | int | list[str]] = {"limit": PAGE_SIZE}
        if cursor.resume:
            params["cursor"] = cursor.resume
        if stream == "mentions":
            params["reasons"] = list(POST_REASONS)
            response = self._get("app.bsky.notification.listNotifications", params)
            notifications = parse_payload(BskyNotificationsPage, response.json(), "Bluesky notifications")
            raw_items, next_token = notifications.notifications, notifications.cursor
        else:
            params.update({"actor": str(self.source.account_id), "filter": "posts_with_replies"})
            response = self._get("app.bsky.feed.getAuthorFeed", params)
            feed = parse_payload(BskyFeedPage, response.json(), "Bluesky author feed")
            raw_items, next_token = feed.feed, feed.cursor
        posts: list[Post] = []
        rejected: list[Rejected] = []
        newest: datetime | None = None
        reached = False
        ignored = 0
        for raw in raw_items:
            indexed_at = self.trusted_position(_indexed_at(raw))
            if boundary is not None and indexed_at is not None and indexed_at < boundary:
                reached = True
                continue
            if indexed_at is not None:
                newest = max(newest, indexed_at) if newest else indexed_at
            try:
                post = self._read_item(stream, raw)
            except ValidationError as error:
                rejected.append(rejected_from(error, raw))
                continue
            if post is not None:
                posts.append(post)
            else:
                ignored += 1
        return Listing(
            posts=self._with_followers(posts),
            rejected=rejected,
            ignored=ignored,
            next_token=next_token if raw_items else None,
            newest=newest.isoformat() if newest else None,
            reached=reached,
        )

    def reread(self, stream: str, raw: Any) -> Post | None:
        return self._read_item(stream, raw)

    def _read_item(self, stream: str, raw: Any) -> Post | None:
        if stream == "mentions":
            if isinstance(raw, dict) and raw.get("reason") not in POST_REASONS:
                return None
            notification = BskyPostNotification.model_validate(raw)
            # Bluesky says the post is addressed to the account (mentions it, replies to it or quotes it).
            quoted = notification.record.embed.quoted_uri if notification.record.embed else None
            if notification.reason == "quote":
                quoted = notification.reasonSubject or quoted
            return self.to_post(
                notification.uri,
                notification.author,
                notification.record,
                notification.indexedAt,
                addressed=True,
                labels=label_values(notification.labels, notification.author.labels),
                quote_of=quoted,
            )
        item = BskyFeedItem.model_validate(raw)
        if item.reason is not None or item.post.author.did != self.source.account_id:
            return None  # a repost (or someone else's post in the feed)
        view = item.post
        return self.to_post(
            view.uri,
            view.author,
            view.record,
            view.indexedAt,
            labels=label_values(view.labels, view.author.labels),
            quote_of=view.record.embed.quoted_uri if view.record.embed else None,
            engagement=Engagement(
                replies=view.replyCount, reposts=view.repostCount, quotes=view.quoteCount, likes=view.likeCount
            ),
        )

    def _with_followers(self, posts: list[Post]) -> list[Post]:
        """Authors' follower counts from app.bsky.actor.getProfiles, 25 actors a request, cached an hour."""
        wanted = sorted({post.author for post in posts if post.author_reach is None})
        now = time.monotonic()
        missing = [actor for actor in wanted if (cached := _FOLLOWERS.get(actor)) is None or cached[1] <= now]
        for start in range(0, len(missing), PROFILES_PER_REQUEST):
            batch = missing[start : start + PROFILES_PER_REQUEST]
            try:
                response = self._get("app.bsky.actor.getProfiles", {"actors": batch})
                profiles = parse_payload(BskyProfiles, response.json(), "Bluesky profiles").profiles
            except (HttpError, MalformedResponse, DeadlineExceeded) as error:
                # Reach is extra: the page's posts are stored without it (a 429 still stops the poll).
                logger.warning("Bluesky profiles not read; reach left unknown", error=str(error))
                break
            for raw in profiles:
                try:
                    profile = BskyAuthor.model_validate(raw)
                except ValidationError:
                    continue
                if profile.followersCount is not None:
                    _FOLLOWERS.put(profile.handle, (profile.followersCount, now + FOLLOWERS_SECONDS))
        reach = {actor: found[0] for actor in wanted if (found := _FOLLOWERS.get(actor)) is not None}
        return [
            post.model_copy(update={"author_reach": reach[post.author]}) if post.author in reach else post
            for post in posts
        ]

    def to_post(
        self,
        uri: str,
        author: BskyAuthor,
        record: BskyPostRecord,
        indexed_at: datetime,
        *,
        addressed: bool = False,
        labels: tuple[str, ...] = (),
        quote_of: str | None = None,
        engagement: Engagement | None = None,
    ) -> Post:
        is_brand = author.did == self.source.account_id
        mentions = mentioned_handles(record, str(self.source.account_id), self.handle)
        return Post(
            channel=CHANNEL,
            id=uri,
            author=author.handle,
            author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
            brand_id=self.brand_id if is_brand else None,
            # createdAt is set by the client and can be anything; indexedAt is when the network saw it.
            created_at=min(record.createdAt, indexed_at),
            text=record.text,
            url=f"https://bsky.app/profile/{author.handle}/post/{uri.rsplit('/', 1)[-1]}",
            in_reply_to=record.reply.parent.uri if record.reply else None,
            conversation_id=record.reply.root.uri if record.reply else uri,
            mentions=(*mentions, self.handle) if addressed else tuple(mentions),
            author_reach=author.followersCount,
            labels=labels,
            quote_of=quote_of,
            engagement=engagement,
        )

    def _get(self, method: str, params: dict[str, str | int | list[str]]) -> Response:
        url = f"{self.source.api_url}/xrpc/{method}"
        try:
            return self.http.get(url, params=params, headers=self._auth_headers())
        except HttpError as error:
            if error.status not in (400, 401) or "Token" not in str(error):
                raise
        # The cached session expired early (ExpiredToken / InvalidToken): one fresh session, one retry.
        _SESSIONS.pop(self._session_key)
        return self.http.get(url, params=params, headers=self._auth_headers())

    @property
    def _session_key(self) -> tuple[str, str]:
        return (self.source.api_url, self._identifier)

    def _auth_headers(self) -> dict[str, str]:
        cached = _SESSIONS.get(self._session_key)
        if cached is None or cached[1] <= time.monotonic():
            response = self.http.post_json(
                f"{self.source.api_url}/xrpc/com.atproto.server.createSession",
                {"identifier": self._identifier, "password": self._password},
            )
            session = parse_payload(BskySession, response.json(), "Bluesky session")
            register_secrets([session.accessJwt])
            cached = (session.accessJwt, time.monotonic() + SESSION_SECONDS)
            _SESSIONS.put(self._session_key, cached)
        return {"Authorization": f"Bearer {cached[0]}"}


def clear_sessions() -> None:
    _SESSIONS.clear()
    _FOLLOWERS.clear()
