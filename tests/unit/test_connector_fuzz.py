"""Hostile payloads for every connector: a poll ends in a typed outcome, stores only whole posts, loses none.

Each example serves newest-first pages in the platform's documented shape from a local server
(127.0.0.1), with some items broken (a required field missing, null, of the wrong type, nested
garbage, megabyte strings, dates out of range, or no object at all) and maybe one page replaced
by garbage (not JSON, not UTF-8, deeply nested, of the wrong shape, an error status). Replays get
the same treatment as files. Then:

- the poll returns a PollOutcome, or raises a ConnectorError for a page it cannot read (never
  anything else), and gives its lease back;
- every stored post is exactly the one its item describes, and a broken item is counted as rejected;
- the cursor never passes a post that was not written: once the broken page is repaired, the next
  poll stores every good post, and no post is counted as new twice.
"""

from __future__ import annotations

import copy
import csv
import functools
import html
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Response

from benchmarks.ingest import (
    BlueskyFeed,
    Feed,
    MastodonFeed,
    RedditFeed,
    XFeed,
    bluesky_author,
    bluesky_mention,
    bluesky_notification,
    bluesky_post,
    mastodon_account,
    mastodon_notification,
    mastodon_status,
    reddit_comment,
    reset_connector_caches,
    x_tweet,
)
from replyclock.connectors.base import Connector
from replyclock.connectors.http import ConnectorError, Deadline
from replyclock.connectors.replay import ReplayConnector
from replyclock.dal.replay_objects import read_export
from replyclock.models.domain import Post
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import PollOutcome, PollStatus
from tests.support.ingesting import NOW, FakeApi, Harness, time_budget

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MEGABYTE = 1_000_001


class Missing:
    """Stands for a field left out of an item."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


# Values no field of ours accepts in place of a required string, number, date or object.
WRONG = st.sampled_from([MISSING, None, [1], {"a": 1}, nested(300), ["x"] * 3])
# Left out, a text is the empty string (the platforms document it as optional): that is no damage.
WRONG_BUT_PRESENT = WRONG.filter(lambda value: value is not MISSING)
# Megabyte strings, of characters an HTML or mention parser may trip on.
HUGE = st.sampled_from(["a", "<", "&", "é", "\U0001f642", "@", "\\"]).map(lambda char: char * MEGABYTE)
# Dates that parse, but not into UTC (they fall off datetime's range when converted).
OUT_OF_RANGE_DATES = ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00")
# Unix times no date has (JSON allows them; Python's parser reads Infinity too).
OUT_OF_RANGE_NUMBERS = (1e300, 10**400, float("inf"))
# Whole items that are no object at all.
NOT_AN_ITEM = st.sampled_from([None, 7, "item", [], [{"id": "1"}], nested(300), True])


@dataclass(frozen=True)
class Expected:
    """What the post of a good item must be."""

    post_id: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Shape:
    """How one stream of a platform writes its items, and which of their fields a post cannot do without."""

    build: Callable[[int, str, datetime], tuple[dict[str, Any], Expected]]
    required: tuple[tuple[str, ...], ...]
    text: tuple[str, ...]
    # Fields that become the post's created_at: a date out of range must reject the item, not the poll.
    dates: tuple[tuple[str, ...], ...] = ()
    out_of_range: tuple[str, ...] = OUT_OF_RANGE_DATES
    numbers: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Platform:
    feed: type[Feed]
    streams: dict[str, Shape]


# --- items of each platform, in the shapes of tests/fixtures/<platform>/ ----------------------------------


def x_item(brand: bool, number: int, text: str, at: datetime) -> tuple[dict[str, Any], Expected]:
    tweet_id = str(1_870_000_000_000_000_000 + number)
    text = f"@{'dana' if brand else 'AcmeHelp'} {text}"
    return x_tweet(tweet_id, "1001" if brand else str(2000 + number), text, at), Expected(tweet_id, text, at)


def mastodon_item(brand: bool, number: int, text: str, at: datetime) -> tuple[dict[str, Any], Expected]:
    status_id = str(110_000_000_000_000_000 + number)
    if brand:
        account = mastodon_account(MastodonFeed.account, "acmehelp", 25_000)
    else:
        account = mastodon_account(str(108_000_000_000_100_000 + number), f"user{number}@other.example", number)
    status = mastodon_status(status_id, account, "", at)
    status["content"] = f"<p>{html.escape(text)}</p>"
    item = status if brand else mastodon_notification(str(600_000 + number), status)
    return item, Expected(status_id, text.strip(), at)


def bluesky_item(brand: bool, number: int, text: str, at: datetime) -> tuple[dict[str, Any], Expected]:
    handle = BlueskyFeed.handle
    if brand:
        author = bluesky_author(BlueskyFeed.did, handle)
    else:
        author = bluesky_author(f"did:plc:user{number:020d}", f"user{number}.bsky.social")
        text = f"@{handle} {text}"
    uri = f"at://{author['did']}/app.bsky.feed.post/3l{number:011d}"
    post = bluesky_post(uri, author, text, at)
    if not brand:
        post["record"]["facets"] = [bluesky_mention(0, len(handle) + 1, BlueskyFeed.did)]
    item = {"post": post} if brand else bluesky_notification(post, "mention")
    return item, Expected(uri, text, at)


def reddit_item(brand: bool, number: int, text: str, at: datetime) -> tuple[dict[str, Any], Expected]:
    asked = {"name": "t1_asked", "parent_id": "t3_thread"} if brand else None
    child = reddit_comment(number, "AcmeHelp" if brand else f"user_{number}", text, at, asked)
    return child, Expected(child["data"]["name"], text, at)


PLATFORMS = {
    "x": Platform(
        XFeed,
        {
            stream: Shape(
                functools.partial(x_item, stream == "own"),
                required=(("id",), ("author_id",), ("created_at",), ("conversation_id",)),
                text=("text",),
                dates=(("created_at",),),
            )
            for stream in ("mentions", "own")
        },
    ),
    "mastodon": Platform(
        MastodonFeed,
        {
            "mentions": Shape(
                functools.partial(mastodon_item, False),
                required=(
                    ("id",),
                    ("created_at",),
                    ("status", "id"),
                    ("status", "uri"),
                    ("status", "created_at"),
                    ("status", "account"),
                    ("status", "account", "acct"),
                ),
                text=("status", "content"),
                dates=(("status", "created_at"),),
            ),
            "own": Shape(
                functools.partial(mastodon_item, True),
                required=(("id",), ("uri",), ("created_at",), ("account",), ("account", "id")),
                text=("content",),
                dates=(("created_at",),),
                # Here created_at also places the status against the look-back: a year-1 status is just old.
                out_of_range=("9999-12-31T23:59:59-05:00",),
            ),
        },
    ),
    "bluesky": Platform(
        BlueskyFeed,
        {
            "mentions": Shape(
                functools.partial(bluesky_item, False),
                required=(("uri",), ("author",), ("author", "handle"), ("record",), ("record", "createdAt")),
                text=("record", "text"),
                dates=(("record", "createdAt"),),
                # A post's time is the earlier of createdAt and indexedAt: only an early createdAt becomes it.
                out_of_range=("0001-01-01T00:00:00+05:00",),
            ),
            "own": Shape(
                functools.partial(bluesky_item, True),
                required=(("post",), ("post", "uri"), ("post", "author", "did"), ("post", "indexedAt")),
                text=("post", "record", "text"),
            ),
        },
    ),
    "reddit": Platform(
        RedditFeed,
        {
            stream: Shape(
                functools.partial(reddit_item, stream == "own"),
                required=(("data",), ("data", "name"), ("data", "author"), ("data", "parent_id")),
                text=("data", "body"),
                numbers=(("data", "created_utc"),),
            )
            for stream in ("mentions", "own")
        },
    ),
}


# --- what to serve -----------------------------------------------------------------------------------------


@dataclass
class Served:
    """The items of one example: good ones (with their posts) and broken ones, per stream, newest first."""

    items: dict[str, list[Any]] = field(default_factory=lambda: {"mentions": [], "own": []})
    expected: dict[str, list[Expected | None]] = field(default_factory=lambda: {"mentions": [], "own": []})

    def good(self, stream: str | None = None, before: int | None = None) -> dict[str, Expected]:
        """The posts of the good items (of one stream, up to an index)."""
        streams = [stream] if stream else list(self.expected)
        return {
            expected.post_id: expected
            for name in streams
            for expected in self.expected[name][:before]
            if expected is not None
        }

    def broken(self) -> int:
        return sum(expected is None for expected in itertools.chain(*self.expected.values()))


def put(item: Any, path: tuple[str, ...], value: Any) -> Any:
    item = copy.deepcopy(item)
    parent = item
    for name in path[:-1]:
        parent = parent[name]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return item


@st.composite
def broken_item(draw: st.DrawFn, shape: Shape, item: dict[str, Any]) -> Any:
    choices = ["wrong", "huge"] + ["date"] * bool(shape.dates) + ["number"] * bool(shape.numbers) + ["no item"]
    kind = draw(st.sampled_from(choices))
    if kind == "wrong":
        path = draw(st.sampled_from([*shape.required, shape.text]))
        return put(item, path, draw(WRONG_BUT_PRESENT if path == shape.text else WRONG))
    if kind == "huge":
        return put(item, shape.text, draw(HUGE))
    if kind == "date":
        return put(item, draw(st.sampled_from(shape.dates)), draw(st.sampled_from(shape.out_of_range)))
    if kind == "number":
        return put(item, draw(st.sampled_from(shape.numbers)), draw(st.sampled_from(OUT_OF_RANGE_NUMBERS)))
    return draw(NOT_AN_ITEM)


@st.composite
def served_items(draw: st.DrawFn, platform: Platform) -> Served:
    served = Served()
    for offset, (stream, shape) in enumerate(platform.streams.items()):
        count = draw(st.integers(0, 8 if stream == "mentions" else 5))
        for position in range(count):
            number = offset * 1000 + (count - position)
            at = NOW - timedelta(minutes=7 * (position + 1) + 300 * offset)
            item, expected = shape.build(number, draw(st.text(max_size=40)), at)
            if draw(st.integers(0, 3)) == 0:
                served.items[stream].append(draw(broken_item(shape, item)))
                served.expected[stream].append(None)
            else:
                served.items[stream].append(item)
                served.expected[stream].append(expected)
    return served


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
).map(lambda value: json.dumps(value).encode())
GARBAGE_BODIES = st.one_of(
    st.binary(max_size=64),
    JSON_VALUES,
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\xfd not utf-8",
            b'{"data": [{"id": "18',
            b"<html><body>502 Bad Gateway</body></html>",
            b"[" * 100_000 + b"]" * 100_000,
            b"1" * 5_000,
            b'{"a": ' * 5_000,
            b"NaN",
            # The right envelopes around lists that are not lists.
            b'{"data": {"id": "1"}, "meta": {"result_count": "many"}}',
            b'{"notifications": "none", "feed": 3}',
            b'{"kind": "Listing", "data": {"children": {"kind": "t1"}}}',
            b'{"kind": "Listing"}',
            b'{"meta": {"newest_id": 1860000000000000000, "next_token": ["x"]}}',
        ]
    ),
)


@dataclass(frozen=True)
class PageFault:
    stream: str
    page: int
    status: int
    body: bytes

    def response(self) -> Response:
        return Response(self.body, status=self.status, content_type="application/json")


@st.composite
def page_faults(draw: st.DrawFn, served: Served, page_size: int) -> PageFault | None:
    if draw(st.booleans()):
        return None
    stream = draw(st.sampled_from(list(served.items)))
    pages = max(1, -(-len(served.items[stream]) // page_size))
    return PageFault(
        stream=stream,
        page=draw(st.integers(0, pages - 1)),
        status=draw(st.sampled_from([200, 200, 200, 200, 400, 404, 500])),
        body=draw(GARBAGE_BODIES),
    )


# --- polling -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def harness_for(feed: Feed) -> Harness:
    source = feed.source()
    return Harness(source=source, credentials=feed.credentials, make_connector=feed.connector)


def poll_or_refuse(harness: Harness) -> PollOutcome | ConnectorError:
    """A poll's outcome, or the typed error it ended with; anything else fails the test."""
    try:
        return harness.poll(time_budget(30))
    except ConnectorError as error:
        assert harness.state.lease is None, "a failed poll keeps its lease"
        return error


def assert_whole(posts: dict[str, Post], good: dict[str, Expected]) -> None:
    """Every stored post is a good item's, exactly as the item says."""
    assert set(posts) <= set(good), f"posts of broken items were stored: {set(posts) - set(good)}"
    for post_id, post in posts.items():
        expected = good[post_id]
        assert (post.text, post.created_at) == (expected.text, expected.created_at), post_id


def stored(harness: Harness) -> dict[str, Post]:
    return {post_id: post for (_, post_id), post in harness.posts.posts.items()}


def check_network_poll(
    server: HTTPServer, platform: Platform, served: Served, page_size: int, fault: PageFault | None
) -> None:
    server.clear()
    reset_connector_caches()
    feed = platform.feed(served.items["mentions"], served.items["own"], max_page=page_size).install(FakeApi(server))
    if fault is not None:
        feed.replaced[(fault.stream, fault.page)] = fault.response()
    harness = harness_for(feed)

    # When the source is polled
    first = poll_or_refuse(harness)
    server.check_handler_errors()

    # Then what it stored is whole, and a poll without a broken page stored every good post
    assert harness.state.lease is None
    assert_whole(stored(harness), served.good())
    if fault is None:
        assert isinstance(first, PollOutcome) and first.status is PollStatus.COMPLETED
        assert set(stored(harness)) == set(served.good())
        assert first.rejected == served.broken()
        assert first.ingested == len(served.good())
        return
    # Pages before the broken one are stored
    streams = list(served.items)
    earlier = {post_id for stream in streams[: streams.index(fault.stream)] for post_id in served.good(stream)}
    earlier |= set(served.good(fault.stream, before=fault.page * page_size))
    assert earlier <= set(stored(harness))
    if isinstance(first, PollOutcome):
        return

    # When the page is repaired and the source polled again
    feed.replaced.clear()
    before = set(stored(harness))
    second = harness.poll(time_budget(30))

    # Then the cursor had not passed any unwritten post: every good post is stored, none counted new twice
    assert second.status is PollStatus.COMPLETED
    assert set(stored(harness)) == set(served.good())
    assert_whole(stored(harness), served.good())
    assert second.ingested == len(served.good()) - len(before)


@st.composite
def network_examples(draw: st.DrawFn, platform: Platform) -> tuple[Served, int, PageFault | None]:
    served = draw(served_items(platform))
    page_size = draw(st.integers(1, 4))
    return served, page_size, draw(page_faults(served, page_size))


def fuzz_network(name: str) -> Callable[[HTTPServer], None]:
    platform = PLATFORMS[name]

    @FUZZ
    @given(example=network_examples(platform))
    def check(server: HTTPServer, example: tuple[Served, int, PageFault | None]) -> None:
        check_network_poll(server, platform, *example)

    return check


test_x_polls_survive_hostile_payloads = fuzz_network("x")
test_mastodon_polls_survive_hostile_payloads = fuzz_network("mastodon")
test_bluesky_polls_survive_hostile_payloads = fuzz_network("bluesky")
test_reddit_polls_survive_hostile_payloads = fuzz_network("reddit")


# --- replays -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, bytes], Path]]:
    directory = tmp_path_factory.mktemp("exports")
    numbers = itertools.count()

    def write(suffix: str, content: bytes) -> Path:
        path = directory / f"export-{next(numbers)}{suffix}"
        path.write_bytes(content)
        return path

    yield write


def replay(path: Path, page_size: int) -> Harness:
    source = Source(id="backfill", kind=SourceKind.REPLAY, replay_uri=str(path))

    def make_connector(deadline: Deadline) -> Connector:
        return ReplayConnector(source, functools.partial(read_export, str(path)), page_size)

    return Harness(source=source, credentials={}, make_connector=make_connector)


def check_replay(path: Path, lines: list[Expected | None], page_size: int, unreadable: bool) -> None:
    harness = replay(path, page_size)
    good = {expected.post_id: expected for expected in lines if expected is not None}

    outcome = poll_or_refuse(harness)

    assert harness.state.lease is None
    assert_whole(stored(harness), good)
    if unreadable:
        # A file that is not UTF-8, or has a field longer than CSV reads, is refused whole: no cursor, no posts
        assert isinstance(outcome, ConnectorError)
        assert harness.state.saves == [] and not stored(harness)
        return
    assert isinstance(outcome, PollOutcome) and outcome.status is PollStatus.COMPLETED
    assert set(stored(harness)) == set(good)
    assert outcome.rejected == lines.count(None)
    assert harness.state.cursor.value["done"] is True


@st.composite
def jsonl_lines(draw: st.DrawFn) -> tuple[list[str], list[Expected | None]]:
    rendered: list[str] = []
    lines: list[Expected | None] = []
    for number in range(draw(st.integers(0, 12))):
        at = NOW - timedelta(minutes=number)
        text = draw(st.text(max_size=40))
        post: dict[str, Any] = {
            "channel": "x",
            "id": str(300_000 + number),
            "author": f"user{number}",
            "author_role": "customer",
            "created_at": at.isoformat(),
            "text": text,
            "conversation_id": str(300_000 + number),
            "mentions": ["AcmeHelp"],
        }
        kind = draw(st.sampled_from(["good", "good", "wrong", "huge", "date", "line"]))
        if kind == "good":
            rendered.append(json.dumps(post))
            lines.append(Expected(post["id"], text, at))
            continue
        if kind == "wrong":
            path = draw(st.sampled_from(["channel", "id", "author", "author_role", "created_at", "text"]))
            value = draw(WRONG_BUT_PRESENT if path == "text" else WRONG)
            rendered.append(json.dumps(put(post, (path,), value)))
        elif kind == "huge":
            rendered.append(json.dumps(put(post, ("text",), draw(HUGE)), ensure_ascii=False))
        elif kind == "date":
            rendered.append(json.dumps(put(post, ("created_at",), draw(st.sampled_from(OUT_OF_RANGE_DATES)))))
        else:
            garbage = ["not json", "[1, 2]", "1" * 5_000, "[" * 100_000, '{"id": "1"', "null", "\x00", "NaN"]
            rendered.append(draw(st.sampled_from(garbage)))
        lines.append(None)
    return rendered, lines


@FUZZ
@given(example=jsonl_lines(), page_size=st.integers(1, 5), unreadable=st.booleans())
def test_jsonl_replays_survive_hostile_lines(
    exports: Callable[[str, bytes], Path],
    example: tuple[list[str], list[Expected | None]],
    page_size: int,
    unreadable: bool,
) -> None:
    rendered, lines = example
    content = "\n".join(rendered).encode()
    if unreadable:
        content += b"\n\xff\xfe not utf-8"
    check_replay(exports(".jsonl", content), lines, page_size, unreadable)


TWCS_COLUMNS = [
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
]


@st.composite
def twcs_rows(draw: st.DrawFn) -> tuple[list[list[str]], list[Expected | None], bool]:
    rows: list[list[str]] = []
    lines: list[Expected | None] = []
    too_long = False
    for number in range(draw(st.integers(0, 12))):
        at = (NOW - timedelta(minutes=number)).replace(microsecond=0)
        brand = draw(st.booleans())
        text = draw(st.text(max_size=40))
        row = {
            "tweet_id": str(400_000 + number),
            "author_id": "AcmeHelp" if brand else str(5_000 + number),
            "inbound": "False" if brand else "True",
            "created_at": at.strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "text": text,
            "response_tweet_id": "",
            "in_response_to_tweet_id": "",
        }
        kind = draw(st.sampled_from(["good", "good", "wrong", "long", "huge"]))
        if kind == "good":
            lines.append(Expected(row["tweet_id"], text, at))
        elif kind == "wrong":
            column = draw(st.sampled_from(["tweet_id", "author_id", "inbound", "created_at"]))
            row[column] = draw(
                st.sampled_from(
                    {
                        "tweet_id": ["", "12a", "-3", "1.5e3"],
                        "author_id": ["", "x" * 300],
                        "inbound": ["", "maybe", "2"],
                        "created_at": ["", "yesterday", "Fri Dec 31 23:59:59 -0500 9999", "2026-11-20T10:00:00Z"],
                    }[column]
                )
            )
            lines.append(None)
        elif kind == "long":
            # Longer than a post's text may be, short enough for CSV: this row alone is rejected.
            row["text"] = "a" * 50_000
            lines.append(None)
        else:
            row["text"] = "a" * MEGABYTE
            too_long = True
            lines.append(None)
        rows.append([row[column] for column in TWCS_COLUMNS])
    return rows, lines, too_long


@FUZZ
@given(example=twcs_rows(), page_size=st.integers(1, 5))
def test_twcs_replays_survive_hostile_rows(
    exports: Callable[[str, bytes], Path],
    example: tuple[list[list[str]], list[Expected | None], bool],
    page_size: int,
) -> None:
    rows, lines, too_long = example
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(TWCS_COLUMNS)
    writer.writerows(rows)
    check_replay(exports(".csv", out.getvalue().encode()), lines, page_size, unreadable=too_long)


# --- the damage that once crashed or stalled a poll, pinned --------------------------------------------------


def one_broken(name: str, stream: str, damage: Callable[[dict[str, Any]], Any] | None = None) -> Served:
    """Two items per stream, the second of `stream` damaged (all good without damage)."""
    platform = PLATFORMS[name]
    served = Served()
    for offset, (each, shape) in enumerate(platform.streams.items()):
        for position in range(2):
            item, expected = shape.build(offset * 1000 + 2 - position, "hello", NOW - timedelta(minutes=position + 1))
            if damage is not None and each == stream and position == 1:
                served.items[each].append(damage(item))
                served.expected[each].append(None)
            else:
                served.items[each].append(item)
                served.expected[each].append(expected)
    return served


@pytest.mark.parametrize(
    ("name", "stream", "path", "value"),
    [
        # A date with no UTC time raised OverflowError from the post's validation.
        pytest.param("x", "mentions", ("created_at",), "9999-12-31T23:59:59-05:00", id="x-late-date"),
        pytest.param(
            "mastodon", "mentions", ("status", "created_at"), "9999-12-31T23:59-05:00", id="mastodon-late-date"
        ),
        pytest.param("bluesky", "mentions", ("record", "createdAt"), "0001-01-01T00:00+05:00", id="bluesky-early-date"),
        # A Unix time with no date raised OverflowError (in float() or fromtimestamp).
        pytest.param("reddit", "mentions", ("data", "created_utc"), 1e300, id="reddit-1e300"),
        pytest.param("reddit", "own", ("data", "created_utc"), 10**400, id="reddit-400-digits"),
        pytest.param("reddit", "mentions", ("data", "created_utc"), float("inf"), id="reddit-infinity"),
        # A megabyte of "<" took minutes to strip of tags.
        pytest.param("mastodon", "own", ("content",), "<" * MEGABYTE, id="mastodon-megabyte-of-lt"),
        # An item that is no object failed its whole page.
        pytest.param("x", "own", (), None, id="x-null-item"),
        pytest.param("bluesky", "mentions", (), 7, id="bluesky-number-item"),
        pytest.param("bluesky", "own", (), "item", id="bluesky-string-item"),
        pytest.param("reddit", "mentions", (), [{"kind": "t1"}], id="reddit-list-item"),
    ],
)
def test_a_damaged_item_is_rejected_alone(
    server: HTTPServer, name: str, stream: str, path: tuple[str, ...], value: Any
) -> None:
    # Given one damaged item among good ones
    served = one_broken(name, stream, lambda item: put(item, path, value) if path else value)

    # When the source is polled, Then it completes in time with the damaged item rejected and the rest stored
    started = datetime.now()
    check_network_poll(server, PLATFORMS[name], served, page_size=2, fault=None)
    assert datetime.now() - started < timedelta(seconds=10)


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b"1" * 5_000], ids=["deep", "long number"])
def test_a_page_json_cannot_read_is_a_malformed_page(server: HTTPServer, body: bytes) -> None:
    # Given the second page of mentions answering JSON that Python's parser refuses (RecursionError, ValueError)
    served = one_broken("x", "mentions")
    fault = PageFault(stream="mentions", page=1, status=200, body=body)

    # When polled, Then the poll ends with MalformedResponse after the first page, and a rerun completes
    check_network_poll(server, PLATFORMS["x"], served, page_size=1, fault=fault)


def test_jsonl_lines_too_deep_or_with_too_long_numbers_are_rejected_lines(
    exports: Callable[[str, bytes], Path],
) -> None:
    good = json.dumps(
        {"channel": "x", "id": "1", "author": "a", "author_role": "customer", "created_at": NOW.isoformat()}
    )
    lines: list[Expected | None] = [Expected("1", "", NOW), None, None]
    content = "\n".join([good, "[" * 100_000, "1" * 5_000]).encode()

    check_replay(exports(".jsonl", content), lines, page_size=2, unreadable=False)


def test_an_export_that_is_not_utf8_is_refused_as_malformed(exports: Callable[[str, bytes], Path]) -> None:
    content = b'{"channel": "x", "id": "1"}\n\xe9t\xe9\n'

    check_replay(exports(".jsonl", content), [None], page_size=2, unreadable=True)


def test_a_twcs_field_longer_than_csv_reads_refuses_the_export(exports: Callable[[str, bytes], Path]) -> None:
    # A stray quote makes the rest of a file one field: past the CSV reader's limit, csv.Error escaped the poll
    content = ",".join(TWCS_COLUMNS).encode() + b'\n1,2,True,"' + b"a" * 200_000 + b"\n"

    check_replay(exports(".csv", content), [None], page_size=2, unreadable=True)
