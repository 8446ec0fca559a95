"""Surges: count arrivals on the stream path, open and close episodes in the sweeper, alert through the outbox.

The aggregate step adds each conversation-state change's exact slot delta (logic.surges.slot_delta) to the
slot items it touches, with the discipline buckets use: read the slots' guards, add only the changes above
the guard of their conversation state, write conditioned on the revision read (a lost race re-reads). A
redelivered or reordered batch so adds nothing twice.

Every minute the sweeper reads, per configured brand, the recent slots (one Query), the open episodes (one
Query) and, only where a channel has enough arrivals to surge at all, the same hour of the last four weeks
(four Queries): a bounded read per brand, whatever its history. An episode opens through one conditional put
(dal.surges: at most one open per channel), and its alert goes through the SLA alerts' outbox
(dal.alert_outbox) with a stable id: delivered at least once, shown once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from replyclock.dal.aggregates import guard_name, guard_value, guard_version
from replyclock.dal.alert_outbox import AlertOutbox
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.open_waits import OpenWaitEntry, OpenWaitIndex
from replyclock.dal.posts import PostStore
from replyclock.dal.surges import (
    SLOT_RETENTION,
    OpenEpisode,
    SlotShard,
    StoredSlot,
    SurgeEpisode,
    SurgeStore,
    TopPost,
)
from replyclock.dal.table import ConditionFailed, StoreError
from replyclock.logic.surges import (
    DEFAULT_POLICY,
    SLOT,
    Decision,
    OpenSurge,
    SurgePolicy,
    SurgeReading,
    decide,
    needed_slots,
    seasonal_hours_of,
    slot_delta,
    slot_from_label,
    slot_label,
    slot_start,
    slots_back,
)
from replyclock.observability import logger
from replyclock.services.aggregating import StateChange

MAX_ATTEMPTS = 5
TOP_POSTS = 3
EXCERPT_CHARACTERS = 280
SURGE_ALERT_KIND = "surge"
# The channel of a brand-wide surge (every channel together; judged only for brands seen on several channels).
ALL_CHANNELS = "*"


# The stream path: arrivals per slot, exactly once.


def count_arrivals(store: SurgeStore, changes: Sequence[StateChange], now: datetime) -> set[str]:
    """Add the changes' slot deltas to their slots, once each; the sequence numbers that could not be added."""
    contributions: dict[SlotShard, list[tuple[StateChange, int]]] = defaultdict(list)
    horizon = now - SLOT_RETENTION
    for change in changes:
        for slot, delta in slot_delta(change.old, change.new).items():
            # The sweeper never reads a slot this old (its seasonal baseline reaches four weeks back): a backfill
            # of last year's posts writes no slot at all. Time only moves on, so a slot skipped stays unread.
            if slot_from_label(slot.slot) < horizon:
                continue
            contributions[SlotShard.of(slot, change.source_key)].append((change, delta))
    if not contributions:
        return set()
    failed: set[str] = set()
    try:
        read = store.read_slots(contributions)
    except StoreError:
        return {change.sequence_number for parts in contributions.values() for change, _ in parts}
    for part in sorted(contributions):
        try:
            _add_to_slot(store, part, contributions[part], read[part], now)
        except StoreError as error:
            logger.warning("surge slot not written; the stream delivers it again", slot=part.key.slot, error=str(error))
            failed.update(change.sequence_number for change, _ in contributions[part])
    return failed


def sum_above_guards(parts: Sequence[tuple[StateChange, int]], guards: dict[str, str]) -> tuple[int, dict[str, int]]:
    """The sum of the deltas a slot has not applied yet, and the state version each guard moves to.

    A change is applied iff its version is above its state's guard (the last version this slot applied).
    """
    added = 0
    applied: dict[str, int] = {}
    for change, delta in sorted(parts, key=lambda part: (part[0].source_key, part[0].version)):
        guard = guard_name(change.source_key)
        last = max(applied.get(guard, -1), guard_version(guards[guard]) if guard in guards else -1)
        if change.version <= last:
            continue
        added += delta
        applied[guard] = change.version
    return added, applied


def _add_to_slot(
    store: SurgeStore, part: SlotShard, changes: list[tuple[StateChange, int]], slot: StoredSlot, now: datetime
) -> None:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        added, applied = sum_above_guards(changes, slot.guards)
        if not applied:
            return
        try:
            store.write_slot(part, slot, added, {g: guard_value(v, now) for g, v in applied.items()}, now)
            return
        except ConditionFailed:
            # Written meanwhile (another stream shard's batch, or ours partly retried): re-read, so nothing adds twice.
            if attempt == MAX_ATTEMPTS:
                raise
            slot = store.read_slots([part])[part]


# The sweeper: open and close episodes, alert.


@dataclass(frozen=True)
class SurgeAlert:
    episode: SurgeEpisode

    @property
    def alert_id(self) -> str:
        """Stable across sweeps: the brand, the channel and the slot the episode opened in."""
        identity = "|".join(
            (SURGE_ALERT_KIND, self.episode.brand_id, self.episode.channel, slot_label(self.episode.opened_slot))
        )
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    def to_record(self) -> dict[str, Any]:
        return {"kind": SURGE_ALERT_KIND, "episode": self.episode.to_record()}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SurgeAlert:
        return cls(SurgeEpisode.from_record(record["episode"]))

    @property
    def subject(self) -> str:
        return f"Mention surge: {self.episode.brand_id} on {self.episode.channel}"

    def message(self) -> str:
        episode = self.episode
        return json.dumps(
            {
                "alert_id": self.alert_id,
                "kind": SURGE_ALERT_KIND,
                "surge_id": episode.surge_id,
                "brand": episode.brand_id,
                "channel": episode.channel,
                "opened_slot": episode.opened_slot.isoformat(),
                "opened_at": episode.opened_at.isoformat(),
                "window_minutes": episode.window_slots * int(SLOT.total_seconds() // 60),
                "arrivals": episode.arrivals,
                "expected": round(episode.baseline_per_slot * episode.window_slots, 2),
                "ratio": round(episode.ratio, 2),
                "top_posts": [post.to_record() for post in episode.top_posts],
            }
        )


def is_surge_alert(record: dict[str, Any]) -> bool:
    """Whether an outbox record is a surge's (the sweeper's SLA retries leave these to retry_surge_alerts)."""
    return record.get("kind") == SURGE_ALERT_KIND


@dataclass
class SurgeWatch:
    opened: list[SurgeEpisode] = field(default_factory=list)
    closed: list[SurgeEpisode] = field(default_factory=list)
    # Arrivals over expected in the window that stands out most, per (brand, channel) with recent arrivals.
    ratios: dict[tuple[str, str], float] = field(default_factory=dict)
    # Whether a surge is open after this sweep, per (brand, channel) with recent arrivals or an open surge.
    open_now: dict[tuple[str, str], bool] = field(default_factory=dict)
    delivered: list[SurgeAlert] = field(default_factory=list)
    # Alerts whose publish failed (still pending): (alert id, reason).
    failed: list[tuple[str, str]] = field(default_factory=list)


TopPostsOf = Callable[[str, str, datetime], list[TopPost]]


class UnansweredTopPosts:
    """The posts a surge alert shows: the surge's unanswered mentions, most exposed first, then the earliest.

    Read only when a surge opens: the open-waits index once per sweep, then two GetItems per post shown.
    """

    def __init__(self, index: OpenWaitIndex, conversations: ConversationStore, posts: PostStore) -> None:
        self._index, self._conversations, self._posts = index, conversations, posts
        self._entries: list[OpenWaitEntry] | None = None

    def __call__(self, brand_id: str, channel: str, since: datetime) -> list[TopPost]:
        if self._entries is None:
            self._entries = self._index.all_open_waits()
        candidates = sorted(
            (
                entry
                for entry in self._entries
                if entry.brand_id == brand_id and channel in (entry.channel, ALL_CHANNELS) and entry.open_since >= since
            ),
            key=lambda entry: (-entry.exposure, entry.open_since, entry.conversation_id, entry.customer),
        )
        shown: list[TopPost] = []
        for entry in candidates[:TOP_POSTS]:
            state = self._conversations.get(entry.channel, entry.conversation_id, brand_id, entry.customer)
            wait = state.open_wait if state else None
            if wait is None:
                continue
            post = self._posts.get(entry.channel, entry.conversation_id, wait.start_post_id)
            shown.append(
                TopPost(
                    channel=entry.channel,
                    post_id=wait.start_post_id,
                    conversation_id=entry.conversation_id,
                    customer=entry.customer,
                    posted_at=wait.started_at,
                    exposure=entry.exposure,
                    url=post.url if post else None,
                    excerpt=post.text[:EXCERPT_CHARACTERS] if post else "",
                )
            )
        return shown


def watch_surges(
    store: SurgeStore,
    brand_ids: Sequence[str],
    now: datetime,
    publish: Callable[[SurgeAlert], None],
    outbox: AlertOutbox,
    top_posts_of: TopPostsOf,
    policy: SurgePolicy = DEFAULT_POLICY,
) -> SurgeWatch:
    """Open, follow and close each brand's surges now; publish the openings' alerts (and earlier failed ones)."""
    watch = SurgeWatch()
    attempted: set[str] = set()
    for brand_id in brand_ids:
        _watch_brand(store, brand_id, now, publish, outbox, top_posts_of, policy, watch, attempted)
    for entry in outbox.pending():
        if entry.alert_id in attempted or not is_surge_alert(entry.record):
            continue
        _deliver(SurgeAlert.from_record(entry.record), publish, outbox, now, watch)
    return watch


def _watch_brand(
    store: SurgeStore,
    brand_id: str,
    now: datetime,
    publish: Callable[[SurgeAlert], None],
    outbox: AlertOutbox,
    top_posts_of: TopPostsOf,
    policy: SurgePolicy,
    watch: SurgeWatch,
    attempted: set[str],
) -> None:
    slots = needed_slots(now, policy)
    recent = store.arrivals(brand_id, slots[0], slots[-1])
    opened = store.open_episodes(brand_id)
    if len(recent) > 1 or ALL_CHANNELS in opened:
        # Several channels: the brand as a whole too, so a surge spread thin over its channels is seen.
        recent[ALL_CHANNELS] = all_channels(recent.values())
    window = slots_back(now, max(policy.windows))
    # A channel with fewer arrivals than min_arrivals in its longest window cannot surge, whatever its baseline:
    # the seasonal hours are read only when one can.
    could_open = [
        channel
        for channel, counts in recent.items()
        if channel not in opened and sum(counts.get(slot, 0) for slot in window) >= policy.min_arrivals
    ]
    seasonal = [store.hour_arrivals(brand_id, hour) for hour in seasonal_hours_of(now, policy)] if could_open else []
    for channel in sorted(set(recent) | set(opened)):
        reading = SurgeReading(now, recent.get(channel, {}), [_of_channel(hours, channel) for hours in seasonal])
        current = opened.get(channel)
        frozen = OpenSurge(current.episode.opened_slot, current.episode.baseline_per_slot) if current else None
        decision = decide(frozen, reading, policy)
        if channel in recent:
            watch.ratios[(brand_id, channel)] = decision.assessment.ratio
        if current is None:
            if decision.opens:
                # Open after this sweep, whether it or an overlapping sweep claimed the opening.
                _open(store, brand_id, channel, now, decision, publish, outbox, top_posts_of, watch, attempted)
            watch.open_now[(brand_id, channel)] = decision.opens
            continue
        _follow(store, current, reading, now, decision, publish, outbox, watch, attempted)
        watch.open_now[(brand_id, channel)] = not decision.closes


def all_channels(by_channel: Iterable[Mapping[datetime, int]]) -> dict[datetime, int]:
    """Arrivals per slot of every channel together."""
    summed: Counter[datetime] = Counter()
    for counts in by_channel:
        summed.update(counts)
    return dict(summed)


def _of_channel(hours: Mapping[str, int], channel: str) -> int:
    return sum(hours.values()) if channel == ALL_CHANNELS else hours.get(channel, 0)


def _open(
    store: SurgeStore,
    brand_id: str,
    channel: str,
    now: datetime,
    decision: Decision,
    publish: Callable[[SurgeAlert], None],
    outbox: AlertOutbox,
    top_posts_of: TopPostsOf,
    watch: SurgeWatch,
    attempted: set[str],
) -> bool:
    """Open the episode and alert it; False when an overlapping sweep opened it first (its alert is its own)."""
    assessment = decision.assessment
    opened_slot = slot_start(now) - SLOT * (assessment.window_slots - 1)
    episode = SurgeEpisode(
        brand_id=brand_id,
        channel=channel,
        opened_slot=opened_slot,
        opened_at=now,
        baseline_per_slot=assessment.baseline_per_slot,
        window_slots=assessment.window_slots,
        arrivals=assessment.arrivals,
        ratio=assessment.ratio,
        peak_arrivals=0,
        top_posts=tuple(top_posts_of(brand_id, channel, opened_slot)),
    )
    if not store.claim_opening(episode):
        return False
    watch.opened.append(episode)
    _record_and_deliver(store, episode, publish, outbox, now, watch, attempted)
    return True


def _record_and_deliver(
    store: SurgeStore,
    episode: SurgeEpisode,
    publish: Callable[[SurgeAlert], None],
    outbox: AlertOutbox,
    now: datetime,
    watch: SurgeWatch,
    attempted: set[str],
) -> None:
    """Pending in the outbox, then the episode's item, then the publish: a sweep dying anywhere in between leaves
    the open episode unalerted, which the next sweep finishes (the same alert id, so nothing shows twice)."""
    alert = SurgeAlert(episode)
    added = outbox.add(alert.alert_id, alert.to_record(), now)
    store.save_episode(episode)
    store.mark_alerted(episode)
    if added:
        attempted.add(alert.alert_id)
        _deliver(alert, publish, outbox, now, watch)
    # Not added: pending from a sweep that died (the pending loop delivers it) or published already.


def _follow(
    store: SurgeStore,
    current: OpenEpisode,
    reading: SurgeReading,
    now: datetime,
    decision: Decision,
    publish: Callable[[SurgeAlert], None],
    outbox: AlertOutbox,
    watch: SurgeWatch,
    attempted: set[str],
) -> None:
    episode = current.episode
    if not current.alerted:
        _record_and_deliver(store, episode, publish, outbox, now, watch, attempted)
    # The busiest complete or current slot since it opened.
    since_opening = [slot for slot in reading.counts if slot >= episode.opened_slot]
    peak = max((reading.counts[slot] for slot in since_opening), default=0)
    if peak > episode.peak_arrivals:
        store.raise_peak(episode, peak)
        episode = replace(episode, peak_arrivals=peak)
    if decision.closes:
        closed = replace(episode, closed_slot=slot_start(now), closed_at=now)
        store.save_episode(closed)
        store.release_opening(closed)
        watch.closed.append(closed)


def _deliver(
    alert: SurgeAlert, publish: Callable[[SurgeAlert], None], outbox: AlertOutbox, now: datetime, watch: SurgeWatch
) -> None:
    failure = outbox.deliver(alert.alert_id, lambda: publish(alert), now)
    if failure is not None:
        watch.failed.append((alert.alert_id, failure))
        return
    watch.delivered.append(alert)
