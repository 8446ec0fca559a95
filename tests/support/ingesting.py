"""Helpers for ingest tests: in-memory cursor/lease and post stores, fake platform APIs, budgets."""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from devtools.localstack.template import create_table_arguments
from replyclock.connectors.base import Connector
from replyclock.connectors.http import Deadline
from replyclock.dal.posts import REFRESHED_FIELDS
from replyclock.dal.rejected import ParkedItem, parked_key
from replyclock.dal.sources import StoredCursor
from replyclock.models.domain import Brand, Post, PostDeletion
from replyclock.models.sources import Credentials, Source
from replyclock.observability import logger
from replyclock.services.ingesting import PollOutcome, build_connector, poll_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fixture(platform: str, name: str) -> Any:
    """A payload hand-written from the platform's documentation (no real user data)."""
    return json.loads((FIXTURES / platform / name).read_text())


class MemorySourceState:
    """SourceState in memory: a cursor with a version, and a lease."""

    def __init__(self) -> None:
        self.cursor = StoredCursor(value={})
        self.saves: list[dict[str, Any]] = []
        self.lease: tuple[str, datetime] | None = None

    def load_cursor(self, source_id: str) -> StoredCursor:
        return self.cursor

    def save_cursor(self, source_id: str, value: dict[str, Any], expected_version: int, now: datetime) -> int:
        assert expected_version == self.cursor.version
        self.cursor = StoredCursor(value=copy.deepcopy(value), version=expected_version + 1)
        self.saves.append(copy.deepcopy(value))
        return self.cursor.version

    def acquire_lease(self, source_id: str, owner: str, now: datetime, duration: timedelta) -> bool:
        if self.lease is not None and self.lease[1] > now:
            return False
        self.lease = (owner, now + duration)
        return True

    def hold_lease(self, source_id: str, owner: str, until: datetime, reason: str) -> None:
        if self.lease is not None and self.lease[0] == owner:
            self.lease = (owner, until)

    def release_lease(self, source_id: str, owner: str) -> None:
        if self.lease is not None and self.lease[0] == owner:
            self.lease = None


class MemoryPosts:
    """PostWriter in memory with the conditional put's semantics; counts every put attempt."""

    def __init__(self) -> None:
        self.posts: dict[tuple[str, str], Post] = {}
        self.attempts: Counter[str] = Counter()
        self.deleted: list[PostDeletion] = []

    def put_many(self, posts: Iterable[Post]) -> int:
        new = 0
        for post in posts:
            self.attempts[post.id] += 1
            stored = self.posts.get((post.channel, post.id))
            if stored is None:
                self.posts[(post.channel, post.id)] = post
                new += 1
            else:
                # As PostStore: a later read refreshes text, edit time, counts and reach, nothing measuring reads.
                fresh = {name: getattr(post, name) for name in REFRESHED_FIELDS if getattr(post, name) is not None}
                self.posts[(post.channel, post.id)] = stored.model_copy(update=fresh)
        return new

    def put_export_posts(self, posts: Sequence[Post]) -> int:
        return self.put_many(posts)

    def delete(self, deletion: PostDeletion, now: datetime) -> bool:
        self.deleted.append(deletion)
        return self.posts.pop((deletion.channel, deletion.id), None) is not None

    def ids(self) -> set[str]:
        return {post_id for _, post_id in self.posts}

    def get(self, post_id: str) -> Post:
        return next(post for (_, stored_id), post in self.posts.items() if stored_id == post_id)


class MemoryParking:
    """RejectedParking in memory: parked items by (source, key)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ParkedItem] = {}

    def park(
        self, source_id: str, *, stream: str, item_id: str | None, field: str, reason: str, raw: Any, now: datetime
    ) -> str:
        raw_json = json.dumps(raw, default=str)
        key = parked_key(stream, item_id, raw_json)
        previous = self.items.get((source_id, key))
        self.items[(source_id, key)] = ParkedItem(
            stream=stream,
            key=key,
            raw=json.loads(raw_json),
            field=field,
            reason=reason,
            first_seen=previous.first_seen if previous else now.isoformat(),
            attempts=(previous.attempts if previous else 0) + 1,
        )
        return key

    def parked(self, source_id: str, limit: int) -> list[ParkedItem]:
        return [item for (source, _), item in sorted(self.items.items()) if source == source_id][:limit]

    def release(self, source_id: str, key: str) -> None:
        self.items.pop((source_id, key), None)


@dataclass
class FakeApi:
    """A platform API on pytest-httpserver: routes to handlers, with faults injected by request number."""

    server: HTTPServer
    requests: list[Request] = field(default_factory=list)
    # 1-based number of a request (among all requests to this API) -> the response it gets instead.
    faults: dict[int, Response] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def route(self, path: str, handler: Callable[[Request], Response], method: str = "GET") -> None:
        def answer(request: Request) -> Response:
            self.requests.append(request)
            fault = self.faults.pop(len(self.requests), None)
            return fault if fault is not None else handler(request)

        self.server.expect_request(re.compile(path), method=method).respond_with_handler(answer)

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def budget_after(self, requests: int) -> Deadline:
        """A time budget that runs out once this API has answered `requests` requests."""
        return Deadline(lambda: 60_000 if len(self.requests) < requests else 0)


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Every log line the service writes meanwhile, as Powertools formats it (JSON), parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    # The stdlib logger behind Powertools' one: its filters (redaction) apply to every handler.
    standard = logging.getLogger(logger.name)
    standard.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        standard.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line.strip())


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def rate_limited(body: Any, headers: dict[str, str]) -> Response:
    return json_response(body, status=429, headers=headers)


def time_budget(seconds: float = 30.0) -> Deadline:
    """A real time budget: a poll gone wrong stops (and fails its test) instead of hanging the run."""
    ends = time.monotonic() + seconds
    return Deadline(lambda: int((ends - time.monotonic()) * 1000))


def fast_http_options() -> dict[str, Any]:
    return {"backoff_seconds": 0.001, "sleep": lambda seconds: None, "timeout_seconds": 5.0}


@dataclass
class Harness:
    """One source polled repeatedly through the real service with in-memory stores."""

    source: Source
    credentials: dict[str, str]
    state: MemorySourceState = field(default_factory=MemorySourceState)
    posts: MemoryPosts = field(default_factory=MemoryPosts)
    parking: MemoryParking = field(default_factory=MemoryParking)
    # The brand whose settings shape what is stored (None: an unconfigured brand, the defaults).
    brand: Brand | None = None
    now: datetime = NOW
    # Builds the connector instead of build_connector (say, a replay with small pages).
    make_connector: Callable[[Deadline], Connector] | None = None

    def connector(self, deadline: Deadline) -> Connector:
        if self.make_connector is not None:
            return self.make_connector(deadline)
        return build_connector(
            self.source,
            deadline=deadline,
            now=lambda: self.now,
            credentials_for=lambda name: Credentials.model_validate({"values": self.credentials}),
            http_options=fast_http_options(),
        )

    def poll(self, deadline: Deadline | None = None) -> PollOutcome:
        deadline = deadline or time_budget()
        return poll_source(
            self.source,
            self.connector(deadline),
            state=self.state,
            posts=self.posts,
            deadline=deadline,
            now=lambda: self.now,
            owner="test",
            lease_duration=timedelta(minutes=5),
            parking=self.parking,
            brand=self.brand,
        )


def create_table() -> str:
    """The template's table, created in the active moto mock; returns its name."""
    name = os.environ["TABLE_NAME"]
    boto3.client("dynamodb").create_table(**create_table_arguments("Table", name))
    return name
