"""ingest's schedule: one tick a minute polls every enabled source whose poll is due.

A source is due when its `next_poll_at` has passed (or it has none: never polled since it
was configured). The tick reads the SOURCES partition once, takes the due sources oldest-due
first, and for each one:

1. **claims** it: a conditional update moves `next_poll_at` to now + `poll_every_seconds`,
   conditioned on the value the tick read, so two overlapping ticks never both take it;
2. polls it as any poll does (replyclock.services.ingesting: the per-source lease keeps a
   hand-started poll and a tick apart too);
3. records how the poll ended on the source item (`last_poll_at`, `last_poll_status`,
   `last_poll_error`; what /health shows is recorded by the poll itself). A poll that
   stopped at its deadline with more to read is due again at once, behind the sources
   that were due before it.

The tick stops starting polls when less than MIN_POLL_MS is left beyond the poll safety
margin; the sources it did not reach stay due and are the oldest-due of the next tick. A
failing source is recorded and the tick goes on with the others; the invocation then fails
(so the function's Errors alarm sees it), naming the sources that failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from replyclock.dal.sources import ConfiguredSource, SourceStore
from replyclock.models.sources import Source
from replyclock.observability import logger
from replyclock.redaction import redact
from replyclock.services.ingesting import (
    SAFETY_MARGIN_MS,
    PollContext,
    PollOutcome,
    PollStatus,
    UnknownSource,
    poll_configured,
)

# A poll is started only with at least this much time beyond the safety margin.
MIN_POLL_MS = 10_000
_MAX_ERROR_LENGTH = 500
_NEVER = datetime.min.replace(tzinfo=UTC)


class PollsFailed(RuntimeError):
    """Some sources failed their poll in this tick (each is logged and recorded on its source)."""


@dataclass
class TickOutcome:
    due: int = 0
    polls: list[PollOutcome] = field(default_factory=list)
    # Due sources another tick claimed first.
    claimed_elsewhere: list[str] = field(default_factory=list)
    # Due sources this tick had no time left for: the next tick takes them first.
    left_for_next_tick: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "polls": [poll.as_dict() for poll in self.polls],
            "claimed_elsewhere": self.claimed_elsewhere,
            "left_for_next_tick": self.left_for_next_tick,
            "failed": self.failed,
        }


def due_sources(sources: Iterable[ConfiguredSource], now: datetime) -> list[ConfiguredSource]:
    """The enabled sources whose next poll has come, oldest-due first (never polled first of all)."""
    due = [
        configured
        for configured in sources
        if configured.source.enabled
        and (configured.schedule.next_poll_at is None or configured.schedule.next_poll_at <= now)
    ]
    return sorted(due, key=lambda configured: (configured.schedule.next_poll_at or _NEVER, configured.source.id))


def describe(error: BaseException) -> str:
    """An error as /health shows it: its type and message, with every known secret masked."""
    return redact(f"{type(error).__name__}: {error}")[:_MAX_ERROR_LENGTH]


def poll_and_record(source: Source, store: SourceStore, context: PollContext) -> PollOutcome:
    """Poll the source now and keep on its item how the poll ended and when the next one is due."""
    now = context.now
    started = now()
    next_poll_at = started + timedelta(seconds=source.poll_every_seconds)
    try:
        outcome = poll_configured(source, context)
    except Exception as error:
        store.record_poll(
            source.id,
            status=PollStatus.FAILED.value,
            at=now(),
            next_poll_at=next_poll_at,
            error=describe(error),
        )
        raise
    if outcome.status in (PollStatus.BUSY, PollStatus.DISABLED):
        return outcome  # nothing was polled: the poll that holds the lease records its own end
    finished = now()
    store.record_poll(
        source.id,
        status=outcome.status.value,
        at=finished,
        # More to read: due again at once, behind the sources that were due before.
        next_poll_at=finished if outcome.status is PollStatus.DEADLINE else next_poll_at,
    )
    return outcome


def poll_one(source_id: str, context: PollContext) -> PollOutcome:
    """Poll one source now, due or not (an invocation by hand: {"source_id": "..."})."""
    store = SourceStore(context.table_name)
    source = store.get(source_id)
    if source is None:
        raise UnknownSource(f"no source {source_id!r} is configured")
    return poll_and_record(source, store, context)


def tick(context: PollContext) -> TickOutcome:
    """Poll every due source, oldest-due first, while time is left; PollsFailed after the others if any failed."""
    now, remaining_ms = context.now, context.remaining_ms
    store = SourceStore(context.table_name)
    due = due_sources(store.configured(), now())
    outcome = TickOutcome(due=len(due))
    for position, configured in enumerate(due):
        source = configured.source
        if remaining_ms() < SAFETY_MARGIN_MS + MIN_POLL_MS:
            outcome.left_for_next_tick = [later.source.id for later in due[position:]]
            logger.info("tick out of time; the rest are polled next tick", left=outcome.left_for_next_tick)
            break
        claim_until = now() + timedelta(seconds=source.poll_every_seconds)
        if not store.claim(source.id, configured.schedule.next_poll_at, claim_until):
            outcome.claimed_elsewhere.append(source.id)
            continue
        try:
            poll = poll_and_record(source, store, context)
        except Exception:
            # Recorded on the source; the other sources still get their poll.
            logger.exception("source failed its poll in the tick", source_id=source.id)
            outcome.failed.append(source.id)
            continue
        outcome.polls.append(poll)
    logger.info("tick finished", **{key: value for key, value in outcome.as_dict().items() if key != "polls"})
    if outcome.failed:
        raise PollsFailed(f"polls failed: {', '.join(outcome.failed)} (see each source's last_error in /health)")
    return outcome
