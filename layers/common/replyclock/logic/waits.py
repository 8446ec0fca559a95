"""Waits: a pure function from one conversation's posts and a brand to its waits.

Per (conversation, brand), with the posts sorted by (created_at, id), a wait starts
at the first customer post addressed to the brand after the brand last spoke and
ends at the brand's next post (auto-replies do not end it). A customer post is
addressed to the brand when it mentions one of the brand's handles, replies to a
post of the brand, or the brand has posted earlier in the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from replyclock.logic.business_time import add_business_seconds, business_seconds
from replyclock.logic.priority import classify
from replyclock.models.domain import AuthorRole, Brand, Clock, Post, SLAPolicy, Wait, WaitKind, WaitStatus

# Statuses the sweeper sets on an open wait; time only moves forward, so a later
# recomputation of the same open wait must not undo them.
_SWEEPER_STATUSES = (WaitStatus.AT_RISK, WaitStatus.BREACHED)


def ordered_posts(posts: Iterable[Post]) -> list[Post]:
    """Distinct posts (by id) in conversation order."""
    distinct = {post.id: post for post in posts}
    return sorted(distinct.values(), key=lambda post: post.sort_key)


def brands_in_conversation(posts: Iterable[Post], brand_for_handle: Callable[[str, str], str | None]) -> set[str]:
    """Brands that spoke in the conversation or were mentioned by handle on its channel."""
    brand_ids: set[str] = set()
    for post in posts:
        if post.brand_id:
            brand_ids.add(post.brand_id)
        for handle in post.mentions:
            brand_id = brand_for_handle(post.channel, handle)
            if brand_id:
                brand_ids.add(brand_id)
    return brand_ids


def compute_waits(posts: Iterable[Post], brand: Brand) -> list[Wait]:
    """All waits of one brand in one conversation, oldest first."""
    conversation = ordered_posts(posts)
    brand_post_ids = {post.id for post in conversation if post.brand_id == brand.id}
    auto_reply = _auto_reply_matcher(brand)
    waits: list[Wait] = []
    brand_has_posted = False
    waiting_since: Post | None = None
    for post in conversation:
        if post.brand_id == brand.id:
            brand_has_posted = True
            if waiting_since is not None and not auto_reply(post.text):
                waits.append(_measure(waiting_since, post, brand, kind=_kind(waits)))
                waiting_since = None
        elif waiting_since is None and post.author_role is AuthorRole.CUSTOMER:
            if brand_has_posted or post.in_reply_to in brand_post_ids or _mentions_brand(post, brand):
                waiting_since = post
    if waiting_since is not None:
        waits.append(_measure(waiting_since, None, brand, kind=_kind(waits)))
    return waits


def carry_over_sweeper_statuses(new_waits: list[Wait], previous_waits: Iterable[Wait]) -> list[Wait]:
    """Keep the at-risk/breached marks the sweeper put on a wait that is still open and still due then."""
    marked = {
        (wait.start_post_id, wait.due_at): wait.status
        for wait in previous_waits
        if wait.is_open and wait.status in _SWEEPER_STATUSES
    }
    kept: list[Wait] = []
    for wait in new_waits:
        status = marked.get((wait.start_post_id, wait.due_at)) if wait.is_open else None
        kept.append(wait.model_copy(update={"status": status}) if status else wait)
    return kept


def _kind(earlier_waits: list[Wait]) -> WaitKind:
    return WaitKind.NEXT if earlier_waits else WaitKind.FIRST


def _mentions_brand(post: Post, brand: Brand) -> bool:
    return not brand.handles_on(post.channel).isdisjoint(post.mentions)


def _auto_reply_matcher(brand: Brand) -> Callable[[str], bool]:
    if not brand.auto_reply_patterns:
        return lambda text: False
    pattern = re.compile("|".join(f"(?:{pattern})" for pattern in brand.auto_reply_patterns), re.IGNORECASE)
    return lambda text: pattern.search(text) is not None


def due_moment(started_at: datetime, seconds: float, policy: SLAPolicy, brand: Brand) -> datetime:
    """The moment `seconds` of the policy's clock have elapsed since `started_at`."""
    if policy.clock is Clock.BUSINESS:
        return add_business_seconds(started_at, seconds, brand.calendar)
    return started_at + timedelta(seconds=seconds)


def _measure(start: Post, end: Post | None, brand: Brand, kind: WaitKind) -> Wait:
    priority = classify(start, brand)
    policy = brand.policy_at(start.created_at)
    target = policy.target_seconds(priority, start.channel)
    calendar_seconds = business = None
    status = WaitStatus.PENDING
    if end is not None:
        calendar_seconds = (end.created_at - start.created_at).total_seconds()
        business = business_seconds(start.created_at, end.created_at, brand.calendar)
        elapsed = business if policy.clock is Clock.BUSINESS else calendar_seconds
        status = WaitStatus.MET if elapsed <= target else WaitStatus.BREACHED
    return Wait(
        kind=kind,
        brand_id=brand.id,
        channel=start.channel,
        conversation_id=start.conversation_id,
        start_post_id=start.id,
        started_at=start.created_at,
        end_post_id=end.id if end else None,
        ended_at=end.created_at if end else None,
        calendar_seconds=calendar_seconds,
        business_seconds=business,
        priority=priority,
        policy_version=policy.version,
        clock=policy.clock,
        target_seconds=target,
        due_at=due_moment(start.created_at, target, policy, brand),
        at_risk_at=due_moment(start.created_at, target * policy.at_risk_fraction, policy, brand),
        status=status,
    )
