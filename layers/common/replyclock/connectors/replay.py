"""Export replay: a twcs CSV (replyclock.connectors.twcs) or a JSONL file of posts, in pages.

This is how a team backfills history or backtests a policy. The whole file is read (roots
are resolved from in_reply_to chains inside it), then handed out in pages of PAGE_SIZE
entries in file order. The cursor is the file's fingerprint and the offset reached, so a
poll that stops early resumes there, a finished file is not read again, and a changed
file (new fingerprint) is replayed from the start; posts already stored are not rewritten.

JSONL lines are normalized posts (replyclock.models.domain.Post as JSON); a line without
conversation_id gets the root of its in_reply_to chain inside the file. A line
{"delete": {"channel": "x", "id": "123"}} says that post was deleted upstream: it is removed
(wherever an export stored it) once the posts of its page are stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from replyclock.connectors import twcs
from replyclock.connectors.base import Cursor, Page, Rejected, rejected_from
from replyclock.connectors.http import ConnectorError
from replyclock.models.domain import Post, PostDeletion
from replyclock.models.sources import Source

PAGE_SIZE = 500

Entry = Post | PostDeletion | Rejected


class MalformedExport(ConnectorError):
    """The file as a whole is not a twcs CSV or a JSONL export."""


@dataclass(frozen=True)
class Export:
    # Changes whenever the content may have changed (S3 ETag and version, or size and mtime).
    fingerprint: str
    text: str


class ReplayCursor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    fingerprint: str | None = None
    offset: int = Field(default=0, ge=0)
    done: bool = False


class ReplayConnector:
    def __init__(self, source: Source, read_export: Callable[[], Export], page_size: int = PAGE_SIZE) -> None:
        self.source = source
        self._read_export = read_export
        self._page_size = page_size

    def pages(self, cursor: Cursor) -> Generator[Page]:
        state = ReplayCursor.model_validate(cursor or {})
        export = self._read_export()
        if state.fingerprint != export.fingerprint:
            state = ReplayCursor(fingerprint=export.fingerprint)
        if state.done:
            return
        entries = twcs_entries(export.text) if self.source.export_format == "twcs" else jsonl_entries(export.text)
        start = min(state.offset, len(entries))
        while True:
            end = min(start + self._page_size, len(entries))
            chunk = entries[start:end]
            following = ReplayCursor(fingerprint=export.fingerprint, offset=end, done=end >= len(entries))
            yield Page(
                posts=tuple(entry for entry in chunk if isinstance(entry, Post)),
                cursor=following.model_dump(),
                rejected=tuple(entry for entry in chunk if isinstance(entry, Rejected)),
                deleted=tuple(entry for entry in chunk if isinstance(entry, PostDeletion)),
            )
            if following.done:
                return
            start = end


def twcs_entries(text: str) -> list[Entry]:
    try:
        rows = list(twcs.read_rows(io.StringIO(text, newline="")))
    except (ValueError, csv.Error) as error:
        # csv.Error: a field past the CSV reader's limit, as when a stray quote swallows the rest of the file.
        raise MalformedExport(str(error)) from None
    roots = twcs.conversation_roots(row for row in rows if isinstance(row, twcs.TwcsRow))
    entries: list[Entry] = []
    for row in rows:
        if isinstance(row, twcs.RejectedRow):
            entries.append(Rejected(field=row.field, reason=row.reason, item_id=f"line {row.line}"))
            continue
        try:
            entries.append(twcs.to_post(row, roots[row.tweet_id]))
        except ValidationError as error:
            entries.append(rejected_from(error, {"id": row.tweet_id}))
    return entries


def jsonl_entries(text: str) -> list[Entry]:
    # Split on "\n" only: JSON strings may hold U+2028 and friends, which str.splitlines would cut at.
    parsed: list[tuple[int, dict[str, object] | Rejected]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as error:
            # Besides JSONDecodeError, json.loads fails on integers past Python's digit limit and on deep nesting.
            reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            parsed.append((number, Rejected(field="line", reason=f"not JSON: {reason}", item_id=f"line {number}")))
            continue
        if not isinstance(value, dict):
            parsed.append((number, Rejected(field="line", reason="not a JSON object", item_id=f"line {number}")))
            continue
        parsed.append((number, value))
    roots = _roots_of_lines(value for _, value in parsed if isinstance(value, dict) and "delete" not in value)
    entries: list[Entry] = []
    for number, value in parsed:
        if isinstance(value, Rejected):
            entries.append(value)
            continue
        if "delete" in value:
            entries.append(_deletion(value, number))
            continue
        if not value.get("conversation_id") and isinstance(value.get("id"), str):
            value = {**value, "conversation_id": roots.get(str(value["id"]))}
        try:
            entries.append(Post.model_validate(value))
        except ValidationError as error:
            rejected = rejected_from(error, value)
            entries.append(Rejected(field=rejected.field, reason=rejected.reason, item_id=f"line {number}"))
    return entries


def _deletion(line: dict[str, object], number: int) -> PostDeletion | Rejected:
    if set(line) != {"delete"}:
        return Rejected(field="delete", reason='a delete line holds only {"delete": {...}}', item_id=f"line {number}")
    try:
        return PostDeletion.model_validate(line["delete"])
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(["delete", *(str(part) for part in first["loc"])])
        return Rejected(field=field, reason=first["msg"], item_id=f"line {number}")


def _roots_of_lines(lines: Iterable[dict[str, object]]) -> dict[str, str]:
    parents = {
        str(line["id"]): str(line["in_reply_to"]) if line.get("in_reply_to") else None
        for line in lines
        if isinstance(line.get("id"), str)
    }
    return twcs.roots_from_parents(parents)
