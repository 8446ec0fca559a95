"""X API v2: posts mentioning the brand's account, and the account's own posts (its replies).

GET /2/users/:id/mentions and GET /2/users/:id/tweets with an app-only bearer token.
`since_id` is the watermark (the server filters), `pagination_token` walks a poll's pages
(`meta.next_token`), and `meta.newest_id` of a walk's first page becomes the next
`since_id`. X gives `conversation_id` (the root) itself.

Reposts (`referenced_tweets` of type retweeted) are no posts. An edited post arrives under a
new id; its identity is the first id of `edit_history_tweet_ids`, so it updates the stored post.
A quote of the brand's post (`referenced_tweets` of type quoted, whose author the expansion
names) is addressed to the brand. A rejected item is parked with its author and referenced
posts, so it can be read again without the page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from replyclock.connectors.base import Listing, ListingConnector, Rejected, WalkCursor, parse_payload, rejected_from
from replyclock.connectors.http import HttpClient, RateLimitHeaders
from replyclock.models.domain import AuthorRole, Engagement, Post
from replyclock.models.sources import Credentials, Source

CHANNEL = "x"
PAGE_SIZE = 100
RATE_LIMIT = RateLimitHeaders(remaining="x-rate-limit-remaining", reset="x-rate-limit-reset", reset_format="epoch")
_TIMELINES = {"mentions": "mentions", "own": "tweets"}
_TWEET_FIELDS = (
    "author_id,conversation_id,created_at,edit_history_tweet_ids,entities,in_reply_to_user_id,public_metrics,"
    "referenced_tweets"
)
_EXPANSIONS = "author_id,referenced_tweets.id,referenced_tweets.id.author_id"
_USER_FIELDS = "username,public_metrics"
_NUMERIC_ID = r"^\d{1,20}$"


class XMention(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(min_length=1)


class XEntities(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mentions: list[XMention] = Field(default_factory=list)


class XReference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    id: str = Field(pattern=_NUMERIC_ID)


class XTweetMetrics(BaseModel):
    model_config = ConfigDict(extra="ignore")

    retweet_count: int | None = Field(default=None, ge=0)
    reply_count: int | None = Field(default=None, ge=0)
    like_count: int | None = Field(default=None, ge=0)
    quote_count: int | None = Field(default=None, ge=0)
    impression_count: int | None = Field(default=None, ge=0)


class XTweet(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_NUMERIC_ID)
    text: str = ""
    author_id: str = Field(pattern=_NUMERIC_ID)
    created_at: AwareDatetime
    conversation_id: str = Field(pattern=_NUMERIC_ID)
    referenced_tweets: list[XReference] = Field(default_factory=list)
    entities: XEntities = Field(default_factory=XEntities)
    # Oldest first; the first is the post's identity, the last this version.
    edit_history_tweet_ids: list[Annotated[str, StringConstraints(pattern=_NUMERIC_ID)]] = Field(default_factory=list)
    public_metrics: XTweetMetrics | None = None

    def reference(self, kind: str) -> str | None:
        return next((reference.id for reference in self.referenced_tweets if reference.type == kind), None)

    @property
    def original_id(self) -> str:
        return self.edit_history_tweet_ids[0] if self.edit_history_tweet_ids else self.id


class XReferenced(BaseModel):
    """A referenced post as the referenced_tweets.id expansion gives it (only what we read of it)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    author_id: str | None = None
    edit_history_tweet_ids: list[str] = Field(default_factory=list)

    @property
    def original_id(self) -> str:
        return self.edit_history_tweet_ids[0] if self.edit_history_tweet_ids else self.id


class XPublicMetrics(BaseModel):
    model_config = ConfigDict(extra="ignore")

    followers_count: int | None = Field(default=None, ge=0)


class XUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    username: str
    public_metrics: XPublicMetrics | None = None


class XIncludes(BaseModel):
    model_config = ConfigDict(extra="ignore")

    users: list[Any] = Field(default_factory=list)
    tweets: list[Any] = Field(default_factory=list)


class XItem(BaseModel):
    """One post with what the page's includes say about it: what is parked when it is rejected."""

    model_config = ConfigDict(extra="ignore")

    tweet: XTweet
    users: list[XUser] = Field(default_factory=list)
    tweets: list[XReferenced] = Field(default_factory=list)


class XMeta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    result_count: int = 0
    newest_id: str | None = None
    next_token: str | None = None


class XTimelinePage(BaseModel):
    """A timeline response; `data` stays raw so one bad post is rejected alone."""

    model_config = ConfigDict(extra="ignore")

    data: list[Any] = Field(default_factory=list)
    includes: XIncludes = Field(default_factory=XIncludes)
    # Partial errors, e.g. a looked-up post that no longer exists ({"resource_id": ..., "title": "Not Found Error"}).
    errors: list[Any] = Field(default_factory=list)
    meta: XMeta = Field(default_factory=XMeta)


class XConnector(ListingConnector):
    streams = ("mentions", "own")

    def __init__(self, source: Source, credentials: Credentials, http: HttpClient, now: Callable[[], datetime]) -> None:
        super().__init__(source, http, now)
        self._headers = {"Authorization": f"Bearer {credentials.secret('bearer_token')}"}

    def fetch(self, stream: str, cursor: WalkCursor) -> Listing:
        params: dict[str, str | int] = {
            "max_results": PAGE_SIZE,
            "tweet.fields": _TWEET_FIELDS,
            "expansions": _EXPANSIONS,
            "user.fields": _USER_FIELDS,
        }
        if stream == "own":
            params["exclude"] = "retweets"
        if cursor.watermark:
            params["since_id"] = cursor.watermark
        elif cursor.floor:
            params["start_time"] = datetime.fromisoformat(cursor.floor).strftime("%Y-%m-%dT%H:%M:%SZ")
        if cursor.resume:
            params["pagination_token"] = cursor.resume
        url = f"{self.source.api_url}/2/users/{self.source.account_id}/{_TIMELINES[stream]}"
        response = self.http.get(url, params=params, headers=self._headers)
        page = parse_payload(XTimelinePage, response.json(), f"X {stream} timeline")
        users = {str(user.get("id")): user for user in page.includes.users if isinstance(user, dict)}
        referenced = {str(tweet.get("id")): tweet for tweet in page.includes.tweets if isinstance(tweet, dict)}
        posts: list[Post] = []
        rejected: list[Rejected] = []
        ignored = 0
        for raw in page.data:
            item = _envelope(raw, users, referenced)
            try:
                post = self._read(item)
            except ValidationError as error:
                found = rejected_from(error, raw, item)
                rejected.append(dataclasses.replace(found, field=found.field.removeprefix("tweet.")))
                continue
            if post is None:
                ignored += 1
            else:
                posts.append(post)
        # Rejected items are parked before the cursor passes them, so newest_id may move past them.
        newest = page.meta.newest_id or max((post.id for post in posts), key=lambda i: (len(i), i), default=None)
        return Listing(posts=posts, rejected=rejected, ignored=ignored, next_token=page.meta.next_token, newest=newest)

    def reread(self, stream: str, raw: Any) -> Post | None:
        """A parked item read again: as parked, else as GET /2/tweets?ids= serves it now (same fields)."""
        try:
            return self._read(raw)
        except ValidationError as error:
            failure = error
            tweet = raw.get("tweet") if isinstance(raw, dict) else None
            tweet_id = tweet.get("id") if isinstance(tweet, dict) else None
            if not isinstance(tweet_id, str) or not tweet_id.isdigit():
                raise
        params: dict[str, str | int] = {
            "ids": tweet_id,
            "tweet.fields": _TWEET_FIELDS,
            "expansions": _EXPANSIONS,
            "user.fields": _USER_FIELDS,
        }
        response = self.http.get(f"{self.source.api_url}/2/tweets", params=params, headers=self._headers)
        page = parse_payload(XTimelinePage, response.json(), "X post lookup")
        users = {str(user.get("id")): user for user in page.includes.users if isinstance(user, dict)}
        referenced = {str(tweet.get("id")): tweet for tweet in page.includes.tweets if isinstance(tweet, dict)}
        found = next((item for item in page.data if isinstance(item, dict) and item.get("id") == tweet_id), None)
        if found is not None:
            return self._read(_envelope(found, users, referenced))
        if any(isinstance(problem, dict) and problem.get("resource_id") == tweet_id for problem in page.errors):
            return None  # deleted or withheld since (X names it in `errors`): nothing to store
        raise failure

    def _read(self, raw: Any) -> Post | None:
        item = XItem.model_validate(raw)
        if item.tweet.reference("retweeted") is not None:
            return None  # a repost: its count is on the original (public_metrics.retweet_count)
        author = next((user for user in item.users if user.id == item.tweet.author_id), None)
        return self.to_post(item.tweet, author, {tweet.id: tweet for tweet in item.tweets})

    def to_post(self, tweet: XTweet, author: XUser | None, referenced: dict[str, XReferenced] | None = None) -> Post:
        referenced = referenced or {}
        is_brand = tweet.author_id == self.source.account_id
        username = author.username if author else None
        reach = author.public_metrics.followers_count if author and author.public_metrics else None
        identity = tweet.original_id
        edited = identity != tweet.id
        parent = tweet.reference("replied_to")
        quoted = tweet.reference("quoted")
        quoted_post = referenced.get(quoted) if quoted else None
        mentions = [mention.username for mention in tweet.entities.mentions]
        if quoted_post is not None and quoted_post.author_id == self.source.account_id and not is_brand:
            mentions.append(self.handle)  # a quote of the brand's post is addressed to the brand
        metrics = tweet.public_metrics
        return Post(
            channel=CHANNEL,
            id=identity,
            author=username or tweet.author_id,
            author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
            brand_id=self.brand_id if is_brand else None,
            created_at=tweet.created_at,
            text=tweet.text,
            url=f"https://x.com/{username or 'i/web'}/status/{tweet.id}",
            in_reply_to=_original(parent, referenced),
            # An edited root's later versions still name their first id as the conversation.
            conversation_id=identity if tweet.conversation_id == tweet.id else tweet.conversation_id,
            mentions=tuple(mentions),
            author_reach=reach,
            quote_of=_original(quoted, referenced),
            edited_at=tweet.created_at if edited else None,
            engagement=Engagement(
                replies=metrics.reply_count,
                reposts=metrics.retweet_count,
                quotes=metrics.quote_count,
                likes=metrics.like_count,
                impressions=metrics.impression_count,
            )
            if metrics
            else None,
        )


def _original(tweet_id: str | None, referenced: dict[str, XReferenced]) -> str | None:
    """A referenced post's identity: its first id when the expansion shows it was edited."""
    if tweet_id is None:
        return None
    found = referenced.get(tweet_id)
    return found.original_id if found is not None else tweet_id


def _envelope(raw: Any, users: dict[str, Any], referenced: dict[str, Any]) -> dict[str, Any]:
    tweet = raw if isinstance(raw, dict) else {}
    author = users.get(str(tweet.get("author_id")))
    listed = tweet.get("referenced_tweets")
    references: list[Any] = listed if isinstance(listed, list) else []
    linked = [
        referenced[str(ref.get("id"))]
        for ref in references
        if isinstance(ref, dict) and str(ref.get("id")) in referenced
    ]
    return {"tweet": raw, "users": [author] if author else [], "tweets": linked}
