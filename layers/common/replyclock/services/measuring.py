"""measure: turn newly stored (or removed) posts into lanes, one per (conversation, brand, customer).

Two ways, one fold (replyclock.logic.waits.BrandFold):

- **Incrementally**, when one post is new to its conversation and provably later than everything
  that touched the lanes it changes: read the conversation head, the post's parent and those
  lanes by key, apply the post, write the lanes it changed. Its cost does not depend on how long
  the thread is.
- **Whole**, otherwise (a late post, a brand's first post, a reply whose parent claims a later
  time, a parent that arrives after its replies, a removed post, several posts of one
  conversation in one batch, a lost race): read the conversation, fold it, write the difference.

Both leave the stored lanes equal to the pure fold of the stored posts, whatever the order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from replyclock.dal.conversations import (
    MAX_AWAITED_PARENTS,
    ConversationItems,
    ConversationStore,
    Head,
    effective_key,
    head_key,
    lane_key,
    post_item_key,
)
from replyclock.dal.table import ConditionFailed
from replyclock.logic.recovery import outcome_of
from replyclock.logic.waits import (
    BrandFacts,
    BrandFold,
    Lane,
    Placed,
    brands_in_conversation,
    customer_of,
    fold_conversation,
    keep_sweeper_status,
    order_key,
    placed_conversation,
    speaker_of,
)
from replyclock.models.domain import Brand, ConversationState, Post, Wait, WaitStatus, public_channel
from replyclock.models.records import PostRecord

# Concurrent writers of one conversation are rare (one shard, one sweeper); a few tries settle any race.
MAX_ATTEMPTS = 5


class BrandDirectory:
    """The configured brands, plus a default for a brand seen in data but not configured yet."""

    def __init__(self, brands: Mapping[str, Brand], default_for: Callable[[str], Brand]) -> None:
        self._brands = dict(brands)
        self._default_for = default_for
        self._ids_by_handle = {
            (channel, handle): brand.id
            for brand in self._brands.values()
            for channel, handles in brand.handles.items()
            for handle in handles
        }
        self._ids_by_own_id = {brand.id.lower(): brand.id for brand in self._brands.values()}

    def brand_for_handle(self, channel: str, handle: str) -> str | None:
        """The configured brand behind a handle; a brand without handles on a channel answers to its id."""
        # A direct-mentions channel (`mastodon-dm`) answers to the handles of its public one.
        public = public_channel(channel)
        configured = self._ids_by_handle.get((channel, handle)) or self._ids_by_handle.get((public, handle))
        if configured:
            return configured
        brand_id = self._ids_by_own_id.get(handle)
        handles = self._brands[brand_id].handles if brand_id else {}
        if brand_id and not (handles.get(channel) or handles.get(public)):
            return brand_id
        return None

    def get(self, brand_id: str) -> Brand:
        return self._brands.get(brand_id) or self._default_for(brand_id)


@dataclass
class MeasureOutcome:
    """What measuring changed: the lanes and archived waits written and the waits that newly closed."""

    written: list[ConversationState] = field(default_factory=list)
    newly_closed: list[Wait] = field(default_factory=list)
    # (customer, start post) of newly closed waits whose breach the sweeper reported while they were open.
    breach_already_reported: set[tuple[str, str]] = field(default_factory=set)
    # Answered waits that started negative whose customer has now posted again (logic.recovery).
    newly_followed_up: list[Wait] = field(default_factory=list)
    whole: bool = False


class NeedsWhole(Exception):
    """The post cannot be applied on its own: measure the whole conversation."""


def measure_conversation(
    store: ConversationStore,
    brands: BrandDirectory,
    channel: str,
    conversation_id: str,
    new_post_ids: Iterable[str] = (),
) -> MeasureOutcome:
    """Bring a conversation's lanes up to date with its stored posts.

    With exactly one new post, try the incremental way first; otherwise (or when it cannot) fold
    the whole conversation.
    """
    new = sorted(set(new_post_ids))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            if len(new) == 1 and attempt == 1:
                try:
                    return _measure_one(store, brands, channel, conversation_id, new[0])
                except NeedsWhole:
                    pass
            return _measure_whole(store, brands, channel, conversation_id)
        except ConditionFailed:
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _lane_from_state(state: ConversationState | None, customer: str) -> Lane:
    if state is None:
        return Lane(customer)
    return Lane(
        customer=customer,
        wait_count=state.wait_count,
        last_key=state.last_key,
        first_started_at=state.first_started_at,
        current=state.waits[-1] if state.waits else None,
    )


def _placed(post: Post, items: ConversationItems, brands: BrandDirectory) -> Placed:
    effective_at = items.effective.get(post.id, post.created_at)
    return Placed(post, effective_at, order_key(effective_at, post.id), speaker_of(post, brands.brand_for_handle))


def _measure_one(
    store: ConversationStore, brands: BrandDirectory, channel: str, conversation_id: str, post_id: str
) -> MeasureOutcome:
    first = store.get_many([head_key(channel, conversation_id), post_item_key(channel, conversation_id, post_id)])
    post = next((stored for stored in first.posts if stored.id == post_id), None)
    head = first.head or Head()
    if post is None or post.id in head.awaited:
        raise NeedsWhole
    speaker = speaker_of(post, brands.brand_for_handle)
    keys = []
    if post.in_reply_to:
        keys += [
            post_item_key(channel, conversation_id, post.in_reply_to),
            effective_key(channel, conversation_id, post.in_reply_to),
        ]
    if speaker is None:
        customer = customer_of(post)
        mentioned = {brands.brand_for_handle(channel, handle) for handle in post.mentions}
        candidates = sorted({brand_id for brand_id in mentioned if brand_id} | set(head.brands))
        keys += [lane_key(channel, conversation_id, brand_id, customer) for brand_id in candidates]
    else:
        candidates = [speaker]
        keys += [
            lane_key(channel, conversation_id, speaker, handle)
            for handle in post.mentions
            if brands.brand_for_handle(channel, handle) is None
        ]
    found = store.get_many(keys)
    parent_post = next((stored for stored in found.posts if stored.id == post.in_reply_to), None)
    parent = _placed(parent_post, found, brands) if parent_post else None
    effective_at = max(post.created_at, parent.effective_at) if parent else post.created_at
    if effective_at != post.created_at:
        raise NeedsWhole
    placed = Placed(post, effective_at, order_key(effective_at, post.id), speaker)
    new_head = Head(brands=dict(head.brands), awaited=set(head.awaited), version=head.version)
    if post.in_reply_to and parent is None:
        new_head.awaited.add(post.in_reply_to)
        if len(new_head.awaited) > MAX_AWAITED_PARENTS:
            raise NeedsWhole
    stored_lanes = dict(found.lanes)
    changed: dict[tuple[str, str], Lane] = {}
    for brand_id in candidates:
        facts = head.brands.get(brand_id, BrandFacts())
        if speaker == brand_id and (facts.first_key is None or placed.key < facts.first_key):
            # A brand's first post makes every later customer post of the conversation addressed to it.
            raise NeedsWhole
        if speaker == brand_id and facts.broadcast_key is not None and placed.key < facts.broadcast_key:
            # Earlier than the brand's last answer to everyone (a late post, or a redelivery after a whole fold
            # that saw a later one): applied here, it would move that answer back and leave later customer posts
            # measured as if nobody had answered them.
            raise NeedsWhole
        fold = BrandFold(brands.get(brand_id), brands.brand_for_handle, facts=replace(facts))
        if speaker is None:
            if not fold.addresses(placed, parent):
                continue
            if facts.broadcast_key is not None and facts.broadcast_key > placed.key:
                raise NeedsWhole
            involved = [customer_of(post)]
        elif fold.is_broadcast(placed, parent):
            for state in store.lanes_of_brand(channel, conversation_id, brand_id):
                stored_lanes[(brand_id, state.customer)] = state
            involved = [customer for (owner, customer) in stored_lanes if owner == brand_id]
        else:
            involved = sorted(fold.answered(placed, parent) or ())
            missing = [c for c in involved if (brand_id, c) not in stored_lanes]
            if missing:
                more = store.get_many(lane_key(channel, conversation_id, brand_id, c) for c in missing)
                stored_lanes.update(more.lanes)
        fold.lanes.update(
            {customer: _lane_from_state(stored_lanes.get((brand_id, customer)), customer) for customer in involved}
        )
        if any(lane.last_key is not None and lane.last_key > placed.key for lane in fold.lanes.values()):
            raise NeedsWhole
        touched = fold.apply(placed, parent)
        for customer in touched:
            if customer in fold.lanes:
                changed[(brand_id, customer)] = fold.lanes[customer]
        if fold.facts != facts:
            new_head.brands[brand_id] = fold.facts
    outcome = MeasureOutcome()
    for (brand_id, customer), lane in sorted(changed.items()):
        previous = stored_lanes.get((brand_id, customer))
        _note_followed_up(outcome, previous.waits if previous else [], lane.waits())
        for number, wait in enumerate(lane.superseded, start=lane.wait_count - len(lane.superseded)):
            archived = ConversationState(
                channel=channel,
                conversation_id=conversation_id,
                brand_id=brand_id,
                customer=customer,
                seq=number,
                version=0,
                waits=[wait],
            )
            try:
                outcome.written.append(store.archive(archived))
            except ConditionFailed:
                raise NeedsWhole from None
        state = _lane_state(channel, conversation_id, brand_id, lane, [lane.current] if lane.current else [])
        if previous is not None and state.same_content(previous):
            continue
        outcome.written.append(store.save(state, previous.version if previous else None))
        _note_closed(outcome, previous.waits if previous else [], state.waits)
    if not new_head.same_content(head):
        store.save_head(channel, conversation_id, new_head, first.head.version if first.head else None)
    return outcome


def _lane_state(channel: str, conversation_id: str, brand_id: str, lane: Lane, waits: list[Wait]) -> ConversationState:
    return ConversationState(
        channel=channel,
        conversation_id=conversation_id,
        brand_id=brand_id,
        customer=lane.customer,
        waits=waits,
        wait_count=lane.wait_count,
        last_key=lane.last_key,
        first_started_at=lane.first_started_at,
    )


def _note_closed(outcome: MeasureOutcome, before: list[Wait], after: list[Wait]) -> None:
    closed_before = {(wait.customer, wait.start_post_id) for wait in before if not wait.is_open}
    for wait in after:
        if not wait.is_open and (wait.customer, wait.start_post_id) not in closed_before:
            outcome.newly_closed.append(wait)
    for wait in before:
        if wait.is_open and wait.status is WaitStatus.BREACHED:
            outcome.breach_already_reported.add((wait.customer, wait.start_post_id))


def _note_followed_up(outcome: MeasureOutcome, before: list[Wait], after: list[Wait]) -> None:
    def followed_up(wait: Wait) -> bool:
        recovery = outcome_of(wait)
        return recovery is not None and recovery.followed_up

    def key(wait: Wait) -> tuple[str, str, str]:
        return (wait.brand_id, wait.customer, wait.start_post_id)

    already = {key(wait) for wait in before if followed_up(wait)}
    outcome.newly_followed_up += [wait for wait in after if followed_up(wait) and key(wait) not in already]


def _measure_whole(
    store: ConversationStore, brands: BrandDirectory, channel: str, conversation_id: str
) -> MeasureOutcome:
    items = store.load(channel, conversation_id)
    conversation = placed_conversation(items.posts, brands.brand_for_handle)
    stored_ids = {placed.post.id for placed in conversation}
    head = Head(
        awaited={
            p.post.in_reply_to for p in conversation if p.post.in_reply_to and p.post.in_reply_to not in stored_ids
        }
    )
    # Lanes (seq 0) and archived waits (seq n), as the fold says they must be.
    desired: dict[tuple[str, str, int], ConversationState] = {}
    brand_ids = brands_in_conversation(conversation, brands.brand_for_handle)
    brand_ids |= {brand_id for brand_id, _ in items.lanes} | set(items.head.brands if items.head else ())
    for brand_id in sorted(brand_ids):
        fold = fold_conversation(conversation, brands.get(brand_id), brands.brand_for_handle)
        if fold.facts != BrandFacts():
            head.brands[brand_id] = fold.facts
        for customer, lane in fold.lanes.items():
            waits = lane.waits()
            previous = items.lanes.get((brand_id, customer))
            latest = keep_sweeper_status(
                waits[-1] if waits else None, previous.waits[-1] if previous and previous.waits else None
            )
            desired[(brand_id, customer, 0)] = _lane_state(
                channel, conversation_id, brand_id, lane, [latest] if latest else []
            )
            for seq, wait in enumerate(waits[:-1], start=1):
                desired[(brand_id, customer, seq)] = ConversationState(
                    channel=channel,
                    conversation_id=conversation_id,
                    brand_id=brand_id,
                    customer=customer,
                    seq=seq,
                    waits=[wait],
                )
    stored = {(brand_id, customer, 0): lane for (brand_id, customer), lane in items.lanes.items()} | items.archives
    outcome = MeasureOutcome(whole=True)
    before: list[Wait] = []
    after: list[Wait] = []
    for key in sorted(set(stored) | set(desired)):
        previous = stored.get(key)
        brand_id, customer, seq = key
        # What the fold no longer has is emptied, not deleted: versions only grow, so aggregate's guards hold.
        state = desired.get(key) or ConversationState(
            channel=channel, conversation_id=conversation_id, brand_id=brand_id, customer=customer, seq=seq or None
        )
        before += previous.waits if previous else []
        after += state.waits
        if previous is None and not state.waits and state.last_key is None:
            continue
        if not state.same_content(previous):
            outcome.written.append(store.save(state, previous.version if previous else None))
    _note_closed(outcome, before, after)
    _note_followed_up(outcome, before, after)
    effective = {p.post.id: p.effective_at for p in conversation if p.effective_at != p.post.created_at}
    changes: dict[str, datetime | None] = {
        post_id: moment for post_id, moment in effective.items() if items.effective.get(post_id) != moment
    }
    changes.update({post_id: None for post_id in items.effective if post_id not in effective})
    if changes:
        store.save_effective_times(channel, conversation_id, changes)
    if items.head is None or not head.same_content(items.head):
        if items.head is not None or head.brands or head.awaited:
            store.save_head(channel, conversation_id, head, items.head.version if items.head else None)
    return outcome


def new_posts_by_conversation(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[str] | None]:
    """Per conversation of the batch, the ids of its new posts; None when a post was removed (measure it whole)."""
    batch: dict[tuple[str, str], list[str] | None] = {}
    for raw in records:
        try:
            record = PostRecord.model_validate(raw)
            image = record.post
        except ValueError:
            continue  # reported by the record handler, which parses it again
        conversation = (image.channel, image.conversation_id)
        known = batch.setdefault(conversation, [])
        if record.is_removal or known is None:
            batch[conversation] = None
        else:
            known.append(image.id)
    return batch


def unconfigured_brand(brand_id: str) -> Brand:
    """A brand seen in data before anyone configured it: its id is its handle, default policy."""
    return Brand(id=brand_id, name=brand_id)


def directory_from(brands: list[Brand]) -> BrandDirectory:
    return BrandDirectory({brand.id: brand for brand in brands}, unconfigured_brand)
