"""ingest: poll one source, storing each page's posts before the source's cursor moves past them.

A poll takes the source's lease (one poll per source at a time), loads its cursor, and
reads pages until the source has nothing more, asks us to slow down (Throttled), or the
time budget runs out (the Lambda's remaining time minus a safety margin). Each page's
posts are written (a conditional put: re-reading a page writes nothing new), and only
then its cursor is stored. Malformed items are logged with the offending field, counted,
and parked with their raw payload before the cursor passes them; the rest of the page is kept.
A poll that read everything tries the parked items again and stores those it can now read.
Private posts go where the brand's `direct_mentions` setting says (replyclock.logic.items).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from pydantic import ValidationError

from replyclock.connectors import bluesky, mastodon, reddit, x
from replyclock.connectors.base import Connector, Page
from replyclock.connectors.http import (
    Deadline,
    DeadlineExceeded,
    HttpClient,
    HttpError,
    MalformedResponse,
    RateLimitHeaders,
    Throttled,
)
from replyclock.connectors.replay import ReplayConnector
from replyclock.dal.brands import BrandStore
from replyclock.dal.credentials import get_credentials
from replyclock.dal.health import SourceHealthStore
from replyclock.dal.posts import PostStore
from replyclock.dal.rejected import ParkedItem, RejectedItemStore
from replyclock.dal.replay_objects import read_export
from replyclock.dal.sources import SourceStore, StoredCursor
from replyclock.dal.table import ConditionFailed
from replyclock.logic.items import routed
from replyclock.models.domain import Brand, Post, PostDeletion
from replyclock.models.sources import Credentials, Source, SourceKind
from replyclock.observability import logger

# Time kept back from the Lambda's remaining time: the last page's writes and the cursor must fit in it.
SAFETY_MARGIN_MS = 15_000
# A lease outlives the invocation that took it by this much, so a crashed poll frees its source soon after.
LEASE_MARGIN = timedelta(seconds=60)

# This service reads credentials: make sure no log line of the process can print them.

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownSource(LookupError):
    """The schedule names a source that is not configured."""


# The longest a platform's Retry-After keeps a source from being polled (X's windows are 15 minutes).
MAX_RATE_LIMIT_WAIT = timedelta(minutes=15)


class PollStatus(StrEnum):
    COMPLETED = "completed"
    THROTTLED = "throttled"
    DEADLINE = "deadline"
    BUSY = "busy"
    LEASE_LOST = "lease_lost"
    DISABLED = "disabled"
    FAILED = "failed"


@dataclass
class PollOutcome:
    source_id: str
    status: PollStatus = PollStatus.COMPLETED
    pages: int = 0
    received: int = 0
    ingested: int = 0
    rejected: int = 0
    deleted: int = 0
    # Items that are no post by design (reposts, likes, private messages), not stored.
    ignored: int = 0
    # Parked items read again and stored by this poll.
    recovered: int = 0
    # Posts read that carry moderation labels (stored; the brand's label policy decides whether they are measured).
    labelled: int = 0
    newest_post_at: datetime | None = None
    retry_after_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["status"] = self.status.value
        body["newest_post_at"] = self.newest_post_at.isoformat() if self.newest_post_at else None
        return body


class SourceState(Protocol):
    """Cursor and lease of a source (replyclock.dal.sources.SourceStore, or a fake in tests)."""

    def load_cursor(self, source_id: str) -> StoredCursor: ...

    def save_cursor(self, source_id: str, value: dict[str, Any], expected_version: int, now: datetime) -> int: ...

    def acquire_lease(self, source_id: str, owner: str, now: datetime, duration: timedelta) -> bool: ...

    def hold_lease(self, source_id: str, owner: str, until: datetime, reason: str) -> None: ...

    def release_lease(self, source_id: str, owner: str) -> None: ...


class PollHealth(Protocol):
    """Where a poll's outcome is recorded for GET /health (replyclock.dal.health.SourceHealthStore, or a fake)."""

    def record_success(self, source_id: str, at: datetime, newest_post_at: datetime | None = None) -> None: ...

    def record_failure(self, source_id: str, at: datetime, kind: str, message: str) -> None: ...

    def record_newest_post(self, source_id: str, newest_post_at: datetime) -> None: ...


class PostWriter(Protocol):
    def put_many(self, posts: Iterable[Post]) -> int: ...

    def put_export_posts(self, posts: Sequence[Post]) -> int: ...

    def delete(self, deletion: PostDeletion, now: datetime) -> bool: ...


class RejectedParking(Protocol):
    """Where rejected items wait with their payload (replyclock.dal.rejected.RejectedItemStore, or a fake)."""

    def park(
        self, source_id: str, *, stream: str, item_id: str | None, field: str, reason: str, raw: Any, now: datetime
    ) -> str: ...

    def parked(self, source_id: str, limit: int) -> list[ParkedItem]: ...

    def release(self, source_id: str, key: str) -> None: ...


# Parked items a poll tries again (after it read everything new).
RETRY_PARKED_LIMIT = 25


def poll_source(
    source: Source,
    connector: Connector,
    *,
    state: SourceState,
    posts: PostWriter,
    deadline: Deadline,
    now: Clock,
    owner: str,
    lease_duration: timedelta,
    parking: RejectedParking | None = None,
    brand: Brand | None = None,
    health: PollHealth | None = None,
) -> PollOutcome:
    outcome = PollOutcome(source_id=source.id)
    if not state.acquire_lease(source.id, owner, now(), lease_duration):
        outcome.status = PollStatus.BUSY
        logger.info("source is being polled, or waiting out the platform's rate limit", source_id=source.id)
        return outcome
    pages = None
    try:
        stored = state.load_cursor(source.id)
        cursor, version = stored.value, stored.version
        pages = connector.pages(cursor)
        while True:
            if deadline.expired:
                outcome.status = PollStatus.DEADLINE
                break
            try:
                page = next(pages)
            except StopIteration:
                break
            except Throttled as throttled:
                outcome.status = PollStatus.THROTTLED
                outcome.retry_after_seconds = throttled.retry_after
                logger.warning("source throttled us", source_id=source.id, retry_after=throttled.retry_after)
                break
            except DeadlineExceeded:
                outcome.status = PollStatus.DEADLINE
                break
            _store(page, source, posts, outcome, now(), parking, brand)
            if page.cursor != cursor:
                try:
                    version = state.save_cursor(source.id, page.cursor, version, now())
                except ConditionFailed:
                    outcome.status = PollStatus.LEASE_LOST
                    logger.warning("another poll moved the cursor; stopping", source_id=source.id)
                    break
                cursor = page.cursor
        if outcome.status is PollStatus.COMPLETED and parking is not None and not deadline.expired:
            _retry_parked(source, connector, parking, posts, outcome, now(), brand)
    except Exception as error:
        outcome.status = PollStatus.FAILED
        logger.exception("poll failed", source_id=source.id)
        _record_health(health, outcome, now(), error)
        raise
    else:
        _record_health(health, outcome, now())
    finally:
        if pages is not None:
            pages.close()
        _end_lease(state, source, owner, outcome, now())
        emit_metrics(outcome, now())
        logger.info("poll finished", **outcome.as_dict())
    return outcome


# Polls that read what there was to read (a deadline or a rate limit after some pages still made progress).
_SUCCEEDED = {PollStatus.COMPLETED, PollStatus.DEADLINE}


def _record_health(
    health: PollHealth | None, outcome: PollOutcome, now: datetime, error: BaseException | None = None
) -> None:
    """Record the poll for GET /health; never let that bookkeeping fail the poll or hide its error."""
    if health is None:
        return
    try:
        if error is not None:
            health.record_failure(outcome.source_id, now, type(error).__name__, str(error))
        elif outcome.status in _SUCCEEDED or (outcome.status is PollStatus.THROTTLED and outcome.pages):
            health.record_success(outcome.source_id, now, outcome.newest_post_at)
        elif outcome.newest_post_at is not None:
            health.record_newest_post(outcome.source_id, outcome.newest_post_at)
    except Exception:  # noqa: BLE001 - health is reporting, not ingesting
        logger.exception("could not record the poll's health", source_id=outcome.source_id)


def _end_lease(state: SourceState, source: Source, owner: str, outcome: PollOutcome, now: datetime) -> None:
    """Release the source, or hold it while the platform asked us to wait, so the next polls do not ask again."""
    if outcome.status is PollStatus.THROTTLED and outcome.retry_after_seconds:
        wait = min(timedelta(seconds=outcome.retry_after_seconds), MAX_RATE_LIMIT_WAIT)
        state.hold_lease(source.id, owner, now + wait, "rate limit")
    else:
        state.release_lease(source.id, owner)


def _store(
    page: Page,
    source: Source,
    posts: PostWriter,
    outcome: PollOutcome,
    now: datetime,
    parking: RejectedParking | None = None,
    brand: Brand | None = None,
) -> None:
    for rejected in page.rejected:
        logger.warning(
            "rejected item",
            source_id=source.id,
            item_id=rejected.item_id,
            field=rejected.field,
            reason=rejected.reason,
        )
        # Parked before the cursor that passes it is stored: the item stays reachable.
        if parking is not None and rejected.raw is not None:
            parking.park(
                source.id,
                stream=rejected.stream or "items",
                item_id=rejected.item_id,
                field=rejected.field,
                reason=rejected.reason,
                raw=rejected.raw,
                now=now,
            )
    outcome.pages += 1
    outcome.rejected += len(page.rejected)
    outcome.ignored += page.ignored
    outcome.received += len(page.posts)
    outcome.labelled += sum(1 for post in page.posts if post.labels)
    # An export's roots come from the reply chains inside the file; its posts keep one identity across exports.
    is_export = source.kind is SourceKind.REPLAY
    stored = [routed(post, brand) for post in page.posts] if not is_export else list(page.posts)
    outcome.ingested += posts.put_export_posts(stored) if is_export else posts.put_many(stored)
    # After the page's posts: a delete line may name a post of the same page.
    outcome.deleted += sum(posts.delete(deletion, now) for deletion in page.deleted)
    newest = max((post.created_at for post in page.posts), default=None)
    if newest and (outcome.newest_post_at is None or newest > outcome.newest_post_at):
        outcome.newest_post_at = newest


def _retry_parked(
    source: Source,
    connector: Connector,
    parking: RejectedParking,
    posts: PostWriter,
    outcome: PollOutcome,
    now: datetime,
    brand: Brand | None,
) -> None:
    """Read parked items again: those that now read as posts are stored and released, the others stay."""
    reread = getattr(connector, "reread", None)
    if reread is None:
        return
    for parked in parking.parked(source.id, RETRY_PARKED_LIMIT):
        try:
            post = reread(parked.stream, parked.raw)
        except ValidationError:
            continue
        except (Throttled, DeadlineExceeded):
            return  # the next poll tries again
        except (HttpError, MalformedResponse) as error:
            # Best effort: what is parked stays parked, and the poll that read everything new still succeeds.
            logger.warning("parked item not read again", source_id=source.id, key=parked.key, error=str(error))
            return
        if post is not None:
            outcome.recovered += posts.put_many([routed(post, brand)])
        parking.release(source.id, parked.key)
        logger.info("parked item read again", source_id=source.id, key=parked.key, stored=post is not None)


def emit_metrics(outcome: PollOutcome, now: datetime) -> None:
    metrics = EphemeralMetrics()
    metrics.add_dimension(name="source", value=outcome.source_id)
    metrics.add_metric(name="IngestedPosts", unit=MetricUnit.Count, value=outcome.ingested)
    metrics.add_metric(name="IngestRejected", unit=MetricUnit.Count, value=outcome.rejected)
    metrics.add_metric(name="DeletedPosts", unit=MetricUnit.Count, value=outcome.deleted)
    metrics.add_metric(name="IngestRecovered", unit=MetricUnit.Count, value=outcome.recovered)
    metrics.add_metric(name="IngestLabelled", unit=MetricUnit.Count, value=outcome.labelled)
    metrics.add_metric(name="IngestThrottled", unit=MetricUnit.Count, value=int(outcome.status is PollStatus.THROTTLED))
    if outcome.newest_post_at is not None:
        lag = max(0.0, (now - outcome.newest_post_at).total_seconds())
        metrics.add_metric(name="IngestLagSeconds", unit=MetricUnit.Seconds, value=lag)
    metrics.flush_metrics()


CredentialsReader = Callable[[str], Credentials]
NetworkConnector = Callable[[Source, Credentials, HttpClient, Clock], Connector]
NETWORKS: dict[SourceKind, tuple[NetworkConnector, RateLimitHeaders]] = {
    SourceKind.X: (x.XConnector, x.RATE_LIMIT),
    SourceKind.MASTODON: (mastodon.MastodonConnector, mastodon.RATE_LIMIT),
    SourceKind.BLUESKY: (bluesky.BlueskyConnector, bluesky.RATE_LIMIT),
    SourceKind.REDDIT: (reddit.RedditConnector, reddit.RATE_LIMIT),
}


def build_connector(
    source: Source,
    *,
    deadline: Deadline,
    now: Clock,
    credentials_for: CredentialsReader = get_credentials,
    http_options: dict[str, Any] | None = None,
) -> Connector:
    if source.kind is SourceKind.REPLAY:
        assert source.replay_uri is not None  # Source validation requires it
        return ReplayConnector(source, functools.partial(read_export, source.replay_uri))
    assert source.credentials_name is not None
    connector_class, rate_limit = NETWORKS[source.kind]
    http = HttpClient(deadline=deadline, rate_limit=rate_limit, **(http_options or {}))
    return connector_class(source, credentials_for(source.credentials_name), http, now)


@dataclass(frozen=True)
class PollContext:
    """What every poll of one invocation shares: its table, its time left, who polls, the clock, the connectors."""

    table_name: str
    remaining_ms: Callable[[], int]
    # Holds the source's lease while it polls: the invocation's request id.
    owner: str
    now: Clock = utc_now
    build: Callable[..., Connector] = build_connector


def poll_configured(source: Source, context: PollContext) -> PollOutcome:
    """Poll a source already read from the table within the invocation's remaining time."""
    table_name, now = context.table_name, context.now
    if not source.enabled:
        logger.info("source is disabled", source_id=source.id)
        return PollOutcome(source_id=source.id, status=PollStatus.DISABLED)
    deadline = Deadline(context.remaining_ms, SAFETY_MARGIN_MS)
    brand = BrandStore(table_name).get(source.brand_id) if source.brand_id else None
    return poll_source(
        source,
        context.build(source, deadline=deadline, now=now),
        state=SourceStore(table_name),
        posts=PostStore(table_name),
        deadline=deadline,
        now=now,
        owner=context.owner,
        lease_duration=timedelta(milliseconds=context.remaining_ms()) + LEASE_MARGIN,
        parking=RejectedItemStore(table_name),
        brand=brand,
        health=SourceHealthStore(table_name),
    )
