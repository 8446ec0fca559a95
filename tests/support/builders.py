"""Small builders that keep test conversations readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
