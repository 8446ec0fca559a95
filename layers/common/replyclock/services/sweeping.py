"""sweep: notice the waits that nobody answered, warn when they are at risk, mark them breached.

A mention that is never answered produces no stream record, so only the clock can
move its wait forward. Every transition is a conditional write on the state's
version: however often sweeps run or overlap, a wait is warned once and breached
once, and the breach reaches the aggregates through the stream like any change.

Alerts go through an outbox (replyclock.dal.alert_outbox): the alert is recorded as
pending before the transition is written, published after it, and marked published
once SNS acknowledges it. A publish that fails stays pending and every later sweep
tries it again; each alert carries a stable id (the same for every sweep that decides
it) so receivers drop the duplicates that at-least-once delivery can bring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from replyclock.dal.alert_outbox import AlertOutbox
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.exposure import BrandExposure, ChannelExposure
from replyclock.dal.open_waits import OpenWaitEntry, OpenWaitIndex
from replyclock.dal.posts import PostStore
from replyclock.dal.table import ConditionFailed
from replyclock.logic.business_time import business_seconds
from replyclock.models.domain import Clock, ConversationState, Wait, WaitStatus
from replyclock.services.measuring import BrandDirectory
from replyclock.services.surging import is_surge_alert

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
    def alert_id(self) -> str:
        """Stable across sweeps: the wait (its lane and first post) and the status it reached."""
        wait = self.wait
        identity = "|".join(
            (
                wait.channel,
                wait.conversation_id,
                wait.brand_id,
                wait.customer,
                wait.start_post_id,
                wait.started_at.isoformat(),
                self.status.value,
            )
        )
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    def to_record(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "wait": self.wait.model_dump(mode="json"),
            "waited_seconds": self.waited_seconds,
            "post_url": self.post_url,
            "post_excerpt": self.post_excerpt,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Alert:
        return cls(
            status=WaitStatus(record["status"]),
            wait=Wait.model_validate(record["wait"]),
            waited_seconds=float(record["waited_seconds"]),
            post_url=record.get("post_url"),
            post_excerpt=str(record.get("post_excerpt", "")),
        )

    @property
    def subject(self) -> str:
        label = "SLA breached" if self.status is WaitStatus.BREACHED else "SLA at risk"
        return f"{label}: {self.wait.brand_id} on {self.wait.channel} ({self.wait.priority.value})"

    def message(self) -> str:
        return json.dumps(
            {
                "alert_id": self.alert_id,
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
                "exposure": self.wait.exposure,
            }
        )


@dataclass(frozen=True)
class OpenWaitGauge:
    open_waits: int
    oldest_open_wait_seconds: float
    # The audience watching the unanswered complaints: the sum of their exposure (Wait.exposure).
    open_exposure: int = 0


@dataclass
class SweepOutcome:
    # Alerts delivered by this sweep (new ones and earlier ones retried).
    alerts: list[Alert] = field(default_factory=list)
    gauges: dict[tuple[str, str], OpenWaitGauge] = field(default_factory=dict)
    skipped: int = 0
    # Earlier alerts delivered now, after a failed publish.
    retried: int = 0
    # Alerts whose publish failed: still pending, the next sweep tries them again. (alert id, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Pending alerts dropped because their transition was never recorded and the wait is answered.
    dropped: int = 0


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
        gauges[key] = OpenWaitGauge(
            previous.open_waits + 1,
            max(previous.oldest_open_wait_seconds, waited),
            previous.open_exposure + entry.exposure,
        )
    return gauges


def brand_exposures(
    gauges: dict[tuple[str, str], OpenWaitGauge], brand_ids: list[str], now: datetime
) -> list[BrandExposure]:
    """Each brand's open waits and their exposure now, in all and per channel; configured brands without open
    waits get zeros, so a brand's item never keeps the count of a sweep that is past."""
    channels: dict[str, dict[str, ChannelExposure]] = {brand_id: {} for brand_id in brand_ids}
    for (brand_id, channel), gauge in sorted(gauges.items()):
        channels.setdefault(brand_id, {})[channel] = ChannelExposure(gauge.open_waits, gauge.open_exposure)
    return [
        BrandExposure(
            brand_id=brand_id,
            as_of=now,
            open_waits=sum(counts.open_waits for counts in by_channel.values()),
            open_exposure=sum(counts.open_exposure for counts in by_channel.values()),
            channels=by_channel,
        )
        for brand_id, by_channel in sorted(channels.items())
    ]


def due_in_alert_order(entries: list[OpenWaitEntry], now: datetime) -> list[OpenWaitEntry]:
    """The waits the sweeper must act on now, the most exposed first (then the longest due, then by lane).

    A team reading the alerts as they come sees first the complaints the most people are watching.
    """
    due = [entry for entry in entries if entry.next_alert_at is not None and entry.next_alert_at <= now]
    return sorted(
        due,
        key=lambda entry: (
            -entry.exposure,
            entry.next_alert_at,
            entry.brand_id,
            entry.channel,
            entry.conversation_id,
            entry.customer,
        ),
    )


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
    outbox: AlertOutbox | None = None,
) -> SweepOutcome:
    """Advance due waits and publish their alerts; with an outbox, at least once (else a failed publish raises)."""
    entries = index.all_open_waits()
    outcome = SweepOutcome(gauges=open_wait_gauges(entries, now))
    attempted: set[str] = set()
    for entry in due_in_alert_order(entries, now):
        alert = _advance(conversations, posts, brands, entry, now, outbox)
        if alert is None:
            outcome.skipped += 1
            continue
        # The state is written first: a sweep that loses the race never notifies.
        if outbox is None:
            publish(alert)
            outcome.alerts.append(alert)
            continue
        attempted.add(alert.alert_id)
        _deliver(alert, publish, outbox, now, outcome)
    if outbox is not None:
        _retry_pending(conversations, publish, outbox, now, outcome, attempted)
    return outcome


def _deliver(
    alert: Alert, publish: Callable[[Alert], None], outbox: AlertOutbox, now: datetime, outcome: SweepOutcome
) -> bool:
    failure = outbox.deliver(alert.alert_id, lambda: publish(alert), now)
    if failure is not None:
        outcome.failed.append((alert.alert_id, failure))
        return False
    outcome.alerts.append(alert)
    return True


def transition_recorded(alert: Alert, state: ConversationState | None) -> bool | None:
    """Whether the lane shows the alert's transition: True, False (it never will), None (not yet, still open)."""
    wait = state.waits[-1] if state is not None and state.waits else None
    if wait is None or (wait.start_post_id, wait.started_at) != (alert.wait.start_post_id, alert.wait.started_at):
        return False
    if _STATUS_RANK.get(wait.status, -1) >= _STATUS_RANK[alert.status]:
        # Includes a wait answered after its breach was recorded: it stays breached.
        return True
    return None if wait.is_open else False


def _retry_pending(
    conversations: ConversationStore,
    publish: Callable[[Alert], None],
    outbox: AlertOutbox,
    now: datetime,
    outcome: SweepOutcome,
    attempted: set[str],
) -> None:
    for entry in outbox.pending():
        if entry.alert_id in attempted or is_surge_alert(entry.record):
            # Surge alerts share the outbox; services.surging retries them.
            continue
        alert = Alert.from_record(entry.record)
        wait = alert.wait
        state = conversations.get(wait.channel, wait.conversation_id, wait.brand_id, wait.customer)
        recorded = transition_recorded(alert, state)
        if recorded is None:
            # Recorded before the transition was written (a sweep died between): the next advance writes it.
            continue
        if not recorded:
            outbox.discard(entry.alert_id)
            outcome.dropped += 1
            continue
        if _deliver(alert, publish, outbox, now, outcome):
            outcome.retried += 1


def _advance(
    conversations: ConversationStore,
    posts: PostStore,
    brands: BrandDirectory,
    entry: OpenWaitEntry,
    now: datetime,
    outbox: AlertOutbox | None = None,
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
        post = posts.get(entry.channel, entry.conversation_id, wait.start_post_id)
        alert = Alert(
            status=target_status,
            wait=marked,
            waited_seconds=_waited(wait, now, brands),
            post_url=post.url if post else None,
            post_excerpt=(post.text[:EXCERPT_CHARACTERS] if post else ""),
        )
        # Pending before the transition is written: a sweep that dies in between leaves it for the next one,
        # which publishes it once the lane shows the transition, and drops it if the wait was answered first.
        if outbox is not None:
            outbox.add(alert.alert_id, alert.to_record(), now)
        try:
            conversations.save(updated, state.version)
        except ConditionFailed:
            continue
        return alert
    return None
