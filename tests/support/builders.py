"""Small builders that keep test conversations readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from replyclock.models.domain import AuthorRole, Post

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday


def at(minutes: float, start: datetime = T0) -> datetime:
    return start + timedelta(minutes=minutes)


def customer(
    post_id: str,
    minute: float,
    text: str = "@acme help",
    *,
    reply_to: str | None = None,
    conversation: str = "c1",
    author: str = "alice",
    start: datetime = T0,
    channel: str = "x",
    reach: int | None = None,
) -> Post:
    return Post(
        channel=channel,
        id=post_id,
        author=author,
        author_role=AuthorRole.CUSTOMER,
        created_at=at(minute, start),
        text=text,
        in_reply_to=reply_to,
        conversation_id=conversation,
        mentions=tuple(word[1:] for word in text.split() if word.startswith("@")),
        author_reach=reach,
    )


def brand(
    post_id: str,
    minute: float,
    text: str = "@alice we're on it",
    *,
    brand_id: str = "acme",
    reply_to: str | None = None,
    conversation: str = "c1",
    start: datetime = T0,
    channel: str = "x",
) -> Post:
    return Post(
        channel=channel,
        id=post_id,
        author=brand_id,
        author_role=AuthorRole.BRAND,
        brand_id=brand_id,
        created_at=at(minute, start),
        text=text,
        in_reply_to=reply_to,
        conversation_id=conversation,
        mentions=tuple(word[1:] for word in text.split() if word.startswith("@")),
    )


def export_line(post_id: str, author: str, at: datetime, text: str, reply_to: str | None = None) -> dict[str, Any]:
    """One line of a JSONL export on x for brand acme (handle acmehelp): a customer mentioning it, or its reply."""
    brand = author == "acmehelp"
    line: dict[str, Any] = {
        "channel": "x",
        "id": post_id,
        "author": author,
        "author_role": "brand" if brand else "customer",
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "text": text,
    }
    if brand:
        line["brand_id"] = "acme"
    else:
        line["mentions"] = ["acmehelp"]
    if reply_to:
        line["in_reply_to"] = reply_to
    return line
