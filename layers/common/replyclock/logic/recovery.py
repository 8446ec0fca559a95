"""Recovery: does the answer turn an unhappy customer around, and does a faster answer do it more often?

For an answered wait, two posts of the customer decide: their last post before the answer (the
wait's `sentiment_before`) and their next post after it (`sentiment_after`), each scored once by
logic.sentiment when it was stored. The fold (logic.waits) sets both, so they are a pure function
of the conversation's posts, whatever order those arrived in. A wait whose customer was negative
before the answer is

- **recovered** when the customer's next post is non-negative,
- **not recovered** when it is negative again,
- **answered, no follow-up** while the customer has not posted again (which may be for good).

The recovery rate is recovered / (negative before the answer and followed up): waits without a
follow-up are reported beside it, not counted as failures. Each is counted per response band of
the answer (calendar time, as the customer waited) in the wait's bucket (logic.aggregation), so
the rate per band and per brand comes from buckets and roll-ups like every other figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from replyclock.logic.sentiment import is_negative
from replyclock.models.domain import Wait


class ResponseBand(StrEnum):
    """How long the customer waited for the answer (calendar time)."""

    UNDER_15_MIN = "under_15m"
    FROM_15_TO_60_MIN = "15m_to_1h"
    FROM_1_TO_4_H = "1h_to_4h"
    OVER_4_H = "over_4h"


# Each band but the last, with the calendar seconds it ends before (a 15-minute answer is in the second band).
_BAND_ENDS = (
    (ResponseBand.UNDER_15_MIN, 15 * 60),
    (ResponseBand.FROM_15_TO_60_MIN, 60 * 60),
    (ResponseBand.FROM_1_TO_4_H, 4 * 60 * 60),
)


def band_of(calendar_seconds: float) -> ResponseBand:
    for band, ends_before in _BAND_ENDS:
        if calendar_seconds < ends_before:
            return band
    return ResponseBand.OVER_4_H


class RecoveryStage(StrEnum):
    """The bucket counters of recovery, one per band each (see counter_name)."""

    # Answered waits whose customer's last post before the answer was negative.
    NEGATIVE = "negative"
    # Of those, the customer has posted again since.
    FOLLOWED_UP = "followed_up"
    # Of those, the customer's next post was non-negative.
    RECOVERED = "recovered"


def counter_name(stage: RecoveryStage, band: ResponseBand) -> str:
    return f"{stage.value}_{band.value}"


# In logic.aggregation's COUNTER_NAMES (and so in buckets and packed roll-ups), in this order.
RECOVERY_COUNTER_NAMES = tuple(counter_name(stage, band) for stage in RecoveryStage for band in ResponseBand)


@dataclass(frozen=True)
class RecoveryOutcome:
    """Where an answered wait that started negative stands."""

    band: ResponseBand
    followed_up: bool
    recovered: bool


def outcome_of(wait: Wait) -> RecoveryOutcome | None:
    """None unless the wait is answered and the customer's last post before the answer was negative."""
    if wait.is_open or wait.sentiment_before is None or not is_negative(wait.sentiment_before):
        return None
    followed_up = wait.sentiment_after is not None
    return RecoveryOutcome(
        band=band_of(wait.calendar_seconds or 0.0),
        followed_up=followed_up,
        recovered=wait.sentiment_after is not None and not is_negative(wait.sentiment_after),
    )


def recovery_counters(wait: Wait) -> dict[str, int]:
    """What one wait adds to its bucket's recovery counters (nothing unless answered after a negative post)."""
    outcome = outcome_of(wait)
    if outcome is None:
        return {}
    stages = [RecoveryStage.NEGATIVE]
    stages += [RecoveryStage.FOLLOWED_UP] if outcome.followed_up else []
    stages += [RecoveryStage.RECOVERED] if outcome.recovered else []
    return {counter_name(stage, outcome.band): 1 for stage in stages}


@dataclass(frozen=True)
class RecoveryCounts:
    """Recovery of a set of answered waits: how many started negative, were followed up, recovered."""

    negative: int = 0
    followed_up: int = 0
    recovered: int = 0

    @property
    def no_follow_up(self) -> int:
        """Answered after a negative post, and the customer has not posted since."""
        return self.negative - self.followed_up

    @property
    def rate(self) -> float | None:
        """recovered / followed up; None when no negative customer has posted again."""
        return self.recovered / self.followed_up if self.followed_up else None

    def __add__(self, other: RecoveryCounts) -> RecoveryCounts:
        return RecoveryCounts(
            self.negative + other.negative, self.followed_up + other.followed_up, self.recovered + other.recovered
        )


def counts_by_band(counters: Mapping[str, int]) -> dict[ResponseBand, RecoveryCounts]:
    """Every band's counts, from summed bucket counters (missing counters are zero)."""
    return {
        band: RecoveryCounts(
            negative=counters.get(counter_name(RecoveryStage.NEGATIVE, band), 0),
            followed_up=counters.get(counter_name(RecoveryStage.FOLLOWED_UP, band), 0),
            recovered=counters.get(counter_name(RecoveryStage.RECOVERED, band), 0),
        )
        for band in ResponseBand
    }


def total(by_band: Mapping[ResponseBand, RecoveryCounts]) -> RecoveryCounts:
    return sum(by_band.values(), RecoveryCounts())
