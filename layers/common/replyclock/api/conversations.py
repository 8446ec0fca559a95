"""GET /conversations (a brand's conversations, newest first, paginated) and GET /conversations/{channel}/{id}.

The list reads the ConversationsByBrand index (first-wait start time) within the window.
Its cursor is opaque to clients: base64url of the query it continues and DynamoDB's
start key. A cursor is checked against the request before use, so a tampered or
mismatched one is a 400, never a failed DynamoDB call.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, ValidationError

from replyclock.api.access import current_access
from replyclock.api.brands import require_known_brand
from replyclock.api.dependencies import Now, SettingsDependency, StoresDependency
from replyclock.api.errors import BadRequest, NotFound, route_responses
from replyclock.api.parameters import BrandQuery, ChannelQuery, FromQuery, StatusQuery, ToQuery
from replyclock.api.routing import new_router
from replyclock.dal.conversations import ConversationItems, check_brand_index_key, state_key
from replyclock.logic.metrics import TimeWindow, WindowError, requested_window
from replyclock.models.api import (
    BrandWaits,
    ConversationDetail,
    ConversationItem,
    ConversationPage,
    DeletedPostResponse,
    PostOut,
    WaitOut,
)
from replyclock.models.domain import Channel, ConversationState, Post, PostDeletion, Wait, WaitStatus

router = new_router()
MAX_CURSOR_LENGTH = 4096
# A thread can grow without bound (replies to a viral post); the detail lists its latest posts only.
MAX_POSTS = 1000
_CURSOR_VERSION = 1


class Cursor(BaseModel):
    """What a next_cursor encodes: the query it continues and where to resume."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int
    brand: str
    channel: str | None
    status: WaitStatus | None
    start: datetime
    end: datetime
    key: dict[str, str]

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        invalid = BadRequest("cursor is not one this API issued; start again without it", "cursor")
        if len(token) > MAX_CURSOR_LENGTH:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            cursor = cls.model_validate(json.loads(raw))
        except (binascii.Error, ValueError, ValidationError) as error:
            raise invalid from error
        if cursor.v != _CURSOR_VERSION or cursor.start.tzinfo is None or cursor.end.tzinfo is None:
            raise invalid
        return cursor


def wait_out(wait: Wait) -> WaitOut:
    return WaitOut(
        kind=wait.kind,
        status=wait.status,
        priority=wait.priority,
        start_post_id=wait.start_post_id,
        started_at=wait.started_at,
        end_post_id=wait.end_post_id,
        ended_at=wait.ended_at,
        calendar_seconds=wait.calendar_seconds,
        business_seconds=wait.business_seconds,
        policy_version=wait.policy_version,
        clock=wait.clock,
        target_seconds=wait.target_seconds,
        due_at=wait.due_at,
        at_risk_at=wait.at_risk_at,
    )


def conversation_item(state: ConversationState, waits: list[Wait]) -> ConversationItem:
    return ConversationItem(
        channel=state.channel,
        conversation_id=state.conversation_id,
        brand_id=state.brand_id,
        customer=state.customer,
        status=state.status,
        started_at=state.first_started_at,
        version=state.version,
        waits=[wait_out(wait) for wait in waits],
    )


def post_out(post: Post) -> PostOut:
    return PostOut(
        id=post.id,
        channel=post.channel,
        author=post.author,
        author_role=post.author_role,
        brand_id=post.brand_id,
        created_at=post.created_at,
        text=post.text,
        url=post.url,
        in_reply_to=post.in_reply_to,
        mentions=list(post.mentions),
    )


def continued_window(cursor: Cursor, start: datetime | None, end: datetime | None, max_days: int) -> TimeWindow:
    """The cursor's window, which an explicit from/to must repeat (a default window would move with the clock)."""
    try:
        window = requested_window(cursor.end, cursor.start, cursor.end, max_days=max_days)
    except WindowError as error:
        raise BadRequest("cursor is not one this API issued; start again without it", "cursor") from error
    for name, given, expected in (("from", start, window.start), ("to", end, window.end)):
        if given is not None and given != expected:
            raise BadRequest(f"{name} differs from the query this cursor continues", name)
    return window


@router.get(
    "/conversations",
    summary="A brand's conversations, newest first",
    description="Conversations whose first wait started in [from, to) (default: the last 7 days), newest "
    "first. Channel and status filter the page; a page may hold fewer than `limit` items while "
    "`next_cursor` is set: follow it until it is null.",
    responses=route_responses(400, 404),
    tags=["conversations"],
)
def list_conversations(
    brand: BrandQuery,
    now: Now,
    settings: SettingsDependency,
    stores: StoresDependency,
    channel: ChannelQuery = None,
    status: StatusQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Most items per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page.")
    ] = None,
) -> ConversationPage:
    start_key = None
    if cursor is None:
        window = requested_window(now, from_, to, max_days=settings.max_window_days)
    else:
        decoded = Cursor.decode(cursor)
        if (decoded.brand, decoded.channel, decoded.status) != (brand, channel, status):
            raise BadRequest("brand, channel and status must repeat the query this cursor continues", "cursor")
        window = continued_window(decoded, from_, to, settings.max_window_days)
        try:
            start_key = check_brand_index_key(decoded.key, brand, window.start, window.end)
        except ValueError as error:
            raise BadRequest("cursor is not one this API issued; start again without it", "cursor") from error
    require_known_brand(stores, brand)
    states, resume_key = stores.conversations.by_brand(
        brand, window.start, window.end, channel=channel, status=status, limit=limit, start_key=start_key
    )
    waits = stores.conversations.lane_waits(states)
    keyed = [(state, state_key(state)) for state in states]
    next_cursor = None
    if resume_key is not None:
        next_cursor = Cursor(
            v=_CURSOR_VERSION,
            brand=brand,
            channel=channel,
            status=status,
            start=window.start,
            end=window.end,
            key=resume_key,
        ).encode()
    return ConversationPage(
        brand=brand,
        from_=window.start,
        to=window.end,
        items=[conversation_item(state, waits[(key["pk"], key["sk"])]) for state, key in keyed],
        next_cursor=next_cursor,
    )


def _brands_in(stored: ConversationItems) -> set[str]:
    return {lane.brand_id for lane in stored.lanes.values()} | {post.brand_id for post in stored.posts if post.brand_id}


def _decoded_id(raw: str, name: str) -> str:
    # The resolver matches the raw (still percent-encoded) path.
    decoded = unquote(raw)
    if not 1 <= len(decoded) <= 512:
        raise BadRequest(f"{name} must be 1 to 512 characters", name)
    return decoded


@router.get(
    "/conversations/<channel>/<conversation_id>",
    summary="A conversation's posts and each brand's waits in it",
    description="`conversation_id` is the id of the conversation's root post; percent-encode it (a '/' as %2F).",
    responses=route_responses(400, 404),
    tags=["conversations"],
)
def get_conversation(
    channel: Annotated[Channel, Path(description="The channel slug.")],
    conversation_id: Annotated[str, Path(max_length=2048, description="The root post's id, percent-encoded.")],
    stores: StoresDependency,
) -> ConversationDetail:
    decoded_id = _decoded_id(conversation_id, "conversation_id")
    stored = stores.conversations.load(channel, decoded_id)
    access = current_access()
    # A caller limited to some brands sees a conversation only when one of them is in it (a wait, or a
    # post of the brand), and only those brands' waits: otherwise it does not exist for them (404).
    visible = access.everything or any(access.may_read(brand_id) for brand_id in _brands_in(stored))
    if (not stored.posts and not stored.lanes) or not visible:
        raise NotFound(f"no conversation {decoded_id!r} on {channel}", "conversation_id")
    ordered = sorted(stored.posts, key=lambda post: post.sort_key)
    lanes = [lane for _, lane in sorted(stored.lanes.items()) if lane.waits and access.may_read(lane.brand_id)]
    return ConversationDetail(
        channel=channel,
        conversation_id=decoded_id,
        posts=[post_out(post) for post in ordered[-MAX_POSTS:]],
        posts_truncated=len(ordered) > MAX_POSTS,
        brands=[
            BrandWaits(
                brand_id=lane.brand_id,
                customer=lane.customer,
                status=lane.status,
                version=lane.version,
                waits=[wait_out(wait) for wait in stored.waits_of(lane)],
            )
            for lane in lanes
        ],
    )


@router.delete(
    "/conversations/<channel>/<conversation_id>/posts/<post_id>",
    summary="Remove a post deleted upstream, and measure its thread again without it",
    description="For a post the network no longer shows (or that should never have been counted). A deleted "
    "mention's wait disappears; a deleted answer reopens the wait it closed. The post stays deleted: a later "
    "poll or export replay does not store it again. Needs the admin scope.",
    responses=route_responses(400, 404),
    tags=["conversations"],
)
def delete_post(
    channel: Annotated[Channel, Path(description="The channel slug.")],
    conversation_id: Annotated[str, Path(max_length=2048, description="The root post's id, percent-encoded.")],
    post_id: Annotated[str, Path(max_length=2048, description="The post's id, percent-encoded.")],
    stores: StoresDependency,
    now: Now,
) -> DeletedPostResponse:
    deletion = PostDeletion(
        channel=channel,
        id=_decoded_id(post_id, "post_id"),
        conversation_id=_decoded_id(conversation_id, "conversation_id"),
    )
    if not stores.posts.delete(deletion, now):
        raise NotFound(f"no post {deletion.id!r} in conversation {deletion.conversation_id!r} on {channel}", "post_id")
    return DeletedPostResponse(
        channel=channel, conversation_id=str(deletion.conversation_id), post_id=deletion.id, deleted_at=now
    )
