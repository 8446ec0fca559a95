"""The Kaggle "Customer Support on Twitter" (twcs) CSV export as domain posts.

Columns: tweet_id, author_id, inbound, created_at, text, response_tweet_id,
in_response_to_tweet_id. Inbound rows are customers; the others are brands, whose
author_id (a screen name) is both the brand id and its handle. Conversation roots
follow in_response_to_tweet_id inside the file; a parent missing from the file
stands as the root.
"""

from __future__ import annotations

import calendar
import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from replyclock.models.domain import AuthorRole, Post

CHANNEL = "x"
COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
)
_MENTION = re.compile(r"(?<![\w@])@(\w{1,50})")
_CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"


_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = frozenset(calendar.day_abbr)
# "Tue Oct 31 22:10:47 +0000 2017": where each separator is.
_SEPARATORS = ((3, " "), (7, " "), (10, " "), (13, ":"), (16, ":"), (19, " "), (25, " "))


def twitter_time(text: str) -> datetime:
    """A time as X's v1 API and twcs write it ("Tue Oct 31 22:10:47 +0000 2017").

    Read by position rather than with strptime, which was a quarter of a large backtest's time;
    anything else goes to strptime, whose error is the one a user sees.
    """
    value = text.strip()
    digits = (value[8:10], value[11:13], value[14:16], value[17:19], value[21:25], value[26:30])
    if (
        len(value) == 30
        and all(value[position] == separator for position, separator in _SEPARATORS)
        and value[:3] in _WEEKDAYS
        and value[4:7] in _MONTHS
        and value[20] in "+-"
        and all(part.isascii() and part.isdigit() for part in digits)
    ):
        day, hour, minute, second, offset, year = (int(part) for part in digits)
        zone = timedelta(hours=offset // 100, minutes=offset % 100) * (-1 if value[20] == "-" else 1)
        try:
            return datetime(year, _MONTHS[value[4:7]], day, hour, minute, second, tzinfo=timezone(zone))
        except ValueError:
            pass
    return datetime.strptime(value, _CREATED_AT_FORMAT)


class TwcsRow(BaseModel):
    """One CSV row, validated."""

    model_config = ConfigDict(frozen=True)

    tweet_id: str = Field(pattern=r"^\d+$")
    author_id: str = Field(min_length=1, max_length=256)
    inbound: bool
    created_at: datetime
    text: str = ""
    in_response_to_tweet_id: str | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _twitter_time(cls, value: object) -> object:
        if isinstance(value, str):
            return twitter_time(value)
        return value

    @field_validator("in_response_to_tweet_id", mode="before")
    @classmethod
    def _blank_or_integer(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        # pandas re-saves write integer ids as floats ("3.0").
        return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class RejectedRow:
    line: int
    field: str
    reason: str


def read_rows(stream: TextIO) -> Iterator[TwcsRow | RejectedRow]:
    """Rows of a twcs file in file order; a row that does not validate comes back as a RejectedRow."""
    reader = csv.DictReader(stream)
    missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"not a twcs file: missing columns {', '.join(missing)}")
    for raw in reader:
        try:
            yield TwcsRow.model_validate({column: raw.get(column) for column in COLUMNS if column in raw})
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "row"
            yield RejectedRow(line=reader.line_num, field=field, reason=first["msg"])


def conversation_roots(rows: Iterable[TwcsRow]) -> dict[str, str]:
    """Root tweet id of every row's conversation, following reply chains inside the file."""
    return roots_from_parents({row.tweet_id: row.in_response_to_tweet_id for row in rows})


def roots_from_parents(parent: Mapping[str, str | None]) -> dict[str, str]:
    """Root of every id given each id's parent (None for a root); the replay of JSONL exports uses it too."""
    roots: dict[str, str] = {}
    for tweet_id in parent:
        chain = []
        current = tweet_id
        while current not in roots:
            chain.append(current)
            up = parent[current]
            if up is None or up in chain or up not in parent:
                # No parent, a parent outside the file, or a cycle: this is as far up as the file goes.
                roots[current] = up if up is not None and up not in parent else current
                break
            current = up
        root = roots[current]
        for member in chain:
            roots[member] = root
    return roots


def to_post(row: TwcsRow, root: str) -> Post:
    is_brand = not row.inbound
    return Post(
        channel=CHANNEL,
        id=row.tweet_id,
        author=row.author_id,
        author_role=AuthorRole.BRAND if is_brand else AuthorRole.CUSTOMER,
        brand_id=row.author_id if is_brand else None,
        created_at=row.created_at,
        text=row.text,
        url=f"https://twitter.com/i/web/status/{row.tweet_id}",
        in_reply_to=row.in_response_to_tweet_id,
        conversation_id=root,
        mentions=tuple(_MENTION.findall(row.text)),
    )


def posts_from_rows(rows: list[TwcsRow]) -> list[Post]:
    roots = conversation_roots(rows)
    return [to_post(row, roots[row.tweet_id]) for row in rows]
