"""Waits: per (conversation, brand, customer), a fold over the conversation's posts in order.

Posts are ordered by effective time, then id: a post's effective time is the later of its own
time and its parent's effective time, so a reply never precedes what it answers. Per brand B
and customer C (a *lane*), a wait starts at C's first post addressed to B after B last
answered C, and ends at B's next post that answers C. A customer post is addressed to B when
it mentions one of B's handles, replies to a post of B, or B has posted earlier in the
conversation. A brand post answers the customer it replies to and the customers it
@mentions; one that does neither answers every customer waiting for B. An auto-reply answers
no one (but does count as the brand having posted).

The same step (`BrandFold.apply`) serves both ways of measuring: folded over a whole
conversation it is the pure function the tests use as their oracle, and applied to one new
post on the stored state of the lanes it touches it is the incremental path, so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from replyclock.logic.business_time import add_business_seconds, business_seconds
from replyclock.logic.patterns import compile_matcher
from replyclock.logic.priority import classify
from replyclock.models.domain import Brand, Clock, Post, SLAPolicy, Wait, WaitKind, WaitStatus

# Statuses the sweeper sets on an open wait; time only moves forward, so a later
# recomputation of the same open wait must not undo them.
_SWEEPER_STATUSES = (WaitStatus.AT_RISK, WaitStatus.BREACHED)

# (channel, handle) -> the configured brand behind a handle (an author's or a mentioned one), or None.
BrandOfHandle = Callable[[str, str], str | None]


def customer_of(post: Post) -> str:
    """A customer is identified by their handle, as mentions name them."""
    return post.author.lower().lstrip("@")


def is_measured(post: Post, brand: Brand) -> bool:
    """Whether a customer post may open a wait for the brand: a label its policy names keeps it stored, unmeasured."""
    return not brand.label_policy.unmeasured or set(post.labels).isdisjoint(brand.label_policy.unmeasured)


def speaker_of(post: Post, brand_of_handle: BrandOfHandle) -> str | None:
    """The brand that wrote a post, or None for a customer.

    The configured brands' handles decide, whichever source polled the post; a source's own claim
    (an export's outbound rows) counts only for authors no configured brand owns.
    """
    return brand_of_handle(post.channel, customer_of(post)) or post.brand_id


def order_key(effective_at: datetime, post_id: str) -> str:
    """A string that sorts posts as (effective time, id) does, numeric ids numerically."""
    # isoformat pads years to four digits (strftime's %Y does not before year 1000).
    return f"{effective_at.astimezone(UTC).isoformat(timespec='microseconds')}#{len(post_id):03d}#{post_id}"


def effective_times(posts: Mapping[str, Post]) -> dict[str, datetime]:
    """Each post's effective time: the latest own time along its chain of parents inside `posts`.

    Posts whose parents loop back to themselves (bad data) all take the latest time of the loop,
    so the result never depends on where a walk entered it.
    """
    effective: dict[str, datetime] = {}
    for post_id in posts:
        chain: list[str] = []
        current: str | None = post_id
        while current is not None and current in posts and current not in effective and current not in chain:
            chain.append(current)
            current = posts[current].in_reply_to
        inherited = effective.get(current) if current is not None else None
        if current is not None and current in chain:
            loop = chain[chain.index(current) :]
            inherited = max(posts[member].created_at for member in loop)
            for member in loop:
                effective[member] = inherited
            chain = chain[: chain.index(current)]
        for member in reversed(chain):
            own = posts[member].created_at
            inherited = own if inherited is None else max(own, inherited)
            effective[member] = inherited
    return effective


@dataclass(frozen=True)
class Placed:
    """A post with its place in the conversation and who wrote it."""

    post: Post
    effective_at: datetime
    key: str
    # The brand that wrote it, or None when a customer did.
    speaker: str | None

    @property
    def customer(self) -> str | None:
        return customer_of(self.post) if self.speaker is None else None


def place(post: Post, effective_at: datetime, brand_of_handle: BrandOfHandle) -> Placed:
    return Placed(post, effective_at, order_key(effective_at, post.id), speaker_of(post, brand_of_handle))


def placed_conversation(posts: Iterable[Post], brand_of_handle: BrandOfHandle) -> list[Placed]:
    """Distinct posts (by id) in conversation order."""
    distinct = {post.id: post for post in posts}
    effective = effective_times(distinct)
    placed = [place(post, effective[post.id], brand_of_handle) for post in distinct.values()]
    return sorted(placed, key=lambda item: item.key)


@dataclass
class BrandFacts:
    """What one brand did in a conversation that lanes other than the touched ones depend on."""

    # Order key of the brand's first post (auto-replies included): later customer posts are addressed to it.
    first_key: str | None = None
    # Order key of its latest post that answered everyone waiting.
    broadcast_key: str | None = None


@dataclass
class Lane:
    """One customer's waits for one brand: the latest wait and how it got there."""

    customer: str
    wait_count: int = 0
    last_key: str | None = None
    first_started_at: datetime | None = None
    current: Wait | None = None
    # Waits this fold closed and then superseded with a newer one, oldest first (seq = position).
    superseded: list[Wait] = field(default_factory=list)

    @property
    def is_waiting(self) -> bool:
        return self.current is not None and self.current.is_open

    def waits(self) -> list[Wait]:
        return [*self.superseded, *([self.current] if self.current else [])]


class BrandFold:
    """The lanes of one brand in one conversation, advanced one post at a time in conversation order."""

    def __init__(
        self,
        brand: Brand,
        brand_of_handle: BrandOfHandle,
        lanes: dict[str, Lane] | None = None,
        facts: BrandFacts | None = None,
    ) -> None:
        self.brand = brand
        self.lanes = lanes if lanes is not None else {}
        self.facts = facts or BrandFacts()
        self._brand_of_handle = brand_of_handle
        self._auto_reply = auto_reply_matcher(brand)
        self._handoff = handoff_matcher(brand)

    def addresses(self, post: Placed, parent: Placed | None) -> bool:
        """Whether a customer post is addressed to this brand (and may open a wait: see is_measured)."""
        if not is_measured(post.post, self.brand):
            return False
        if not self.brand.handles_on(post.post.channel).isdisjoint(post.post.mentions):
            return True
        if parent is not None and parent.speaker == self.brand.id:
            return True
        return self.facts.first_key is not None and self.facts.first_key < post.key

    def answered(self, post: Placed, parent: Placed | None) -> set[str] | None:
        """The customers a brand post answers by name; None when it names no one (it answers everyone waiting)."""
        named = {
            handle for handle in post.post.mentions if self._brand_of_handle(post.post.channel, handle) is None
        } - self.brand.handles_on(post.post.channel)
        if parent is not None and parent.customer is not None:
            named.add(parent.customer)
        return named or None

    def is_broadcast(self, post: Placed, parent: Placed | None) -> bool:
        return (
            post.speaker == self.brand.id and not self._auto_reply(post.post.text) and not self.answered(post, parent)
        )

    def apply(self, post: Placed, parent: Placed | None) -> set[str]:
        """Advance by one post (later than every post applied so far); returns the customers whose lane changed.

        A lane whose last post is this very post has seen it already (a redelivery, or a retry after a
        partial write) and is left as it is.
        """
        if post.speaker == self.brand.id:
            if self.facts.first_key is None or post.key < self.facts.first_key:
                self.facts.first_key = post.key
            if self._auto_reply(post.post.text):
                return set()
            named = self.answered(post, parent)
            if named is None:
                self.facts.broadcast_key = post.key
                targets = [lane for lane in self.lanes.values() if lane.is_waiting]
            else:
                targets = [self.lanes.setdefault(customer, Lane(customer)) for customer in sorted(named)]
            targets = [lane for lane in targets if lane.last_key != post.key]
            handed_off = any(lane.is_waiting for lane in targets) and self._handoff(post.post.text)
            for lane in targets:
                if lane.is_waiting:
                    assert lane.current is not None
                    lane.current = close_wait(lane.current, post, self.brand, handed_off=handed_off)
                lane.last_key = post.key
            return {lane.customer for lane in targets}
        customer = post.customer
        if customer is None or not self.addresses(post, parent):
            return set()
        lane = self.lanes.setdefault(customer, Lane(customer))
        if lane.last_key == post.key:
            return set()
        if lane.is_waiting:
            assert lane.current is not None
            # Recovery reads the customer's last post before the answer: so far, this one.
            lane.current = lane.current.model_copy(update={"sentiment_before": post.post.sentiment})
        else:
            # A customer who speaks again in public after being taken to a private channel is still waiting.
            after_handoff = lane.current is not None and lane.current.handed_off
            if lane.current is not None:
                # The customer's next post after the answer: how they took it (logic.recovery).
                lane.superseded.append(lane.current.model_copy(update={"sentiment_after": post.post.sentiment}))
            kind = WaitKind.NEXT if lane.wait_count else WaitKind.FIRST
            lane.current = open_wait(post, customer, self.brand, kind, after_handoff=after_handoff)
            lane.wait_count += 1
            if lane.first_started_at is None:
                lane.first_started_at = lane.current.started_at
        lane.last_key = post.key
        return {customer}


def brands_in_conversation(posts: Iterable[Placed], brand_of_handle: BrandOfHandle) -> set[str]:
    """Brands that spoke in the conversation or were mentioned by handle on its channel."""
    brand_ids: set[str] = set()
    for placed in posts:
        if placed.speaker:
            brand_ids.add(placed.speaker)
        for handle in placed.post.mentions:
            brand_id = brand_of_handle(placed.post.channel, handle)
            if brand_id:
                brand_ids.add(brand_id)
    return brand_ids


def fold_conversation(conversation: list[Placed], brand: Brand, brand_of_handle: BrandOfHandle) -> BrandFold:
    """One brand's lanes over a whole conversation (posts in conversation order)."""
    by_id = {placed.post.id: placed for placed in conversation}
    fold = BrandFold(brand, brand_of_handle)
    for placed in conversation:
        parent_id = placed.post.in_reply_to
        fold.apply(placed, by_id.get(parent_id) if parent_id else None)
    return fold


def compute_waits(posts: Iterable[Post], brand: Brand, brand_of_handle: BrandOfHandle) -> dict[str, list[Wait]]:
    """Every customer's waits for one brand in one conversation, oldest first (customers without waits left out)."""
    fold = fold_conversation(placed_conversation(posts, brand_of_handle), brand, brand_of_handle)
    return {customer: lane.waits() for customer, lane in sorted(fold.lanes.items()) if lane.waits()}


def keep_sweeper_status(new: Wait | None, previous: Wait | None) -> Wait | None:
    """Keep the at-risk/breached mark the sweeper put on a wait that is still open and still due then."""
    if (
        new is not None
        and previous is not None
        and new.is_open
        and previous.is_open
        and previous.status in _SWEEPER_STATUSES
        and (new.start_post_id, new.due_at) == (previous.start_post_id, previous.due_at)
    ):
        return new.model_copy(update={"status": previous.status})
    return new


def auto_reply_matcher(brand: Brand) -> Callable[[str], bool]:
    """Linear-time matching (RE2): a pattern can never make measuring a post slow (logic.patterns)."""
    if not brand.auto_reply_patterns:
        return lambda text: False
    matches, _ = compile_matcher(brand.auto_reply_patterns)
    return matches


def handoff_matcher(brand: Brand) -> Callable[[str], bool]:
    """Whether a brand answer moves the conversation to a private channel ("DM us"): RE2, like auto-replies."""
    if not brand.handoff_patterns:
        return lambda text: False
    matches, _ = compile_matcher(brand.handoff_patterns)
    return matches


def exposure_of(post: Post) -> int | None:
    """The audience of a post: its author's reach plus its reposts, where the network reports them (else None)."""
    counts = [post.author_reach, post.engagement.reposts if post.engagement else None]
    known = [count for count in counts if count is not None]
    return sum(known) if known else None


def due_moment(started_at: datetime, seconds: float, policy: SLAPolicy, brand: Brand) -> datetime:
    """The moment `seconds` of the policy's clock have elapsed since `started_at`."""
    if policy.clock is Clock.BUSINESS:
        return add_business_seconds(started_at, seconds, brand.calendar)
    return started_at + timedelta(seconds=seconds)


def open_wait(start: Placed, customer: str, brand: Brand, kind: WaitKind, *, after_handoff: bool = False) -> Wait:
    started_at = start.effective_at
    priority = classify(start.post, brand)
    policy = brand.policy_at(started_at)
    target = policy.target_seconds(priority, start.post.channel)
    return Wait(
        kind=kind,
        brand_id=brand.id,
        channel=start.post.channel,
        conversation_id=start.post.conversation_id,
        customer=customer,
        start_post_id=start.post.id,
        started_at=started_at,
        priority=priority,
        policy_version=policy.version,
        clock=policy.clock,
        target_seconds=target,
        due_at=due_moment(started_at, target, policy, brand),
        at_risk_at=due_moment(started_at, target * policy.at_risk_fraction, policy, brand),
        status=WaitStatus.PENDING,
        after_handoff=after_handoff,
        exposure=exposure_of(start.post),
        sentiment_before=start.post.sentiment,
    )


def close_wait(wait: Wait, end: Placed, brand: Brand, *, handed_off: bool = False) -> Wait:
    ended_at = end.effective_at
    calendar_seconds = (ended_at - wait.started_at).total_seconds()
    business = business_seconds(wait.started_at, ended_at, brand.calendar)
    elapsed = business if wait.clock is Clock.BUSINESS else calendar_seconds
    return wait.model_copy(
        update={
            "end_post_id": end.post.id,
            "ended_at": ended_at,
            "calendar_seconds": calendar_seconds,
            "business_seconds": business,
            "status": WaitStatus.MET if elapsed <= wait.target_seconds else WaitStatus.BREACHED,
            "handed_off": handed_off,
        }
    )
