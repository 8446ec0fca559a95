"""X API v2: posts mentioning the brand's account, and the account's own posts (its replies).

GET /2/users/:id/mentions and GET /2/users/:id/tweets with an app-only bearer token.
`since_id` is the watermark (the server filters), `pagination_token` walks a poll's pages
(`meta.next_token`), and `meta.newest_id` of a walk's first page becomes the next
`since_id`. X gives `conversation_id` (the root) itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from replyclock.connectors.base import Listing, ListingConnector, Rejected, WalkCursor, parse_payload, rejected_from
from replyclock.connectors.http import HttpClient, RateLimitHeaders
from replyclock.models.domain import AuthorRole, Post
from replyclock.models.sources import Credentials, Source

CHANNEL = "x"
PAGE_SIZE = 100
RATE_LIMIT = RateLimitHeaders(remaining="x-rate-limit-remaining", reset="x-rate-limit-reset", reset_format="epoch")
_TIMELINES = {"mentions": "mentions", "own": "tweets"}
_TWEET_FIELDS = "author_id,conversation_id,created_at,entities,in_reply_to_user_id,public_metrics,referenced_tweets"
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


class XTweet(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_NUMERIC_ID)
    text: str = ""
    author_id: str = Field(pattern=_NUMERIC_ID)
    created_at: AwareDatetime
    conversation_id: str = Field(pattern=_NUMERIC_ID)
    referenced_tweets: list[XReference] = Field(default_factory=list)
    entities: XEntities = Field(default_factory=XEntities)

    @property
    def in_reply_to(self) -> str | None:
        return next((reference.id for reference in self.referenced_tweets if reference.type == "replied_to"), None)


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

    users: list[XUser] = Field(default_factory=list)


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
            "expansions": "author_id",
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
        users = {user.id: user for user in page.includes.users}
        posts: list[Post] = []
        rejected: list[Rejected] = []
        for raw in page.data:
            try:
                tweet = XTweet.model_validate(raw)
                posts.append(self.to_post(tweet, users.get(tweet.author_id)))
            except ValidationError as error:
                rejected.append(rejected_from(error, raw))
        newest = page.meta.newest_id or max((post.id for post in posts), key=lambda i: (len(i), i), default=None)
        return Listing(posts=posts, rejected=rejected, next_token=page.meta.next_token, newest=newest)

    def to_post(self, tweet: XTweet, author: XUser | None) -> Post:
        is_brand = tweet.author_id == self.source.account_id
        username = author.username if author else None
        reach = author.public_metrics.followers_count if author and author.public_metrics else None
        return Post(
            channel=CHANNEL,
            id=tweet.id,
            author=username or tweet.author_id,
            author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
            brand_id=self.brand_id if is_brand else None,
            created_at=tweet.created_at,
            text=tweet.text,
            url=f"https://x.com/{username or 'i/web'}/status/{tweet.id}",
            in_reply_to=tweet.in_reply_to,
            conversation_id=tweet.conversation_id,
            mentions=tuple(mention.username for mention in tweet.entities.mentions),
            author_reach=reach,
        )
