"""What every connector shares: pages of posts with the cursor that follows them, and newest-first walks.

A connector turns a stored cursor into an iterator of pages. Each page carries the cursor
to store once its posts are written, so a poll can stop between any two pages (deadline,
rate limit) and the next one resumes there; a page re-read after a crash only re-puts
posts that the conditional put ignores.

Social APIs list newest first and page towards older items. A walk therefore reads from
the newest item down to the last one it stored (the *watermark*), remembering while it
goes the token to continue from (`resume`) and the watermark to commit at the end
(`pending`, the newest item of the walk's first page). The watermark moves only once the
walk has reached the old one, so nothing between them can be skipped.
"""

from __future__ import annotations

import dataclasses
import functools
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from replyclock.connectors.http import HttpClient, HttpError, MalformedResponse
from replyclock.models.domain import Post, PostDeletion
from replyclock.models.sources import Source
from replyclock.observability import logger

Cursor = Mapping[str, Any]
# What APIs answer for a page token they no longer know.
_STALE_TOKEN_STATUSES = frozenset({400, 404, 410})


@dataclass(frozen=True)
class Rejected:
    """An item that did not validate: logged with the offending field, counted, and parked with its payload."""

    field: str
    reason: str
    item_id: str | None = None
    # The listing it came from, and what the connector needs to read it again (the item, with its context).
    stream: str = ""
    raw: Any = None


@dataclass(frozen=True)
class Page:
    posts: tuple[Post, ...]
    # The cursor to store once every post of this page is written.
    cursor: dict[str, Any]
    rejected: tuple[Rejected, ...] = ()
    # Posts deleted upstream (tombstones, delete lines): removed once this page's posts are stored.
    deleted: tuple[PostDeletion, ...] = ()
    # Items that are no post by design (reposts, likes, private messages): not stored, counted.
    ignored: int = 0


class Connector(Protocol):
    def pages(self, cursor: Cursor) -> Generator[Page]: ...


class Rereader(Protocol):
    """A connector that can read a parked item again (None: the item is, after all, no post to store)."""

    def reread(self, stream: str, raw: Any) -> Post | None: ...


def rejected_from(error: ValidationError, item: object, raw: Any = None) -> Rejected:
    first = error.errors(include_url=False)[0]
    item_id = (item.get("id") or item.get("uri") or item.get("name")) if isinstance(item, dict) else None
    return Rejected(
        field=".".join(str(part) for part in first["loc"]) or "item",
        reason=first["msg"],
        item_id=str(item_id) if item_id is not None else None,
        raw=item if raw is None else raw,
    )


def parse_payload[M: BaseModel](model: type[M], payload: Any, what: str) -> M:
    """A whole response as its documented model; a response that is not is malformed as a whole."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise MalformedResponse(f"{what}: {where}: {first['msg']}") from None


class WalkCursor(BaseModel):
    """How far a newest-first listing has been read (all values are the connector's own strings)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Everything at or before this (an id or a time) is stored.
    watermark: str | None = None
    # Before the first completed walk: the oldest time it reaches back to.
    floor: str | None = None
    # A walk in progress: the page token to continue from, and the watermark it commits when done.
    resume: str | None = None
    pending: str | None = None


@dataclass(frozen=True)
class Listing:
    """One page of a newest-first listing, already turned into posts."""

    posts: list[Post] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    deleted: list[PostDeletion] = field(default_factory=list)
    ignored: int = 0
    next_token: str | None = None
    # The newest mark among this page's new items (None when it has none).
    newest: str | None = None
    # The page went past the watermark (or floor): older pages hold nothing new.
    reached: bool = False


def walk(cursor: WalkCursor, fetch: Callable[[WalkCursor], Listing]) -> Iterator[tuple[Listing, WalkCursor]]:
    """Pages of one listing from the cursor on, each with the cursor that follows it."""
    restarted = False
    while True:
        try:
            listing = fetch(cursor)
        except HttpError as error:
            if restarted or cursor.resume is None or error.status not in _STALE_TOKEN_STATUSES:
                raise
            restarted = True
            # Page tokens can expire between polls. Walking again from the newest item down to the same
            # watermark re-reads pages already stored (the conditional put ignores them) and skips nothing.
            logger.warning("page token refused; walking again from the newest", status=error.status)
            cursor = cursor.model_copy(update={"resume": None, "pending": None})
            listing = fetch(cursor)
        pending = cursor.pending if cursor.resume is not None else listing.newest
        if listing.next_token is None or listing.reached:
            yield listing, WalkCursor(watermark=pending or cursor.watermark)
            return
        cursor = cursor.model_copy(update={"resume": listing.next_token, "pending": pending})
        yield listing, cursor


# How far ahead of our clock a listing's timestamp may be (clock skew) and still be a watermark.
MAX_CLOCK_AHEAD = timedelta(minutes=10)


class ListingConnector(ABC):
    """A connector reading a few newest-first listings (mentions, the brand's own posts) one after another."""

    streams: ClassVar[tuple[str, ...]]

    def __init__(self, source: Source, http: HttpClient, now: Callable[[], datetime]) -> None:
        self.source = source
        self.http = http
        self.now = now

    def trusted_position(self, moment: datetime | None) -> datetime | None:
        """An item's place in its listing, if it may advance the watermark; None when it lies in the future.

        Items older than the watermark count as already read, so one timestamp far ahead of our clock
        would make every later item look read. Such an item is still ingested; it just sets no watermark.
        """
        if moment is None or moment > self.now() + MAX_CLOCK_AHEAD:
            return None
        return moment

    def pages(self, cursor: Cursor) -> Generator[Page]:
        state = {name: WalkCursor.model_validate(cursor.get(name) or {}) for name in self.streams}
        for name in self.streams:
            start = state[name]
            if start.watermark is None and start.floor is None:
                floor = self.now() - timedelta(hours=self.source.initial_lookback_hours)
                start = start.model_copy(update={"floor": floor.isoformat()})
            for listing, walked in walk(start, functools.partial(self.fetch, name)):
                state[name] = walked
                # A stream that has read nothing yet keeps no entry (the same as an empty one).
                stored = {
                    stream: value.model_dump(exclude_none=True)
                    for stream, value in state.items()
                    if value != WalkCursor()
                }
                yield Page(
                    posts=tuple(listing.posts),
                    cursor=stored,
                    rejected=tuple(dataclasses.replace(item, stream=name) for item in listing.rejected),
                    deleted=tuple(listing.deleted),
                    ignored=listing.ignored,
                )

    @abstractmethod
    def fetch(self, stream: str, cursor: WalkCursor) -> Listing:
        """One page of a stream: the newest one when cursor.resume is None, else the one it names."""

    def reread(self, stream: str, raw: Any) -> Post | None:
        """A parked item read again; ValidationError while it still cannot be read, None when it is no post."""
        raise ValidationError.from_exception_data("parked item", [{"type": "missing", "loc": ("item",), "input": raw}])

    @property
    def brand_id(self) -> str:
        assert self.source.brand_id is not None  # Source validation requires it for network sources
        return self.source.brand_id

    @property
    def handle(self) -> str:
        assert self.source.account_handle is not None
        return self.source.account_handle


class BoundedCache[K, V]:
    """A small LRU map kept across warm invocations (conversation roots, access tokens)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
