"""sweep: notice the waits that nobody answered, warn when they are at risk, mark them breached.

A mention that is never answered produces no stream record, so only the clock can
move its wait forward. Every transition is a conditional write on the state's
version: however often sweeps run or overlap, a wait is warned once and breached
once, and the breach reaches the aggregates through the stream like any change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from replyclock.dal.conversations import ConversationStore
from replyclock.dal.open_waits import OpenWaitEntry, OpenWaitIndex
from replyclock.dal.posts import PostStore
from replyclock.dal.table import ConditionFailed
from replyclock.logic.business_time import business_seconds
from replyclock.models.domain import Clock, Wait, WaitStatus
from replyclock.services.measuring import BrandDirectory

MAX_ATTEMPTS = 3
EXCERPT_CHARACTERS = 280
_STATUS_RANK = {WaitStatus.PENDING: 0, WaitStatus.AT_RISK: 1, WaitStatus.BREACHED: 2}


@dataclass(frozen=True)
class Alert:
    status: WaitStatus
    wait: Wait
    waited_seconds: float
    post_url: str | None
    post_excerpt: str

    @property
    def subject(self) -> str:
        label = "SLA breached" if self.status is WaitStatus.BREACHED else "SLA at risk"
        return f"{label}: {self.wait.brand_id} on {self.wait.channel} ({self.wait.priority.value})"

    def message(self) -> str:
        return json.dumps(
            {
                "status": self.status.value,
                "brand": self.wait.brand_id,
                "channel": self.wait.channel,
                "priority": self.wait.priority.value,
                "conversation_id": self.wait.conversation_id,
                "customer": self.wait.customer,
                "post_url": self.post_url,
                "post_excerpt": self.post_excerpt,
                "waited_seconds": round(self.waited_seconds),
                "target_seconds": self.wait.target_seconds,
                "clock": self.wait.clock.value,
                "started_at": self.wait.started_at.isoformat(),
                "due_at": self.wait.due_at.isoformat(),
            }
        )


@dataclass(frozen=True)
class OpenWaitGauge:
    open_waits: int
    oldest_open_wait_seconds: float


@dataclass
class SweepOutcome:
    alerts: list[Alert] = field(default_factory=list)
    gauges: dict[tuple[str, str], OpenWaitGauge] = field(default_factory=dict)
    skipped: int = 0


def status_due(wait: Wait, now: datetime) -> WaitStatus:
    """What the clock alone says about an open wait now."""
    if now >= wait.due_at:
        return WaitStatus.BREACHED
    if now >= wait.at_risk_at:
        return WaitStatus.AT_RISK
    return WaitStatus.PENDING


def open_wait_gauges(entries: list[OpenWaitEntry], now: datetime) -> dict[tuple[str, str], OpenWaitGauge]:
    gauges: dict[tuple[str, str], OpenWaitGauge] = {}
    for entry in entries:
        key = (entry.brand_id, entry.channel)
        waited = max(0.0, (now - entry.open_since).total_seconds())
        previous = gauges.get(key, OpenWaitGauge(0, 0.0))
        gauges[key] = OpenWaitGauge(previous.open_waits + 1, max(previous.oldest_open_wait_seconds, waited))
    return gauges


def _waited(wait: Wait, now: datetime, brands: BrandDirectory) -> float:
    """Time waited so far on the clock the wait is measured on."""
    if wait.clock is Clock.BUSINESS:
        return business_seconds(wait.started_at, now, brands.get(wait.brand_id).calendar)
    return (now - wait.started_at).total_seconds()


def sweep(
    index: OpenWaitIndex,
    conversations: ConversationStore,
    posts: PostStore,
    brands: BrandDirectory,
    publish: Callable[[Alert], None],
    now: datetime,
) -> SweepOutcome:
    entries = index.all_open_waits()
    outcome = SweepOutcome(gauges=open_wait_gauges(entries, now))
    for entry in entries:
        if entry.next_alert_at is None or entry.next_alert_at > now:
            continue
        alert = _advance(conversations, posts, brands, entry, now)
        if alert is None:
            outcome.skipped += 1
            continue
        # The state is written first: a sweep that loses the race never notifies.
        publish(alert)
        outcome.alerts.append(alert)
    return outcome


def _advance(
    conversations: ConversationStore, posts: PostStore, brands: BrandDirectory, entry: OpenWaitEntry, now: datetime
) -> Alert | None:
    for _ in range(MAX_ATTEMPTS):
        state = conversations.get(entry.channel, entry.conversation_id, entry.brand_id, entry.customer)
        wait = state.open_wait if state else None
        if state is None or wait is None:
            return None
        target_status = status_due(wait, now)
        if _STATUS_RANK[target_status] <= _STATUS_RANK.get(wait.status, 0):
            return None
        marked = wait.model_copy(update={"status": target_status})
        updated = state.model_copy(update={"waits": [marked]})
        try:
            conversations.save(updated, state.version)
        except ConditionFailed:
            continue
        post = posts.get(entry.channel, entry.conversation_id, wait.start_post_id)
        return Alert(
            status=target_status,
            wait=marked,
            waited_seconds=_waited(wait, now, brands),
            post_url=post.url if post else None,
            post_excerpt=(post.text[:EXCERPT_CHARACTERS] if post else ""),
        )
    return None
