"""Surges: a brand suddenly receiving far more mentions than it usually does, detected per brand and channel.

Arrivals are counted per 5-minute slot of event time: a slot holds the waits (first and next) that started in
it, so one customer posting five times while waiting counts once, and a backfill lands in the slots its posts
were written in, as a live feed would. The counts are exact deltas of conversation-state changes
(`slot_delta`), added once each by the aggregate step (services.surging).

A brand's expected arrivals per slot (its *baseline*) is the largest of three rates, so a surge has to stand
out against each of them:

- the same hour of the week over the last four weeks (the brand's rhythm: Monday 9:00 is not Sunday 3:00);
- the hour before the evaluation window (today's level, which the seasonal rate may not know yet);
- a floor (`SurgePolicy.floor_per_slot`), so a quiet brand's three mentions are not a surge.

An evaluation window (the current slot, and the last three slots) is surging when its count is both at least
`min_arrivals` and so high that a Poisson count at the baseline rate would reach it with probability below
`open_tail`. A surge opens once per episode and closes with hysteresis: only when a whole 15 minutes of
complete slots would not even be mildly surprising (`close_tail`) at the baseline frozen when it opened (the
surge itself must not become the new normal that closes it). Opening may use the current, partial slot: a
count only grows as its slot fills, so a slot that is surprising part-way stays so. Closing waits for complete
slots.

Pure: no AWS, no clock; the sweeper and the evaluation (benchmarks.surges) call the same functions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from replyclock.models.domain import ConversationState, Wait

SLOT = timedelta(minutes=5)
SLOTS_PER_HOUR = 12
_SLOT_LABEL_FORMAT = "%Y-%m-%dT%H:%M"


def slot_start(moment: datetime) -> datetime:
    """The start of the 5-minute UTC slot that holds a moment."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


def slot_label(moment: datetime) -> str:
    """ "YYYY-MM-DDTHH:MM" of the slot that holds a moment (sorts as time does)."""
    return slot_start(moment).strftime(_SLOT_LABEL_FORMAT)


def slot_from_label(label: str) -> datetime:
    return datetime.strptime(label, _SLOT_LABEL_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True, order=True)
class SlotKey:
    """The arrivals of one brand on one channel in one 5-minute slot."""

    brand_id: str
    channel: str
    slot: str  # slot_label

    @classmethod
    def of(cls, wait: Wait) -> SlotKey:
        return cls(wait.brand_id, wait.channel, slot_label(wait.started_at))


def slot_counts(waits: Iterable[Wait]) -> Counter[SlotKey]:
    """Waits opened, per slot of their start."""
    return Counter(SlotKey.of(wait) for wait in waits)


def slot_delta(old: ConversationState | None, new: ConversationState | None) -> dict[SlotKey, int]:
    """What a state change adds to each slot: its waits' starts now minus before (a recompute can move a start)."""
    delta = slot_counts(new.waits if new else [])
    delta.subtract(slot_counts(old.waits if old else []))
    return {key: count for key, count in delta.items() if count != 0}


@dataclass(frozen=True)
class SurgePolicy:
    # Expected arrivals per slot never below this (3 an hour): a quiet brand's handful of mentions is no surge.
    floor_per_slot: float = 0.25
    # Nor is any window with fewer arrivals than this, however quiet the brand.
    min_arrivals: int = 5
    # Opens when a Poisson count at the baseline rate would reach the window's count this rarely.
    open_tail: float = 1e-4
    # Closes when 15 minutes of complete slots would be this likely at the baseline frozen at the opening.
    close_tail: float = 0.05
    # Evaluation windows, in slots ending with the current one: 5 minutes (fast) and 15 minutes (steady).
    windows: tuple[int, ...] = (1, 3)
    # The recent rate: the slots just before the longest window.
    recent_slots: int = 12
    # The seasonal rate: the same hour of the week, this many weeks back.
    seasonal_weeks: int = 4


DEFAULT_POLICY = SurgePolicy()


def poisson_tail(count: int, rate: float) -> float:
    """P(X >= count) for X ~ Poisson(rate)."""
    if count <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    below = math.fsum(math.exp(-rate + k * math.log(rate) - math.lgamma(k + 1)) for k in range(count))
    return max(0.0, 1.0 - below)


@lru_cache(maxsize=4096)
def surprising_count(rate: float, tail: float) -> int:
    """The smallest count that a Poisson count at this rate reaches with probability at most `tail`."""
    count = max(1, math.floor(rate))
    while poisson_tail(count, rate) > tail:
        count += 1
    return count


def slots_back(now: datetime, count: int, skip: int = 0) -> list[datetime]:
    """The `count` slot starts ending `skip` slots before the slot of `now` (that slot included when skip is 0)."""
    current = slot_start(now)
    return [current - SLOT * (skip + back) for back in range(count - 1, -1, -1)]


@dataclass(frozen=True)
class SurgeReading:
    """What the sweeper knows of one brand's channel at `now`: recent slot counts and the seasonal hours."""

    now: datetime
    # Arrivals per slot start; slots missing count 0. Needs the recent and evaluation slots.
    counts: Mapping[datetime, int]
    # Arrivals in the same hour of the week as now, one per week back (missing weeks count 0).
    seasonal_hours: Sequence[int] = ()

    def total(self, slots: Iterable[datetime]) -> int:
        return sum(self.counts.get(slot, 0) for slot in slots)


def needed_slots(now: datetime, policy: SurgePolicy = DEFAULT_POLICY) -> list[datetime]:
    """Every slot a reading at `now` uses: the recent hour and the longest window."""
    longest = max(policy.windows)
    return slots_back(now, policy.recent_slots + longest)


def seasonal_hours_of(now: datetime, policy: SurgePolicy = DEFAULT_POLICY) -> list[datetime]:
    """The starts of the same hour of the week as `now`, one per week back."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [hour - timedelta(weeks=week) for week in range(1, policy.seasonal_weeks + 1)]


def baseline_per_slot(reading: SurgeReading, policy: SurgePolicy = DEFAULT_POLICY) -> float:
    """Expected arrivals per slot: the largest of the seasonal rate, the recent rate and the floor."""
    seasonal = sum(reading.seasonal_hours) / (policy.seasonal_weeks * SLOTS_PER_HOUR) if policy.seasonal_weeks else 0.0
    recent_slots = slots_back(reading.now, policy.recent_slots, skip=max(policy.windows))
    recent = reading.total(recent_slots) / policy.recent_slots if policy.recent_slots else 0.0
    return max(policy.floor_per_slot, seasonal, recent)


@dataclass(frozen=True)
class Assessment:
    baseline_per_slot: float
    # The window that stands out most: its length in slots, its count and count over expected.
    window_slots: int
    arrivals: int
    ratio: float
    surging: bool


def assess(reading: SurgeReading, policy: SurgePolicy = DEFAULT_POLICY) -> Assessment:
    """Whether any evaluation window (ending with the current, maybe partial, slot) is a surge now."""
    baseline = baseline_per_slot(reading, policy)
    best: Assessment | None = None
    for window in policy.windows:
        arrivals = reading.total(slots_back(reading.now, window))
        expected = baseline * window
        surging = arrivals >= policy.min_arrivals and arrivals >= surprising_count(expected, policy.open_tail)
        candidate = Assessment(baseline, window, arrivals, arrivals / expected, surging)
        if best is None or (candidate.surging, candidate.ratio) > (best.surging, best.ratio):
            best = candidate
    assert best is not None, "a policy has at least one window"
    return best


def calm(reading: SurgeReading, frozen_baseline: float, policy: SurgePolicy = DEFAULT_POLICY) -> bool:
    """Whether the rate has returned: the last complete slots (the longest window) are unsurprising at the
    baseline frozen at the opening."""
    window = max(policy.windows)
    arrivals = reading.total(slots_back(reading.now, window, skip=1))
    return arrivals < surprising_count(frozen_baseline * window, policy.close_tail)


@dataclass(frozen=True)
class OpenSurge:
    """An episode in progress, as stored: when it opened and the baseline it is judged against."""

    opened_slot: datetime
    baseline_per_slot: float


@dataclass(frozen=True)
class Decision:
    """What the sweeper does for one brand's channel now: open (once per episode), close, or neither."""

    opens: bool
    closes: bool
    assessment: Assessment


def decide(open_surge: OpenSurge | None, reading: SurgeReading, policy: SurgePolicy = DEFAULT_POLICY) -> Decision:
    assessment = assess(reading, policy)
    if open_surge is None:
        return Decision(opens=assessment.surging, closes=False, assessment=assessment)
    # The slots judged for closing must all be after the opening one: an episode lasts at least a window.
    settled = slot_start(reading.now) - SLOT * max(policy.windows) > open_surge.opened_slot
    # Nor does one close while the current slot surges again: that is the same episode going on.
    closes = settled and not assessment.surging and calm(reading, open_surge.baseline_per_slot, policy)
    return Decision(opens=False, closes=closes, assessment=assessment)
